/**
 * Readings of gateway processes from /proc: resident memory, open descriptors and CPU time.
 * Every reader returns NaN for a process that is gone instead of throwing.
 */
import { readdirSync, readFileSync } from "node:fs";
import { CLOCK_TICKS, cpuTicks } from "../../../src/supervisor/cpu-time.ts";

/** A KiB field of /proc/<pid>/status (VmRSS, RssAnon, ...), NaN when the process is gone. */
function statusKb(pid: number, field: string): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+)\\s+kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** VmRSS of `pid` in KiB. */
export function rssKb(pid: number): number {
  return statusKb(pid, "VmRSS");
}

/**
 * RssAnon of `pid` in KiB: private memory (heaps, buffers). The rest of VmRSS is file pages
 * (the executable's code and data as it gets touched) and shared memory, which the kernel can
 * drop and re-read at will.
 */
export function anonKb(pid: number): number {
  return statusKb(pid, "RssAnon");
}

/** Open file descriptors of `pid`. */
export function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return Number.NaN;
  }
}

/** User + system CPU time of `pid`, in seconds. */
export function cpuSeconds(pid: number): number {
  return cpuTicks(pid) / CLOCK_TICKS;
}

/** Whether process `pid` exists (and is not a zombie). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** One reading of a set of processes. */
export interface Reading {
  /** Summed VmRSS, KiB. */
  rssKb: number;
  /** Summed RssAnon (private memory), KiB. */
  anonKb: number;
  /** Summed open descriptors. */
  fds: number;
  /** Per pid: [rss KiB, fds]. */
  perPid: Record<number, [number, number]>;
}

/** Reads memory and descriptors of `pids`. */
export function read(pids: number[]): Reading {
  const perPid: Record<number, [number, number]> = {};
  let rss = 0;
  let anon = 0;
  let fds = 0;
  for (const p of pids) {
    const r = rssKb(p);
    const f = fdCount(p);
    perPid[p] = [r, f];
    rss += r;
    anon += anonKb(p);
    fds += f;
  }
  return { rssKb: rss, anonKb: anon, fds, perPid };
}

/**
 * Samples `pids` every `everyMs` in the background and keeps the peaks (and every sample, for
 * plots), until {@link Sampler.stop}.
 */
export class Sampler {
  peakRssKb = 0;
  peakFds = 0;
  /** Highest single-process CPU use seen over one interval, in percent of one core. */
  peakCpuPct = 0;
  readonly samples: { t: number; rssKb: number; fds: number; cpuPct: number }[] = [];
  private readonly timer: Timer;
  private lastCpu: number[];
  private lastAt = performance.now();
  private readonly started = performance.now();

  constructor(
    private readonly pids: number[],
    everyMs = 100,
  ) {
    this.lastCpu = pids.map(cpuSeconds);
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  /** Takes one sample now. */
  sample(): Reading {
    const r = read(this.pids);
    const t = performance.now();
    const cpu = this.pids.map(cpuSeconds);
    const dt = (t - this.lastAt) / 1000;
    let maxPct = 0;
    cpu.forEach((c, i) => {
      const pct = dt > 0 ? ((c - this.lastCpu[i]!) / dt) * 100 : 0;
      if (Number.isFinite(pct)) maxPct = Math.max(maxPct, pct);
    });
    this.lastCpu = cpu;
    this.lastAt = t;
    if (Number.isFinite(r.rssKb)) this.peakRssKb = Math.max(this.peakRssKb, r.rssKb);
    if (Number.isFinite(r.fds)) this.peakFds = Math.max(this.peakFds, r.fds);
    // CPU over one short interval is noisy (10 ms ticks): only count intervals of 200 ms or more.
    if (dt >= 0.2) this.peakCpuPct = Math.max(this.peakCpuPct, maxPct);
    this.samples.push({ t: Math.round(t - this.started), rssKb: r.rssKb, fds: r.fds, cpuPct: Math.round(maxPct) });
    return r;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** About `points` samples spread over the run: [seconds since start, summed VmRSS MiB, fds]. */
  series(points = 20): [number, number, number][] {
    const step = Math.max(1, Math.floor(this.samples.length / points));
    return this.samples.filter((_, i) => i % step === 0).map((s) => [Math.round(s.t / 100) / 10, Math.round(s.rssKb / 102.4) / 10, s.fds]);
  }
}

/**
 * CPU used by `pids` while `fn` runs, as percent of one core: `cpuPct` for all together,
 * `perPid` in the order of `pids`.
 */
export async function cpuDuring<T>(pids: number[], fn: () => Promise<T>): Promise<{ result: T; cpuPct: number; perPid: number[]; wallMs: number }> {
  const before = pids.map(cpuSeconds);
  const t0 = performance.now();
  const result = await fn();
  const wallMs = performance.now() - t0;
  const used = pids.map((p, i) => cpuSeconds(p) - before[i]!);
  const pct = (s: number) => Math.round((s / (wallMs / 1000)) * 100);
  return { result, cpuPct: pct(used.reduce((a, b) => a + b, 0)), perPid: used.map(pct), wallMs: Math.round(wallMs) };
}

/**
 * Reads `pids` once a second until their summed VmRSS is at most `limitKb` or `settleS` passed
 * (the runtime returns freed pages lazily); returns the last reading and the seconds waited.
 */
export async function settleRss(pids: number[], limitKb: number, settleS: number): Promise<{ end: Reading; waitedS: number }> {
  let end = read(pids);
  const start = performance.now();
  while (end.rssKb > limitKb && performance.now() - start < settleS * 1000) {
    await Bun.sleep(1000);
    end = read(pids);
  }
  return { end, waitedS: Math.round((performance.now() - start) / 100) / 10 };
}
