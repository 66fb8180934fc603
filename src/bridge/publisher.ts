/**
 * Upstream publishing with publisher confirms and an outbox.
 *
 * `publish()` resolves once a message is safe: confirmed by the broker, or durably written to
 * the outbox (link down, broker blocked, window full, publish rejected, or no confirm within
 * `confirmTimeoutMs`). Messages of a device that has rows in the outbox queue behind them, so
 * per-device order holds while the outbox drains; a message that goes to the outbox takes its
 * device's unconfirmed direct publishes there first, so none of them can land behind it.
 * Re-sends keep the original `message_id`.
 */
import type { AMQPProperties } from "@cloudamqp/amqp-client";
import type { Logger } from "../log/logger.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { OutboxRow, OutboxStore, UpMessage } from "../store/interfaces.ts";
import { StoreLimitError, UnpublishableError } from "../protocol/gateway-messages.ts";
import type { DiskLimits } from "../store/disk-limits.ts";
import { FRAME_POOL_IDLE, FRAME_POOL_MAX, trimFramePool, type BrokerLink } from "./link.ts";

/** Options for {@link Publisher}. */
export interface PublisherOptions {
  exchange: string;
  /** Publishes in flight (unconfirmed) at most; more go to the outbox. */
  window: number;
  /** A publish without confirm after this long is moved to the outbox. */
  confirmTimeoutMs: number;
  /** Rows published per drain round. */
  drainBatch?: number;
  /** Outbox rows sent per second at most while draining; 0 = as fast as the broker confirms. Default 0. */
  drainRatePerS?: number;
  /** Time between "Outbox drain progress" log lines while draining, in ms. Default {@link DRAIN_PROGRESS_EVERY_S} s. */
  drainProgressEveryMs?: number;
  /** Store limits (outbox bytes, free-space floor); absent = none. */
  limits?: DiskLimits;
  /** Bytes the outbox holds at start (as {@link outboxBytesOf} counts them). Default 0. */
  heldBytes?: number;
}

/** Bytes a message takes in the outbox, as counted against `store.outbox_max_bytes` (body and stored properties). */
export function outboxBytesOf(m: UpMessage): number {
  return m.body.byteLength + JSON.stringify(m.props).length;
}

/** Seconds between drain progress lines in the log. */
export const DRAIN_PROGRESS_EVERY_S = 10;

/** Converts the stored properties of an upstream message into AMQP properties. */
export function amqpProps(m: UpMessage): AMQPProperties {
  return {
    messageId: m.messageId,
    timestamp: new Date(m.props.timestamp),
    contentType: "application/json",
    deliveryMode: 2,
    replyTo: m.props.replyTo,
    correlationId: m.props.correlationId,
    headers: m.props.headers,
  };
}

/** A message the broker can never take (AMQP short strings are at most 255 bytes). */
export { UnpublishableError };

/** Whether `v` fits an AMQP short string for sure without counting its bytes (≤ 3 per UTF-16 unit). */
const surelyShort = (v: string) => v.length <= 85;

/** Why `m` can never be published, or null when it can. */
export function unpublishable(m: UpMessage): string | null {
  if (surelyShort(m.routingKey) && surelyShort(m.props.correlationId) && surelyShort(m.messageId) && surelyShort(m.props.replyTo)) return null;
  for (const [what, v] of [
    ["routing key", m.routingKey],
    ["correlation_id", m.props.correlationId],
    ["message_id", m.messageId],
    ["reply_to", m.props.replyTo],
  ] as const) {
    if (Buffer.byteLength(v) > 255) return `${what} is ${Buffer.byteLength(v)} bytes; AMQP allows 255`;
  }
  return null;
}

/** Publishes device messages upstream without losing any. */
export class Publisher {
  /** Unconfirmed direct publishes. */
  inflight = 0;
  private readonly backlog = new Map<string, number>();
  private draining = false;
  /** Per device, the fallbacks of its unconfirmed direct publishes, in publish order. */
  private readonly pendingDirect = new Map<string, Set<(why: string) => void>>();
  private lastFailureLog = 0;
  private drainTimer: ReturnType<typeof setInterval>;
  /** Bytes in the outbox plus those being written (a running total: no table scan per message). */
  heldBytes: number;

  constructor(
    private readonly link: BrokerLink,
    private readonly outbox: OutboxStore,
    private readonly opts: PublisherOptions,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    for (const [d, n] of outbox.countsByDevice()) this.backlog.set(d, n);
    this.heldBytes = opts.heldBytes ?? 0;
    const rows = this.outboxDepth;
    if (rows > 0) log.info("Outbox holds messages from before the restart; they are sent when the broker is up", { rows });
    link.onUp(() => this.drain());
    link.onDown(() => this.onLinkDown());
    link.onUnblocked(() => this.drain());
    this.drainTimer = setInterval(() => {
      // Once a burst is over (few publishes in flight), let amqp-client's frame buffers go.
      if (this.inflight < FRAME_POOL_MAX) trimFramePool(this.link.pub, Math.max(FRAME_POOL_IDLE, 2 * this.inflight));
      void this.drain();
    }, 1000);
    metrics.gauge("owsla_publish_inflight", () => this.inflight);
  }

