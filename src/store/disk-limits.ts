/**
 * Bounded disk use (issue 12, item 13): the limits a worker's store keeps while the WAN or the
 * broker is down, and the decisions they lead to. The limits come from `[store]`
 * (`outbox_max_bytes`, `inbox_max_bytes`, `inbox_max_age_s`, `min_free_bytes`); the byte limits
 * are for the whole gateway and each worker enforces its share.
 *
 * - The outbox over its byte limit, or free space under the floor: a device message that would
 *   have to be stored is refused (`server_busy` with `retry_after`, never acked), so the device
 *   keeps it. Nothing that was acked is ever dropped.
 * - The inbox over its byte limit: the oldest stored commands are dead-lettered to make room; a
 *   command larger than the whole limit, or any new command while free space is under the floor,
 *   is dead-lettered instead of stored. Stored commands older than `inbox_max_age_s` are
 *   dead-lettered too.
 *
 * {@link DiskLimits} holds the limits, reads free space (statfs, at most once a second) and logs
 * one warning when a limit is reached and one line when it clears, never one per message.
 *
 * @module
 */
import { statfsSync } from "node:fs";
import type { Logger } from "../log/logger.ts";

/** The limits of one worker (already split from the gateway's). 0 = no limit. */
export interface DiskLimitSettings {
  outboxMaxBytes: number;
  inboxMaxBytes: number;
  inboxMaxAgeMs: number;
  minFreeBytes: number;
}

/** A limit that can be reached, as named in metrics (`reason` label), logs and dead-letter headers. */
export type LimitReason = "outbox_max_bytes" | "inbox_max_bytes" | "inbox_max_age" | "min_free_bytes";

/** Free bytes for unprivileged writers on the filesystem holding `dir`. */
export function freeBytesOf(dir: string): number {
  const s = statfsSync(dir);
  return Number(s.bavail) * Number(s.bsize);
}

/** A reached limit counts as cleared once usage is back under this fraction of it (free space: over 2 - this of the floor). */
export const CLEAR_FRACTION = 0.9;

/** How often free space is read at most, in ms. */
export const FREE_SPACE_EVERY_MS = 1000;

/** Splits the `[store]` limits of the whole gateway into one worker's share. */
export function workerLimits(store: { outbox_max_bytes: number; inbox_max_bytes: number; inbox_max_age_s: number; min_free_bytes: number }, workers: number): DiskLimitSettings {
  const share = (n: number) => (n > 0 ? Math.max(1, Math.floor(n / Math.max(1, workers))) : 0);
  return {
    outboxMaxBytes: share(store.outbox_max_bytes),
    inboxMaxBytes: share(store.inbox_max_bytes),
    inboxMaxAgeMs: store.inbox_max_age_s * 1000,
    // Free space belongs to the filesystem, not to a worker: every worker keeps the same floor.
    minFreeBytes: store.min_free_bytes,
  };
}

const ADVICE: Record<LimitReason, string> = {
  outbox_max_bytes: "devices get server_busy for messages that need the outbox until the broker takes the backlog: fix the link to the broker, or raise store.outbox_max_bytes",
  inbox_max_bytes: "the oldest stored commands are dead-lettered to make room: get the devices online, slow the back-end down, or raise store.inbox_max_bytes",
  inbox_max_age: "stored commands older than the limit are dead-lettered: get the devices online, or raise store.inbox_max_age_s",
  min_free_bytes: "nothing new is stored (pubs that need the outbox get server_busy, commands for offline devices are dead-lettered): free space on the data directory's filesystem, or lower store.min_free_bytes",
};

/** One worker's disk limits, free-space reading and limit log. */
export class DiskLimits {
  private freeAt = Number.NEGATIVE_INFINITY;
  private free = Number.POSITIVE_INFINITY;
  private readonly hit = new Set<LimitReason>();
  private readFailed = false;

