/**
 * Temporary bans after repeated failures, per source address (the device hello and the control
 * API each keep their own list), so a brute-force attempt costs the attacker time while valid
 * clients elsewhere are unaffected. Never keyed by the identity being claimed: anyone could
 * then lock a device out without its credentials.
 */

/** Most keys tracked; past it, expired entries are dropped (then the oldest). */
export const MAX_BAN_ENTRIES = 100_000;

/** Settings of a {@link BanList}. */
export interface BanSettings {
  /** Failures within `windowMs` that lead to a ban; 0 disables banning. */
  failures: number;
  windowMs: number;
  durationMs: number;
}

interface Entry {
  count: number;
  since: number;
  bannedUntil: number;
}

/** Failure counts and bans by key (e.g. `ip:10.0.0.7`). */
export class BanList {
  private readonly entries = new Map<string, Entry>();
  /** Bans imposed since start. */
  bansTotal = 0;

  constructor(
    private readonly s: BanSettings,
    private readonly now: () => number = Date.now,
  ) {}

  /** Milliseconds the ban on `key` still lasts; 0 when not banned. */
  remaining(key: string): number {
    const e = this.entries.get(key);
    if (!e) return 0;
    const left = e.bannedUntil - this.now();
    return left > 0 ? left : 0;
  }

  /** Records a failure for `key`; returns true when it is banned now. */
  fail(key: string): boolean {
    if (this.s.failures <= 0) return false;
    const t = this.now();
    let e = this.entries.get(key);
    if (!e || t - e.since > this.s.windowMs) {
      if (!e && this.entries.size >= MAX_BAN_ENTRIES) this.prune(t);
      e = { count: 0, since: t, bannedUntil: e?.bannedUntil ?? 0 };
      this.entries.set(key, e);
    }
    e.count++;
    if (e.count >= this.s.failures && e.bannedUntil <= t) {
      e.bannedUntil = t + this.s.durationMs;
      e.count = 0;
      e.since = t;
      this.bansTotal++;
      return true;
    }
    return e.bannedUntil > t;
  }

  /** Keys currently banned. */
  activeBans(): number {
    const t = this.now();
    let n = 0;
    for (const e of this.entries.values()) if (e.bannedUntil > t) n++;
    return n;
  }

  private prune(t: number): void {
    for (const [k, e] of this.entries) if (e.bannedUntil <= t && t - e.since > this.s.windowMs) this.entries.delete(k);
    while (this.entries.size >= MAX_BAN_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
  }
}
