/**
 * The clock that orders welcomes across worker processes. A device's home worker keeps the
 * newest of its connections and takes over the older one, comparing welcome times stamped by
 * different processes. Two welcomes of one device can fall within the same millisecond (a
 * device that reconnects as soon as it is welcomed; a client opening two connections), so the
 * clock needs sub-millisecond resolution, and every process must read it alike.
 *
 * Neither built-in clock does both. `Date.now()` is the system clock every process shares, but
 * it counts whole milliseconds. `performance.timeOrigin + performance.now()` has microseconds,
 * but its origin is sampled once at start-up and is off by up to about 1 ms per process, enough
 * to make the newer of two welcomes on two workers look older (seen in CI).
 *
 * So each process calibrates: it waits for `Date.now()` to tick and notes `performance.now()`
 * at that instant, which pins the monotonic clock to the system clock within a few
 * microseconds. It does so again every {@link RECALIBRATE_MS} (the two clocks drift apart when
 * the system clock is slewed or stepped), and the result is always clamped into the current
 * `Date.now()` millisecond, so it never disagrees with the system clock by more than the
 * fraction.
 */

/** How often the offset between the monotonic and the system clock is measured again, in ms. */
export const RECALIBRATE_MS = 10_000;

/** Longest a calibration waits for a clean tick of the system clock before giving up, in ms. */
const CALIBRATE_BUDGET_MS = 5;

/** Widest gap between two readings around a tick that still pins the tick down, in ms. */
const CALIBRATE_PRECISION_MS = 0.02;

let offset = calibrate(Number.NaN);
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

/** Milliseconds since the epoch, with microseconds, comparable across the gateway's processes. */
export function welcomeClock(): number {
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
