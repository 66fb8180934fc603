/**
 * Collects the garbage hostile peers leave behind. Every chunk Bun reads is a fresh buffer;
 * a flood of oversized frames (each connection read up to the frame limit, then closed) makes
 * hundreds of MB of dead buffers per second, and the heap and the allocator grow far faster
 * than the collector's own pacing brings them back. Bytes read by connections that are
 * already failing are counted here; once a megabyte has piled up a full collection runs,
 * no more often than keeps collecting under a third of the worker's time (the gap after a
 * collection is twice as long as it took, so a bigger heap is collected less often).
 * Honest devices never feed it, so normal traffic pays nothing.
 */

/** Dropped bytes that trigger a collection. */
export const JUNK_GC_BYTES = 1 << 20;
/** Gap after a collection, as a multiple of its duration. */
export const JUNK_GC_GAP = 2;

export class JunkCollector {
  private junk = 0;
  private nextAt = 0;
  /** Collections run so far. */
  runs = 0;

  constructor(
    private readonly gc: () => void = () => Bun.gc(true),
    private readonly now: () => number = () => performance.now(),
    private readonly thresholdBytes = JUNK_GC_BYTES,
  ) {}

  /** Counts `bytes` read by a connection that is being dropped; may collect. */
  add(bytes: number): void {
    this.junk += bytes;
    if (this.junk < this.thresholdBytes) return;
    const t0 = this.now();
    if (t0 < this.nextAt) return;
    this.junk = 0;
    this.gc();
    this.runs++;
    const t1 = this.now();
    this.nextAt = t1 + (t1 - t0) * JUNK_GC_GAP;
  }
}