  constructor(
    readonly settings: DiskLimitSettings,
    private readonly dir: string,
    private readonly log: Logger,
    private readonly readFree: (dir: string) => number = freeBytesOf,
    private readonly now: () => number = Date.now,
  ) {}

  /** Free bytes on the data directory's filesystem (read at most once a second; Infinity when unknown). */
  freeBytes(): number {
    const t = this.now();
    if (t - this.freeAt < FREE_SPACE_EVERY_MS) return this.free;
    this.freeAt = t;
    try {
      this.free = this.readFree(this.dir);
      this.readFailed = false;
    } catch (err) {
      // Unknown free space must not stop the gateway: the byte limits still hold.
      if (!this.readFailed) this.log.warn("Cannot read free space of the data directory; the store.min_free_bytes floor is not enforced until it can", { dir: this.dir, err: err as Error });
      this.readFailed = true;
      this.free = Number.POSITIVE_INFINITY;
    }
    return this.free;
  }

  /** Whether free space is under the floor (false when there is no floor). */
  underFloor(): boolean {
    const floor = this.settings.minFreeBytes;
    if (floor <= 0) return false;
    const under = this.freeBytes() < floor;
    this.note("min_free_bytes", under, this.free >= floor * (2 - CLEAR_FRACTION), { free_bytes: this.free, min_free_bytes: floor });
    return under;
  }

  /**
   * Why a device message of `size` bytes cannot go to an outbox holding `held` bytes, or null
   * when it can.
   */
  outboxRefusal(held: number, size: number): LimitReason | null {
    if (this.underFloor()) return "min_free_bytes";
    const max = this.settings.outboxMaxBytes;
    // Once reached, the limit holds until the outbox is back under the watermark: a smaller
    // message accepted right after a refused one would reach the broker before it (the device
    // sends the refused one again later), breaking the device's order.
    const over = max > 0 && (held + size > max || (this.hit.has("outbox_max_bytes") && held > max * CLEAR_FRACTION));
    this.noteBytes("outbox_max_bytes", over, held, max);
    return over ? "outbox_max_bytes" : null;
  }

  /**
   * How many bytes of stored commands must go before one of `size` bytes fits an inbox holding
   * `held` bytes: 0 when it fits, Infinity when it can never fit (larger than the whole limit).
   */
  inboxExcess(held: number, size: number): number {
    const max = this.settings.inboxMaxBytes;
    if (max <= 0) return 0;
    if (size > max) return Number.POSITIVE_INFINITY;
    return Math.max(0, held + size - max);
  }

  /**
   * Records the state of `reason`: `over` = at or past the limit now; `clear` = far enough back
   * under it (the {@link CLEAR_FRACTION} watermark) for the state to count as cleared. Logs a
   * warning when the limit becomes reached and one line when it clears, once per change (the
   * watermark keeps a store hovering at its limit from logging per message).
   */
  note(reason: LimitReason, over: boolean, clear: boolean, numbers: Record<string, number>): void {
    if (over && !this.hit.has(reason)) {
      this.hit.add(reason);
      this.log.warn(`Store limit reached (${reason}): ${ADVICE[reason]}`, { limit: reason, dir: this.dir, ...numbers });
    } else if (!over && clear && this.hit.has(reason)) {
      this.hit.delete(reason);
      this.log.info(`Store limit cleared (${reason})`, { limit: reason, ...numbers });
    }
  }

  /** Notes the byte limit `reason` of a store holding `held` bytes of at most `max` (see {@link note}). */
  noteBytes(reason: LimitReason, over: boolean, held: number, max: number): void {
    this.note(reason, over, held <= max * CLEAR_FRACTION, { [`${reason.replace("_max_bytes", "")}_bytes`]: held, [reason]: max });
  }

  /** Limits reached now (for the metrics gauge). */
  reached(reason: LimitReason): boolean {
    return this.hit.has(reason);
  }
}
