/**
 * Keeps a worker's stored commands within `store.inbox_max_bytes`, `store.inbox_max_age_s`
 * and the free-space floor (see `src/store/disk-limits.ts` for the policy):
 *
 * - a new command that would take the inbox over its byte share makes room by dead-lettering
 *   the oldest stored commands (reason `inbox_max_bytes`);
 * - a command larger than the whole share, or any new command while free space is under
 *   `store.min_free_bytes`, is not stored: the caller dead-letters it with that reason;
 * - {@link InboxLimiter.sweep} dead-letters stored commands older than the age limit
 *   (`inbox_max_age`) and trims the inbox back under its share (a limit lowered at restart).
 *
 * A stored command is deleted only after the broker confirmed its dead-letter copy. While the
 * broker is unreachable nothing is dropped: the rows stay (over the limit) and new commands for
 * offline devices cannot arrive anyway (they come from the broker); a command from the control
 * API that does not fit is refused.
 *
 * @module
 */
import type { Logger } from "../log/logger.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { Command } from "../protocol/gateway-messages.ts";
import type { DiskLimits, LimitReason } from "../store/disk-limits.ts";
import { commandBytes, type CommandStore, type StoredCommand } from "../store/interfaces.ts";

/** Why a stored command is dead-lettered: a store limit, or its own expiry (`expired`). */
export type DropReason = LimitReason | "expired";

/** Publishes a dead-letter copy of a stored command; resolves once the broker confirmed it. */
export type DeadLetterStored = (c: StoredCommand, reason: DropReason) => Promise<void>;

/** Start of the error a worker answers when the control API's command does not fit the store limits. */
export const STORE_LIMIT_REFUSAL = "Store limit reached";

/** Why a command for an offline device was not stored, in words. */
export function limitMessage(limit: LimitReason): string {
  return limit === "min_free_bytes"
    ? "free space on the gateway's data directory is under store.min_free_bytes"
    : "it does not fit the gateway's store.inbox_max_bytes even after dead-lettering older stored commands";
}

/** Shortest time between two eviction log lines, in ms. */
export const LOG_EVERY_MS = 10_000;

/** Stored commands looked at per eviction round. */
export const EVICT_BATCH = 200;

/** Options of {@link InboxLimiter}. */
export interface InboxLimiterOptions {
  store: CommandStore;
  limits: DiskLimits;
  deadLetter: DeadLetterStored;
  metrics: Metrics;
  log: Logger;
  now?: () => number;
}

/** The inbox limits of one worker. */
export class InboxLimiter {
  /** Bytes of commands admitted and still being written (not yet in `store.bytes()`). */
  private reserved = 0;
  /** Evictions run one at a time (two must not pick the same oldest rows). */
  private chain: Promise<unknown> = Promise.resolve();
  /** Evictions not logged yet, by reason, and when the last eviction line was written. */
  private readonly unlogged = new Map<DropReason, number>();
  private lastLog = Number.NEGATIVE_INFINITY;

  constructor(private readonly o: InboxLimiterOptions) {}

  private held(): number {
    return this.o.store.bytes() + this.reserved;
  }

  /**
   * Stores `c` if the limits allow it (dead-lettering the oldest stored commands to make room);
   * resolves with null once stored, or with the limit that keeps it out (nothing stored).
   */
  async store(c: Command): Promise<LimitReason | null> {
    const { limits } = this.o;
    if (limits.underFloor()) return this.refused(c, "min_free_bytes");
    const size = commandBytes(c);
    let excess = limits.inboxExcess(this.held(), size);
    limits.noteBytes("inbox_max_bytes", excess > 0, this.held(), limits.settings.inboxMaxBytes);
    if (excess === Number.POSITIVE_INFINITY) return this.refused(c, "inbox_max_bytes");
    if (excess > 0) {
      await this.exclusive(() => this.evictBytes(limits.inboxExcess(this.held(), size)));
      excess = limits.inboxExcess(this.held(), size);
      if (excess > 0) return this.refused(c, "inbox_max_bytes");
    }
    this.reserved += size;
    try {
      await this.o.store.add(c);
    } finally {
      this.reserved -= size;
    }
    return null;
  }

