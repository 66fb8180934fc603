/**
 * Gives back the memory a reconnect stampede leaves behind. Every welcome makes short-lived
 * garbage (the hello line and its parse, the HMAC, the welcome frame, the presence event and
 * its AMQP frames and confirm promise); during a stampede of thousands per second the heap
 * grows with it, and the collector's own pacing leaves the process holding that peak long
 * after. Once the stampede is over (a second with under a tenth of the peak rate), one full
 * collection runs and the freed pages go back to the system ({@link shrinkHeap}), so the memory
 * a worker holds reflects its live connections. Steady traffic never triggers it.
 */

/**
 * A full collection that also gives the freed memory back to the operating system:
 * `Bun.shrink()` (JavaScriptCore's shrinkFootprintWhenIdle: drops compiled code, which is
 * compiled again when next used, collects, then releases the allocator's free pages). A plain
 * full collection frees the objects but the process kept their pages (measured on one worker
 * after a 15k-device stampede: ~2,800 B of RSS per held device with `Bun.gc(true)`, ~2,450 B
 * with this). Falls back to `Bun.gc(true)` on a Bun without it (the API is marked deprecated).
 */
export function shrinkHeap(): void {
  const shrink = (Bun as { shrink?: () => void }).shrink;
  if (typeof shrink === "function") shrink();
  else Bun.gc(true);
}

/** Welcomes per second that count as a burst. */
export const BURST_MIN_PER_S = 200;
/** A burst is over when a second has fewer welcomes than this fraction of its peak. */
export const BURST_END_FRACTION = 0.1;

export class BurstCollector {
  private last = 0;
  private peak = 0;
  /** Collections run so far. */
  runs = 0;

  constructor(private readonly gc: () => void = () => Bun.gc(true)) {}

  /** Called once a second with the total number of welcomes so far. */
  tick(welcomesTotal: number): void {
    const rate = welcomesTotal - this.last;
    this.last = welcomesTotal;
    if (rate >= BURST_MIN_PER_S) this.peak = Math.max(this.peak, rate);
    else if (this.peak > 0 && rate < this.peak * BURST_END_FRACTION) {
      this.peak = 0;
      this.gc();
      this.runs++;
    }
  }
}