  /** Stops the periodic drain. */
  stop(): void {
    clearInterval(this.drainTimer);
  }

  /** Resolves once `m` is confirmed by the broker or stored in the outbox; rejects only if neither is possible. */
  publish(m: UpMessage): Promise<void> {
    const why = unpublishable(m);
    if (why) return Promise.reject(new UnpublishableError(`Message cannot be sent to the broker: ${why}`));
    const link = this.link;
    if (!link.up || link.blocked || this.backlog.has(m.deviceId) || this.inflight >= this.opts.window || !link.pub) {
      // Its unconfirmed predecessors must not end up behind it in the outbox.
      this.spill(m.deviceId, "order");
      return this.toOutbox(m);
    }
    const ch = link.pub;
    link.corkTick();
    const started = performance.now();
    this.inflight++;
    let pending = this.pendingDirect.get(m.deviceId);
    if (!pending) this.pendingDirect.set(m.deviceId, (pending = new Set()));
    const mine = pending;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (): boolean => {
        if (settled) return false;
        settled = true;
        clearTimeout(timer);
        this.inflight--;
        mine.delete(fallback);
        if (mine.size === 0 && this.pendingDirect.get(m.deviceId) === mine) this.pendingDirect.delete(m.deviceId);
        return true;
      };
      const fallback = (why: string) => {
        if (!settle()) return;
        this.metrics.inc("owsla_publish_fallbacks_total", { reason: why });
        this.toOutbox(m).then(resolve, reject);
      };
      mine.add(fallback);
      // A publish that fails takes the device's later unconfirmed ones to the outbox with it,
      // in order: a later one confirmed directly would overtake it.
      const timer = setTimeout(() => this.spill(m.deviceId, "confirm_timeout"), this.opts.confirmTimeoutMs);
      ch.basicPublish(this.opts.exchange, m.routingKey, m.body, amqpProps(m)).then(
        () => {
          if (!settle()) return;
          this.metrics.inc("owsla_messages_up_total");
          this.metrics.observe("owsla_publish_confirm_ms", performance.now() - started);
          resolve();
        },
        (err: unknown) => {
          if (!settled) this.spill(m.deviceId, "rejected");
          link.publishFailed(err);
        },
      );
    });
  }

  /** Moves every unconfirmed direct publish of `deviceId` to the outbox, oldest first. */
  private spill(deviceId: string, why: string): void {
    const pending = this.pendingDirect.get(deviceId);
    if (!pending) return;
    for (const fallback of [...pending]) fallback(why);
  }

  /**
   * The link went down: every unconfirmed publish goes to the outbox now, oldest first per
   * device, before any newer message can (a rejection from the client may come later, or never,
   * when the socket died mid-write). A late confirm then only makes a duplicate with the same id.
   */
  private onLinkDown(): void {
    for (const deviceId of [...this.pendingDirect.keys()]) this.spill(deviceId, "link_down");
  }

  /** Rows in the outbox plus those being written. */
  get outboxDepth(): number {
    let n = 0;
    for (const v of this.backlog.values()) n += v;
    return n;
  }

  private toOutbox(m: UpMessage): Promise<void> {
    const size = outboxBytesOf(m);
    const limit = this.opts.limits?.outboxRefusal(this.heldBytes, size) ?? null;
    if (limit) {
      this.metrics.inc("owsla_pubs_refused_total", { reason: limit });
      const why = limit === "min_free_bytes" ? "the data directory's free space is under store.min_free_bytes" : "the outbox is at store.outbox_max_bytes";
      return Promise.reject(new StoreLimitError(limit, `Gateway cannot store this message: the broker is not taking messages and ${why}; it was not accepted, send it again later`));
    }
    this.heldBytes += size;
    this.backlog.set(m.deviceId, (this.backlog.get(m.deviceId) ?? 0) + 1);
    return this.outbox.add(m).then(
      () => {
        this.metrics.inc("owsla_outbox_writes_total");
        if (this.link.up) queueMicrotask(() => this.drain());
      },
      (err: Error) => {
        this.release(m.deviceId, 1);
        this.heldBytes -= size;
        this.metrics.inc("owsla_outbox_failures_total");
        // One line per 30 s at most: with a full disk every message fails.
        if (Date.now() - this.lastFailureLog >= 30_000) {
          this.lastFailureLog = Date.now();
          this.log.error("Cannot store messages in the outbox; devices get server_busy instead of ack and should retry. Check free disk space and that store.dir is writable", { err, failures: this.metrics.get("owsla_outbox_failures_total") });
        }
        throw err;
      },
    );
  }

  private release(deviceId: string, n: number): void {
    const left = (this.backlog.get(deviceId) ?? 0) - n;
    if (left > 0) this.backlog.set(deviceId, left);
    else this.backlog.delete(deviceId);
  }

  /** Sends outbox rows in order while the link is up; safe to call at any time. */
  async drain(): Promise<void> {
    if (this.draining || !this.link.up || this.link.blocked) return;
    this.draining = true;
    const rate = this.opts.drainRatePerS ?? 0;
    // Paced: about ten batches a second, each waiting for its share of the second.
    const batch = rate > 0 ? Math.max(1, Math.min(this.opts.drainBatch ?? 500, Math.ceil(rate / 10))) : (this.opts.drainBatch ?? 500);
    const started = performance.now();
    const startDepth = this.outboxDepth;
    let sent = 0;
    const progressEveryMs = this.opts.drainProgressEveryMs ?? DRAIN_PROGRESS_EVERY_S * 1000;
    let nextProgress = started + progressEveryMs;
    if (startDepth >= batch) this.log.info("Draining the outbox to the broker", { messages: startDepth, rate_per_s: rate || "unlimited" });
    try {
      while (this.link.up && !this.link.blocked && this.link.pub) {
        const batchStart = performance.now();
        let rows: OutboxRow[];
        try {
          rows = this.outbox.peek(batch);
        } catch (e) {
          this.log.error("Cannot read the outbox; retrying in 1 s", { err: e as Error });
          return;
        }
        if (rows.length === 0) {
          if (this.backlog.size === 0) this.heldBytes = 0; // nothing held or being written: no drift
          this.opts.limits?.outboxRefusal(this.heldBytes, 0); // logs that the limit cleared, if it had been reached
          if (sent >= batch) this.log.info("Outbox drained", { messages: sent, seconds: Math.round((performance.now() - started) / 100) / 10 });
          return;
        }
        // A row that can never be published (written by an older version) must not block the
        // rows behind it: drop it, loudly.
        const poison = rows.filter((r) => unpublishable(r) !== null);
        if (poison.length > 0) {
          await this.outbox.remove(poison.map((r) => r.seq));
          for (const r of poison) {
            this.release(r.deviceId, 1);
            this.heldBytes -= outboxBytesOf(r);
            this.metrics.inc("owsla_outbox_unpublishable_total");
            this.log.error("Dropped an outbox message the broker can never accept", { device: r.deviceId, message_id: r.messageId, why: unpublishable(r) });
          }
          continue;
        }
        const ch = this.link.pub;
        this.link.corkTick();
        const settled = Promise.allSettled(
          rows.map((r) => ch.basicPublish(this.opts.exchange, r.routingKey, r.body, amqpProps(r))),
        );
        const results = await Promise.race([settled, Bun.sleep(this.opts.confirmTimeoutMs * 2).then(() => null)]);
        if (!results) {
          this.log.warn("Broker did not confirm outbox messages in time; retrying later (the back-end may see duplicates)", { rows: rows.length });
          return;
        }
        const confirmed: OutboxRow[] = [];
        for (let i = 0; i < rows.length; i++) {
          const r = results[i]!;
          if (r.status === "fulfilled") confirmed.push(rows[i]!);
          else this.link.publishFailed(r.reason);
        }
        // Only a confirmed prefix is removed: a gap means the channel broke and order must hold.
        let prefix = 0;
        while (prefix < confirmed.length && confirmed[prefix] === rows[prefix]) prefix++;
        const done = rows.slice(0, prefix);
        if (done.length > 0) {
          await this.outbox.remove(done.map((r) => r.seq));
          for (const r of done) {
            this.release(r.deviceId, 1);
            this.heldBytes -= outboxBytesOf(r);
          }
          this.metrics.inc("owsla_messages_up_total", undefined, done.length);
          this.metrics.inc("owsla_outbox_drained_total", undefined, done.length);
          sent += done.length;
        }
        if (prefix < rows.length) return;
        const now = performance.now();
        if (now >= nextProgress) {
          nextProgress = now + progressEveryMs;
          this.log.info("Outbox drain progress", { sent, left: this.outboxDepth, rate_per_s: Math.round(sent / ((now - started) / 1000)) });
        }
        if (rate > 0) {
          const wait = (done.length / rate) * 1000 - (now - batchStart);
          if (wait > 0) await Bun.sleep(wait);
        }
      }
    } catch (e) {
      this.log.warn("Outbox drain interrupted; it resumes when the broker link is back", { err: e as Error });
    } finally {
      this.draining = false;
    }
  }
}