  /**
   * Dead-letters expired stored commands (their expiry passed before their device acked them:
   * they are never delivered, and the back-end learns of them as RabbitMQ tells of a message
   * expired in a queue), then those past the age limit, then trims the inbox to its byte share.
   */
  async sweep(): Promise<void> {
    await this.exclusive(async () => {
      for (;;) {
        const expired = this.o.store.expired((this.o.now ?? Date.now)(), EVICT_BATCH);
        if (expired.length === 0 || (await this.evict(expired, "expired")) < expired.length) break;
      }
      const maxAge = this.o.limits.settings.inboxMaxAgeMs;
      if (maxAge > 0) {
        const before = (this.o.now ?? Date.now)() - maxAge;
        for (;;) {
          const old = this.o.store.oldest(EVICT_BATCH).filter((r) => r.storedAt < before);
          if (old.length === 0) break;
          if ((await this.evict(old, "inbox_max_age")) < old.length) break;
        }
      }
      const max = this.o.limits.settings.inboxMaxBytes;
      const over = max > 0 ? this.held() - max : 0;
      if (over > 0) await this.evictBytes(over);
      this.o.limits.noteBytes("inbox_max_bytes", false, this.held(), max);
      this.report(null);
    });
  }

  private exclusive<T>(job: () => Promise<T>): Promise<T> {
    const run = this.chain.then(job, job);
    this.chain = run.catch(() => {});
    return run;
  }

  /** Dead-letters the oldest stored commands until at least `bytes` are freed (or nothing more can be). */
  private async evictBytes(bytes: number): Promise<void> {
    let freed = 0;
    while (freed < bytes) {
      const rows = this.o.store.oldest(EVICT_BATCH);
      const pick: StoredCommand[] = [];
      let sum = freed;
      for (const r of rows) {
        if (sum >= bytes) break;
        pick.push(r);
        sum += commandBytes(r);
      }
      if (pick.length === 0) return;
      const done = await this.evict(pick, "inbox_max_bytes");
      for (const r of pick.slice(0, done)) freed += commandBytes(r);
      if (done < pick.length) return;
    }
  }

  /** Dead-letters `rows` in order and deletes them; returns how many went (a prefix). */
  private async evict(rows: StoredCommand[], reason: DropReason): Promise<number> {
    const results = await Promise.allSettled(rows.map((r) => this.o.deadLetter(r, reason)));
    let n = 0;
    while (n < rows.length && results[n]!.status === "fulfilled") n++;
    for (const r of rows.slice(0, n)) await this.o.store.remove(r.deviceId, r.id);
    if (n > 0) {
      if (reason === "expired") this.o.metrics.inc("owsla_commands_expired_total", undefined, n);
      else this.o.metrics.inc("owsla_commands_dropped_total", { reason }, n);
      this.unlogged.set(reason, (this.unlogged.get(reason) ?? 0) + n);
    }
    this.report(n < rows.length ? { reason, left: rows.length - n, err: (results[n] as PromiseRejectedResult).reason as Error } : null);
    return n;
  }

  /** Logs the evictions not logged yet and a failure to dead-letter, one line per {@link LOG_EVERY_MS} at most. */
  private report(failed: { reason: DropReason; left: number; err: Error } | null): void {
    const now = (this.o.now ?? Date.now)();
    // A back-end flooding offline devices evicts per command: never a line per command.
    if (now - this.lastLog < LOG_EVERY_MS) return;
    if (this.unlogged.size > 0) {
      this.lastLog = now;
      this.o.log.warn("Dead-lettered stored commands: expired before their device acked them, or over the inbox limits (their x-owsla-rejected header says which)", { dead_lettered: Object.fromEntries(this.unlogged) });
      this.unlogged.clear();
    }
    if (failed) {
      this.lastLog = now;
      this.o.log.warn("Cannot dead-letter stored commands yet (expired, or over the inbox limits); they stay stored, never delivered if expired, until the broker takes the copies", failed);
    }
  }

  private refused(c: Command, reason: LimitReason): LimitReason {
    this.o.metrics.inc("owsla_commands_dropped_total", { reason });
    this.o.log.debug("Command not stored (store limit)", { device: c.deviceId, id: c.id, reason });
    return reason;
  }
}
