/**
 * Accept-rate limits: token buckets per source address and in total. A bucket holds up to one
 * second's worth of accepts (at least 1), refilled continuously. Rate 0 means unlimited.
 */

/** Most source addresses tracked at once; idle buckets beyond it are dropped first. */
export const MAX_TRACKED_ADDRESSES = 100_000;

interface Bucket {
  tokens: number;
  at: number;
}

/** Decides whether a new connection may be accepted now. */
export class AcceptLimiter {
  private readonly perIp = new Map<string, Bucket>();
  private total: Bucket;

  constructor(
    private readonly perIpRate: number,
    private readonly totalRate: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.total = { tokens: Math.max(1, totalRate), at: now() };
  }

  private take(b: Bucket, rate: number, t: number): boolean {
    const cap = Math.max(1, rate);
    b.tokens = Math.min(cap, b.tokens + ((t - b.at) / 1000) * rate);
    b.at = t;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Returns null when `ip` may connect now, else which limit refused it. */
  admit(ip: string): "per_ip" | "total" | null {
    const t = this.now();
    if (this.perIpRate > 0) {
      let b = this.perIp.get(ip);
      if (!b) {
        if (this.perIp.size >= MAX_TRACKED_ADDRESSES) this.prune(t);
        b = { tokens: Math.max(1, this.perIpRate), at: t };
        this.perIp.set(ip, b);
      }
      if (!this.take(b, this.perIpRate, t)) return "per_ip";
    }
    if (this.totalRate > 0 && !this.take(this.total, this.totalRate, t)) return "total";
    return null;
  }

  private prune(t: number): void {
    for (const [ip, b] of this.perIp) if (t - b.at > 1000) this.perIp.delete(ip);
    if (this.perIp.size >= MAX_TRACKED_ADDRESSES) this.perIp.clear();
  }
}
