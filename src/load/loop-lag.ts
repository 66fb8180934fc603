/**
 * Event-loop lag of a simulator process: a 10 ms timer records how late it fires. A load
 * generator that lags adds its lag to every latency it measures, so the summary reports it
 * next to the latencies (high lag means the machine, not the gateway, is the bottleneck).
 */
import { Histogram } from "./histogram.ts";

/** Interval of the lag probe, in ms. */
const PROBE_MS = 10;

/** Starts measuring; `stop()` ends it. */
export function watchLoopLag(): { histogram: Histogram; stop(): void } {
  const histogram = new Histogram();
  let expected = performance.now() + PROBE_MS;
  const timer = setInterval(() => {
    const t = performance.now();
    histogram.recordMs(Math.max(0, t - expected));
    expected = t + PROBE_MS;
  }, PROBE_MS);
  return { histogram, stop: () => clearInterval(timer) };
}
