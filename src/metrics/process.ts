/**
 * Standard process metrics (`process_*`, as Prometheus client libraries name them) for the
 * supervisor and each worker, registered as gauges on the process's own {@link Metrics}; the
 * exposition adds the `worker` label. Reading /proc can fail when the process is out of
 * descriptors: the snapshot then shows NaN for that gauge instead of failing (see Metrics).
 *
 * @module
 */
import { readdirSync, readFileSync } from "node:fs";
import type { Metrics } from "./metrics.ts";

/** Resident memory of this process in bytes (VmRSS of /proc/self/status). */
export function residentBytes(): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"));
  if (!m) throw new Error("/proc/self/status has no VmRSS line");
  return Number(m[1]) * 1024;
}

/** Open descriptors of this process (the directory listing's own descriptor not counted). */
export function openFds(): number {
  return readdirSync("/proc/self/fd").length - 1;
}

/** The soft limit on open descriptors ("Max open files" of /proc/self/limits); Infinity when unlimited. */
export function maxFds(): number {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync("/proc/self/limits", "utf8"));
  if (!m) throw new Error("/proc/self/limits has no 'Max open files' line");
  return m[1] === "unlimited" ? Infinity : Number(m[1]);
}

/**
 * Registers process_resident_memory_bytes, process_open_fds, process_max_fds,
 * process_cpu_seconds_total, process_start_time_seconds, and the JavaScript heap's size and
 * use (`owsla_js_heap_bytes`, `owsla_js_heap_used_bytes`: what of the resident memory is the
 * JS heap, and how much of that is live after the last collection).
 */
export function registerProcessMetrics(metrics: Metrics): void {
  const startedAt = Date.now() / 1000 - process.uptime();
  metrics.gauge("process_resident_memory_bytes", residentBytes);
  metrics.gauge("process_open_fds", openFds);
  metrics.gauge("process_max_fds", maxFds);
  metrics.gauge("process_cpu_seconds_total", () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  });
  metrics.gauge("process_start_time_seconds", () => startedAt);
  metrics.gauge("owsla_js_heap_bytes", () => process.memoryUsage().heapTotal);
  metrics.gauge("owsla_js_heap_used_bytes", () => process.memoryUsage().heapUsed);
}
