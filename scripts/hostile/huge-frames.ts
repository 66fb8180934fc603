/**
 * Huge frames: N concurrent streamers each push M MiB without a newline (odd ones after a
 * valid hello, even ones before); when the gateway closes a connection the streamer connects
 * again until its M MiB were taken by the kernel. The gateway must close every connection with
 * `frame_too_large` as soon as more than a legal frame arrived, without its memory growing:
 * workers' summed VmRSS may grow less than --max-growth-mb over the baseline meanwhile.
 *
 * Usage: bun scripts/hostile/huge-frames.ts [--sockets 14] [--mb 100] [--max-growth-mb 20]
 * Prints one JSON object (see scripts/hostile/README.md); exit 0 when all checks pass.
 */
import { Checks, runCli, type ScenarioResult } from "./lib/cli.ts";
import { HostileGateway } from "./lib/gateway.ts";
import { read, Sampler } from "./lib/proc.ts";
import { RawConn } from "./lib/raw.ts";
import { count, latencySummary, mb } from "./lib/stats.ts";

/** Options of {@link run}. */
export const HUGE_DEFAULTS = {
  sockets: 14,
  /** MiB each socket tries to send. */
  mb: 100,
  /** Allowed growth of the workers' summed VmRSS while streaming, MiB. */
  max_growth_mb: 20,
  /** Size of each write, KiB. */
  chunk_kb: 256,
  workers: 2,
  max_frame_bytes: 65536,
  /** Longest time the whole run may take, s. */
  timeout_s: 300,
};
export type HugeOptions = typeof HUGE_DEFAULTS;

const USAGE = `
Usage: bun scripts/hostile/huge-frames.ts [options]
Streams without newlines at a running gateway; prints a JSON result.
  --sockets N          concurrent streamers (default 14)
  --mb N               MiB each streamer pushes, over as many connections as it takes (default 100)
  --max-growth-mb N    allowed VmRSS growth of all workers while streaming (default 20)
  --chunk-kb N         write size (default 256)
  --workers N          gateway worker processes (default 2)
  --max-frame-bytes N  gateway max frame size (default 65536)
  --timeout-s N        longest time for the whole run (default 300)
Exit 0 when every check passed, 1 when one failed, 2 when the run itself failed.`;

interface StreamResult {
  /** Bytes the kernel took on all of this streamer's connections. */
  written: number;
  connections: number;
  /** First error code of each connection ("none" when closed without one). */
  codes: Record<string, number>;
  /** Per connection: connect → close, ms. */
  closeMs: number[];
  /** Connections the gateway did not close within the timeout. */
  notClosed: number;
}

/**
 * One streamer: connects (after a valid hello on odd `i`), writes `chunk` without a newline
 * until the gateway closes the connection, and reconnects until `total` bytes were written.
 */
async function stream(gw: HostileGateway, i: number, total: number, chunk: Uint8Array, deadline: number): Promise<StreamResult> {
  const r: StreamResult = { written: 0, connections: 0, codes: {}, closeMs: [], notClosed: 0 };
  while (r.written < total && performance.now() < deadline) {
    const c = await RawConn.connect({ port: gw.port, host: `127.0.0.${(i % 4) + 1}` });
    r.connections++;
    const t0 = performance.now();
    if (i % 2 === 1) {
      const hw = `huge-${i}`;
      c.write(JSON.stringify({ op: "hello", v: 1, device: hw, token: gw.token(hw) }) + "\n");
      await c.waitFrame((f) => f.op === "welcome" || f.op === "error", 5000);
    }
    const sent0 = c.written;
    while (!c.closed && r.written + (c.written - sent0) < total && performance.now() < deadline) {
      if (c.pending > 0) {
        await Promise.race([c.drained(), Bun.sleep(200)]);
        continue;
      }
      c.write(chunk);
    }
    const closed = await c.waitClosed(Math.max(0, Math.min(10_000, deadline - performance.now())));
    if (!closed) r.notClosed++;
    r.written += c.written - sent0;
    count(r.codes, c.errors[0] ?? "none");
    r.closeMs.push(performance.now() - t0);
    c.terminate();
  }
  return r;
}

