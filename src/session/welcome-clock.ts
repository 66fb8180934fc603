/**
 * The clock that orders welcomes across worker processes. A device's home worker keeps the
 * newest of its connections and takes over the older one, comparing welcome times stamped by
 * different processes. Two welcomes of one device can fall within the same millisecond (a
 * device that reconnects as soon as it is welcomed; a client opening two connections), so the
 * clock needs sub-millisecond resolution, and every process must read it alike.
 *
 * The kernel's `CLOCK_MONOTONIC` is both: one clock for every process of the machine, read
 * with nanoseconds (`clock_gettime` through `bun:ffi`, about 0.2 µs a call). Bun's own
 * sub-millisecond clocks (`performance.now()`, `process.hrtime`, `Bun.nanoseconds()`) count
 * from each process's start instead, and `Date.now()` counts whole milliseconds.
 *
 * Where libc cannot be loaded, each process calibrates instead: it waits for `Date.now()` to
 * tick and notes `performance.now()` at that instant, which pins the monotonic clock to the
 * system clock within a few microseconds when the process is not descheduled meanwhile (a
 * starved CPU makes it coarser: CI once saw the newer of two welcomes stamped older). It does
 * so again every {@link RECALIBRATE_MS}, and the result is clamped into the current
 * `Date.now()` millisecond.
 */
import { dlopen, ptr } from "bun:ffi";

/** `clock_id` of `CLOCK_MONOTONIC` on Linux. */
const CLOCK_MONOTONIC = 1;
/** Names libc is loaded under: glibc, then musl (x86-64, arm64). */
const LIBC_NAMES = ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1"];

/** Reads `CLOCK_MONOTONIC` in ms (with nanoseconds), or null when libc cannot be loaded. */
function kernelClock(): (() => number) | null {
  for (const name of LIBC_NAMES) {
    try {
      const lib = dlopen(name, { clock_gettime: { args: ["i32", "ptr"], returns: "i32" } });
      const ts = new BigInt64Array(2); // struct timespec on 64-bit Linux: tv_sec, tv_nsec
      const at = ptr(ts);
      const read = () => (lib.symbols.clock_gettime(CLOCK_MONOTONIC, at) === 0 ? Number(ts[0]) * 1000 + Number(ts[1]) / 1e6 : Number.NaN);
      const first = read();
      if (Number.isFinite(first) && first > 0) return read;
      lib.close();
    } catch {
      // not this name (or no FFI): try the next, then fall back to calibration
    }
  }
  return null;
}

const kernel = kernelClock();

/** How often the offset between the monotonic and the system clock is measured again, in ms. */
export const RECALIBRATE_MS = 10_000;

/** Longest a calibration waits for a clean tick of the system clock before giving up, in ms. */
const CALIBRATE_BUDGET_MS = 5;

/** Widest gap between two readings around a tick that still pins the tick down, in ms. */
const CALIBRATE_PRECISION_MS = 0.02;

let offset = kernel ? 0 : calibrate(Number.NaN);
let calibratedAt = performance.now();

/**
 * Measures `system clock - performance.now()` at a tick of `Date.now()`. Busy-waits about 1 ms
 * (until the next tick), longer when a reading is disturbed: a tick seen across a gap wider
 * than {@link CALIBRATE_PRECISION_MS} (the process was descheduled between two readings) is
 * not used, and the next tick is awaited. Returns `previous` when no clean tick came within
 * {@link CALIBRATE_BUDGET_MS} (a frozen or very coarse clock, a starved CPU); the clamp in
 * {@link welcomeClock} then keeps the result within the current millisecond anyway.
 */
function calibrate(previous: number): number {
  const giveUp = performance.now() + CALIBRATE_BUDGET_MS;
  let last = Date.now();
  let before = performance.now();
  for (;;) {
    const now = Date.now();
    const after = performance.now();
    if (now !== last) {
      if (after - before <= CALIBRATE_PRECISION_MS) return now - (before + after) / 2;
      last = now;
    }
    if (after > giveUp) return previous;
    before = after;
  }
}

/**
 * Milliseconds with microseconds, comparable across the gateway's processes on this machine:
 * since boot (`CLOCK_MONOTONIC`), or since the epoch where libc could not be loaded.
 */
export function welcomeClock(): number {
  if (kernel) return Math.round(kernel() * 1000) / 1000;
  return calibratedClock();
}

/** Whether {@link welcomeClock} reads the kernel's clock (else the calibrated one). */
export const welcomeClockIsKernel = kernel !== null;

/** The fallback: `performance.now()` pinned to `Date.now()` (see the module doc). */
export function calibratedClock(): number {
  const p = performance.now();
  if (p - calibratedAt >= RECALIBRATE_MS || Number.isNaN(offset)) {
    offset = calibrate(offset);
    calibratedAt = p;
  }
  const ms = Date.now();
  const t = offset + performance.now();
  if (!(t >= ms)) return ms; // also when the offset is unknown (NaN)
  return t < ms + 0.999 ? Math.round(t * 1000) / 1000 : ms + 0.999;
}
