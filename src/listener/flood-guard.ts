/**
 * Turns a connection flood into kernel drops. Refusing a connection in user space still costs
 * the worker an accept, a JavaScript callback, a frame and a close: at tens of thousands per
 * second that is a large share of a core, taken from the devices already connected. An address
 * whose connections the per-address limit refuses `threshold` times within one second is
 * therefore handed to the kernel ({@link SynFilter}) for `blockMs`: its new connections are
 * dropped unanswered until then. After that it is served (and limited) as before; if it is
 * still flooding it is dropped again as soon as it crosses the threshold.
 *
 * Honest devices never come near it: the contract asks them to back off after `rate_limited`.
 */
import { ipv4Number, MAX_DROPPED_ADDRESSES } from "./syn-filter.ts";

/** Most addresses counted at once; beyond it, counts older than a second are dropped first. */
export const MAX_COUNTED_ADDRESSES = 100_000;

interface Count {
  n: number;
  since: number;
}

export class FloodGuard {
  private readonly counts = new Map<string, Count>();
  /** Dropped address → until (ms, `now()` clock). */
  private readonly dropped = new Map<string, number>();
  /** Addresses dropped so far (each time counts). */
  blocks = 0;

  /**
   * @param threshold refusals within one second that get an address dropped; 0 = never
   * @param blockMs how long an address stays dropped
   * @param apply installs the current drop list (IPv4 numbers); throws when it cannot
   */
  constructor(
    private readonly threshold: number,
    private readonly blockMs: number,
    private readonly apply: (sources: number[]) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Addresses dropped now. */
  get droppedCount(): number {
    return this.dropped.size;
  }

  /**
   * Counts a refusal of `ip`. Returns true when this refusal got the address dropped (the
   * caller logs it); false otherwise, including when it cannot be dropped (not IPv4, or the
   * list is full). When installing the list fails, `apply`'s error is rethrown.
   */
  refused(ip: string): boolean {
    if (this.threshold <= 0 || this.blockMs <= 0 || ipv4Number(ip) === null) return false;
    const t = this.now();
    let c = this.counts.get(ip);
    if (!c || t - c.since >= 1000) {
      if (!c && this.counts.size >= MAX_COUNTED_ADDRESSES) this.prune(t);
      c = { n: 0, since: t };
      this.counts.set(ip, c);
    }
    c.n++;
    if (c.n < this.threshold || this.dropped.has(ip)) return false;
    if (this.dropped.size >= MAX_DROPPED_ADDRESSES) return false;
    this.counts.delete(ip);
    this.dropped.set(ip, t + this.blockMs);
    try {
      this.install();
    } catch (e) {
      this.dropped.delete(ip);
      throw e;
    }
    this.blocks++;
    return true;
  }

  /** Ends the drops that are due; returns the addresses released. Call about once a second. */
  expire(): string[] {
    const t = this.now();
    const released: string[] = [];
    for (const [ip, until] of this.dropped) if (until <= t) released.push(ip);
    for (const ip of released) this.dropped.delete(ip);
    if (released.length > 0) this.install();
    this.prune(t);
    return released;
  }

  /** Installs the current list again (a new listening socket). */
  install(): void {
    this.apply([...this.dropped.keys()].map((ip) => ipv4Number(ip)!));
  }

  private prune(t: number): void {
    for (const [ip, c] of this.counts) if (t - c.since >= 1000) this.counts.delete(ip);
    if (this.counts.size >= MAX_COUNTED_ADDRESSES) this.counts.clear();
  }
}