/** Runs the scenario and returns its result. */
export async function run(o: HugeOptions, log: (m: string) => void = () => {}): Promise<ScenarioResult> {
  const checks = new Checks();
  const gw = await HostileGateway.start({
    gatewayId: "huge",
    args: ["--workers", String(o.workers), "--device-max-frame-bytes", String(o.max_frame_bytes)],
  });
  try {
    for (let i = 0; i < 10; i++) await gw.probe(`huge-warm-${i % 3}`);
    await Bun.sleep(500);
    const pids = gw.workerPids();
    const baseline = read(pids);
    const sampler = new Sampler(pids, 50);
    const chunk = new Uint8Array(o.chunk_kb * 1024).fill(0x61);
    const total = o.mb * 1024 * 1024;
    log(`huge-frames: ${o.sockets} streams of ${o.mb} MiB; baseline ${mb(baseline.rssKb)} MiB`);
    const t0 = performance.now();
    const deadline = t0 + o.timeout_s * 1000;
    const results = await Promise.all(Array.from({ length: o.sockets }, (_, i) => stream(gw, i, total, chunk, deadline)));
    const ms = performance.now() - t0;
    await Bun.sleep(300);
    sampler.sample();
    sampler.stop();
    const after = read(pids);
    const probe = await gw.probe("huge-after");
    const m = await gw.metrics();
    const codes: Record<string, number> = {};
    for (const r of results) for (const [k, v] of Object.entries(r.codes)) count(codes, k, v);
    const connections = results.reduce((s, r) => s + r.connections, 0);
    const written = results.reduce((s, r) => s + r.written, 0);
    const growthKb = sampler.peakRssKb - baseline.rssKb;
    const crash = gw.crashLines();

    checks.check("all_streamed", results.every((r) => r.written >= total), `${mb(written / 1024)} MiB written over ${connections} connections (${o.sockets} x ${o.mb} MiB wanted)`);
    checks.check("all_frame_too_large", (codes.frame_too_large ?? 0) === connections, `first error code per connection ${JSON.stringify(codes)}`);
    checks.check("all_closed", results.every((r) => r.notClosed === 0), `${results.reduce((s, r) => s + r.notClosed, 0)} connections not closed by the gateway`);
    checks.check("rss_growth", growthKb < o.max_growth_mb * 1024, `peak ${mb(sampler.peakRssKb)} MiB vs baseline ${mb(baseline.rssKb)} MiB: +${mb(growthKb)} MiB (limit ${o.max_growth_mb})`);
    checks.check("workers_unchanged", gw.workersUnchanged(), `pids at start ${gw.pidsAtStart.join(",")}, now ${gw.workerPids().join(",")}`);
    checks.check("no_crash_lines", crash.length === 0, crash.slice(0, 3).join("\n") || "none");
    checks.check("served_after", probe.ok, probe.ok ? "valid device served" : `probe failed: ${probe.why}`);

    return {
      scenario: "huge-frames",
      ok: checks.ok,
      params: o,
      checks: checks.all,
      durations: { streams_s: Math.round(ms / 100) / 10 },
      held: o.sockets,
      lost: probe.ok ? 0 : 1,
      closed_with_code: codes,
      connections,
      mb_written_total: mb(written / 1024),
      mb_per_s: Math.round(written / 1024 / 1024 / (ms / 1000)),
      kernel_accepted_bytes_per_connection: Math.round(written / connections),
      connection_lifetime_ms: latencySummary(results.flatMap((r) => r.closeMs)),
      gateway_closes_by_reason: HostileGateway.family(m, "owsla_closes_total"),
      memory_mb: { before: mb(baseline.rssKb), during_peak: mb(sampler.peakRssKb), after: mb(after.rssKb), growth: mb(growthKb) },
      fds: { before: baseline.fds, during_peak: sampler.peakFds, after: after.fds },
      log_warnings: gw.problemLines(),
    };
  } finally {
    await gw.stop();
  }
}

if (import.meta.main) await runCli(HUGE_DEFAULTS, USAGE, run);
