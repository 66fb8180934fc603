/**
 * Fill-level gauges of a store queue (the outbox: device messages waiting for the broker; the
 * inbox: commands waiting for their devices): bytes held and the age of the oldest entry.
 * Whoever owns the queue calls {@link registerQueueGauges} once with a reader; the exposition
 * shows `owsla_<queue>_bytes` and `owsla_<queue>_oldest_age_seconds` with the process's
 * `worker` label.
 *
 * @module
 */
import type { Metrics } from "./metrics.ts";

/** What a queue reports about itself. */
export interface QueueLevel {
  /** Bytes of message bodies (and their stored metadata, as the owner counts it) held now. */
  bytes: number;
  /** When the oldest entry was stored (ms since the epoch), or null when the queue is empty. */
  oldestAt: number | null;
}

/** The queues the gauges are named after. */
export type QueueName = "outbox" | "inbox";

/**
 * Registers `owsla_<queue>_bytes` and `owsla_<queue>_oldest_age_ms` (exposed as
 * `owsla_<queue>_oldest_age_seconds`). `read` is called for each of the two gauges at every
 * snapshot (a scrape): keep it cheap (running totals, or one indexed query).
 */
export function registerQueueGauges(metrics: Metrics, queue: QueueName, read: () => QueueLevel, now: () => number = Date.now): void {
  metrics.gauge(`owsla_${queue}_bytes`, () => read().bytes);
  metrics.gauge(`owsla_${queue}_oldest_age_ms`, () => {
    const oldest = read().oldestAt;
    return oldest === null ? 0 : Math.max(0, now() - oldest);
  });
}
