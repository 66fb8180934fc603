/**
 * The supervisor's writer of workers' sightings into the site database. Sightings from every
 * worker are collected for {@link SIGHTINGS_FLUSH_MS} and committed in one transaction, so a
 * stampede of welcomes costs a few large commits instead of one per worker message (a known
 * device costs an index lookup, not a write; see `DeviceStore.applySightings`).
 */
import type { DeviceStore, Sighting } from "../store/devices.ts";
import type { Logger } from "../log/logger.ts";

/** How long sightings are collected before they are committed, in ms. */
export const SIGHTINGS_FLUSH_MS = 250;

export class SightingsWriter {
  private items: Sighting[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private lastErrorLog = 0;

  constructor(
    private readonly devices: DeviceStore,
    private readonly log: Logger,
  ) {}

  /** Queues a worker's batch. Malformed entries are dropped (workers are trusted, but this must never throw). */
  add(items: unknown[]): void {
    for (const s of items) {
      if (Array.isArray(s) && s.length === 6 && typeof s[0] === "string" && typeof s[4] === "number") this.items.push(s as Sighting);
    }
    if (this.timer) return;
    // Quiet: right away. A storm: at most every SIGHTINGS_FLUSH_MS, in one transaction.
    this.timer = setTimeout(() => this.flush(), Math.max(0, this.lastFlush + SIGHTINGS_FLUSH_MS - Date.now()));
  }

  private lastFlush = 0;

  /** Commits what was collected. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.lastFlush = Date.now();
    if (this.items.length === 0) return;
    const items = this.items;
    this.items = [];
    try {
      this.devices.applySightings(items);
    } catch (err) {
      if (Date.now() - this.lastErrorLog < 30_000) return;
      this.lastErrorLog = Date.now();
      this.log.warn("Cannot record device sightings (first seen, last seen, close reason) in the site database; devices are served regardless. Check free disk space and that store.dir is writable", { err: err as Error, dropped: items.length });
    }
  }
}
