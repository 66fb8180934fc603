/**
 * A log line that can come in floods (a hostile back-end's rejected commands, thousands of
 * promise rejections when a broker connection drops under load), limited per key: at most
 * `burst` lines per key in each window; the rest are only counted, and the next line written
 * for that key says how many were left out (`left_out`). Keys are few and fixed by the caller
 * (a reason, a kind of error), so the table stays small.
 */
import type { Fields } from "./logger.ts";

/** Options of a {@link BurstLog}. */
export interface BurstLogOptions {
  /** Length of a window, in ms. */
  windowMs: number;
  /** Lines per key and window before the rest are only counted. */
  burst: number;
  /** Clock, for tests (default `Date.now`). */
  now?: () => number;
}

/** Writes at most `burst` lines per key per window (see the module doc). */
export class BurstLog {
  private readonly keys = new Map<string, { since: number; lines: number; left: number }>();

  constructor(
    private readonly write: (msg: string, fields: Fields) => void,
    private readonly o: BurstLogOptions,
  ) {}

  /** Writes `msg` with `fields` for `key` unless its burst in this window is spent. */
  note(key: string, msg: string, fields: Fields = {}): void {
    const now = (this.o.now ?? Date.now)();
    let k = this.keys.get(key);
    if (!k || now - k.since >= this.o.windowMs) {
      k = { since: now, lines: 0, left: k?.left ?? 0 };
      this.keys.set(key, k);
    }
    if (k.lines >= this.o.burst) {
      k.left++;
      return;
    }
    k.lines++;
    const leftOut = k.left > 0 ? { left_out: k.left } : {};
    k.left = 0;
    this.write(msg, { ...fields, ...leftOut });
  }
}
