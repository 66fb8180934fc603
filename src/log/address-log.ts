/**
 * Refusals in the log, rate-limited per source address: failed hellos and bad frames used to
 * show only in /metrics. Each kind of refusal is logged at info at most once per address per
 * window (one minute by default, per worker process); the next line after a quiet window says
 * how many were left out meanwhile. The table of addresses is bounded, so a spray of source
 * addresses cannot grow memory or the log without limit: past it, lines are left out (and
 * counted on the next line that is written).
 */
import type { Fields, Logger } from "./logger.ts";

/** Default window: one line per address and kind per minute. */
export const ADDRESS_LOG_WINDOW_MS = 60_000;
/** Default number of (kind, address) pairs remembered; past it, new addresses are left out. */
export const ADDRESS_LOG_MAX_KEYS = 10_000;

interface Entry {
  /** When the last line for this key was written. */
  at: number;
  /** Events left out since then. */
  left: number;
}

/** Options of an {@link AddressLog}; every field has a default. */
export interface AddressLogOptions {
  /** Minimum time between two lines for one address and kind, in ms (default 60 s). */
  windowMs?: number;
  /** Keys remembered at most (default 10,000). */
  maxKeys?: number;
  /** Clock, for tests (default `Date.now`). */
  now?: () => number;
}

/** Logs refusals at most once per window per (kind, source address). */
export class AddressLog {
  private readonly entries = new Map<string, Entry>();
  private readonly windowMs: number;
  private readonly maxKeys: number;
  private readonly now: () => number;
  /** Events left out because the table was full; reported on the next line written. */
  private overflow = 0;

  constructor(
    private readonly log: Logger,
    o: AddressLogOptions = {},
  ) {
    this.windowMs = o.windowMs ?? ADDRESS_LOG_WINDOW_MS;
    this.maxKeys = o.maxKeys ?? ADDRESS_LOG_MAX_KEYS;
    this.now = o.now ?? Date.now;
  }

  /**
   * Records one refusal of `kind` (e.g. `hello`, `frame`) from `remote`; writes `msg` with
   * `fields` (plus `remote`, and `left_out` when earlier ones were not written) unless a line
   * for this address and kind was written within the window.
   */
  note(kind: string, remote: string, msg: string, fields: Fields = {}): void {
    if (!this.log.enabled("info")) return;
    const t = this.now();
    const key = `${kind} ${remote}`;
    const e = this.entries.get(key);
    if (e && t - e.at < this.windowMs) {
      e.left++;
      return;
    }
    if (!e && this.entries.size >= this.maxKeys) this.sweep(t);
    if (!e && this.entries.size >= this.maxKeys) {
      this.overflow++;
      return;
    }
    const left = (e?.left ?? 0) + this.overflow;
    this.overflow = 0;
    if (e) this.entries.delete(key); // re-inserted last: the map stays in time order for sweep
    this.entries.set(key, { at: t, left: 0 });
    this.log.info(msg, { remote, ...fields, ...(left > 0 ? { left_out: left } : {}) });
  }

  /** Forgets keys whose window has passed (oldest first; the map is in time order). */
  private sweep(t: number): void {
    for (const [k, e] of this.entries) {
      if (t - e.at < this.windowMs) break;
      this.overflow += e.left;
      this.entries.delete(k);
    }
  }
}

/**
 * A refusal message made fit for the log: what the device sent is cut off (`, got ...` may
 * hold the start of a token; the rule it broke is enough), at most 200 characters, control
 * and format characters escaped (pretty logs print strings as they are).
 */
export function refusalDetail(message: string): string {
  return message
    .replace(/, got .*$/s, "")
    .slice(0, 200)
    .replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
