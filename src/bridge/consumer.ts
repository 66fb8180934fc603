/**
 * Downstream: consumes this gateway's queue and hands each command to the router, which acks
 * the delivery once the command is safe (the device acked it, or it is in the worker's store).
 * Commands that cannot be parsed, or that no device could take (a frame over the device frame
 * limit), are rejected without requeue, so the broker dead-letters them to `owsla.dead`.
 */
import type { AMQPMessage } from "@cloudamqp/amqp-client";
import type { Logger } from "../log/logger.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { Command } from "../protocol/gateway-messages.ts";
import { compactJsonText, encodeCommandFrame } from "../protocol/frames.ts";
import { messageId } from "../identity/identity.ts";
import type { BrokerLink } from "./link.ts";
import { deadLetterByCopy, needsDeadLetterCopy } from "./dead-letter-copy.ts";
import type { LimitReason } from "../store/disk-limits.ts";
import { BurstLog } from "../log/burst-log.ts";

/** Where parsed commands go (the worker's command router). */
export interface CommandSink {
  /** Takes responsibility for `cmd`; calls `delivery.ack()` once it is safe. */
  accept(cmd: Command, delivery: DeliveryHandle, receivedAt: number): void;
  /** The link dropped: unacked deliveries return to the queue by themselves. */
  forgetDeliveries(): void;
}

/** What the router may do with a delivery. */
export interface DeliveryHandle {
  /** The broker delivered it before (see `Delivery.redelivered` in the router). */
  readonly redelivered?: boolean;
  ack(): void;
  reject(reason: "unknown_device" | LimitReason, message: string): void;
  retry(): void;
}

/** Why a delivery was refused. */
export type RejectReason = "no_device" | "bad_topic" | "unknown_device" | "too_large" | LimitReason;

/** Refusals for a store limit: dead-lettered by copy, so the copy names the limit in `x-owsla-rejected`. */
const LIMIT_REASONS: ReadonlySet<RejectReason> = new Set<LimitReason>(["inbox_max_bytes", "inbox_max_age", "min_free_bytes", "outbox_max_bytes"]);

/** Rejected commands are logged at most {@link REJECT_LOG_BURST} times per reason in this window, in ms. */
export const REJECT_LOG_WINDOW_MS = 10_000;
/** Lines per reason and window before the rest are only counted (`left_out` on the next line). */
export const REJECT_LOG_BURST = 20;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TOPIC_RE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** Parses an AMQP delivery into a command, or says why it cannot be one. */
export function parseDelivery(
  msg: Pick<AMQPMessage, "properties" | "bodyString">,
  defaultTtlMs: number,
  maxFrameBytes = Number.POSITIVE_INFINITY,
  now = Date.now(),
): { ok: true; cmd: Command } | { ok: false; reason: RejectReason; message: string } {
  const p = msg.properties;
  const headers = p.headers ?? {};
  const corrIn = typeof p.correlationId === "string" ? p.correlationId : null;
  let deviceId = typeof headers.device_id === "string" ? headers.device_id.toLowerCase() : null;
  if (!deviceId && corrIn) {
    const i = corrIn.indexOf(":");
    if (i > 0) deviceId = corrIn.slice(0, i).toLowerCase();
  }
  if (!deviceId || !UUID_RE.test(deviceId)) {
    return { ok: false, reason: "no_device", message: "Command names no device: set header device_id to the device UUID, or reply with the request's correlation_id" };
  }
  let corr = corrIn;
  if (corr && corr.toLowerCase().startsWith(deviceId + ":")) corr = corr.slice(deviceId.length + 1);
  const topic = typeof headers.topic === "string" ? headers.topic : "cmd";
  if (!TOPIC_RE.test(topic) || topic.length > 200) {
    return { ok: false, reason: "bad_topic", message: `Command topic ${JSON.stringify(topic)} is invalid: use [A-Za-z0-9_-] segments joined by "."` };
  }
  const text = msg.bodyString() ?? "";
  let body: string;
  try {
    JSON.parse(text); // validates only: the body is forwarded as sent (numbers, nesting)
    body = compactJsonText(text);
  } catch {
    body = JSON.stringify(text); // Not JSON: the device receives it as a string.
  }
  const exp = p.expiration !== undefined ? Number(p.expiration) : Number.NaN;
  const ttl = Number.isFinite(exp) && exp >= 0 ? exp : defaultTtlMs;
  const cmd: Command = { id: p.messageId || messageId(), deviceId, topic, body, corr, expiresAt: now + ttl };
  // UTF-8 needs at most 3 bytes per UTF-16 unit (6 for a JSON-escaped control character in the
  // id, topic or corr); only a command that might not fit is measured.
  const bound = 3 * cmd.body.length + 6 * (cmd.id.length + cmd.topic.length + (cmd.corr?.length ?? 0)) + 64;
  if (Number.isFinite(maxFrameBytes) && bound > maxFrameBytes) {
    const size = encodeCommandFrame(cmd.id, cmd.topic, cmd.body, cmd.corr).length;
    if (size > maxFrameBytes) {
      return { ok: false, reason: "too_large", message: `Command ${cmd.id} would be a ${size}-byte frame, over the device frame limit of ${maxFrameBytes} bytes (device.max_frame_bytes); send a smaller body` };
    }
  }
  return { ok: true, cmd };
}

/** Pause before a delivery whose command could not be stored goes back to the queue, in ms. */
export const STORE_RETRY_MS = 1000;

/** Consumes the gateway queue whenever the link is up. */
export class CommandConsumer {
  constructor(
    private readonly link: BrokerLink,
    private readonly queue: string,
    private readonly defaultTtlMs: number,
    private readonly maxFrameBytes: number,
    private readonly sink: CommandSink,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    /** Dead-letter exchange, for refused commands that carry an `x-death` header (see dead-letter-copy.ts). */
    private readonly deadExchange: string,
  ) {
    link.onUp(() => void this.subscribe());
    link.onDown(() => sink.forgetDeliveries());
  }

  private async subscribe(): Promise<void> {
    const ch = this.link.sub;
    if (!ch) return;
    try {
      await ch.basicConsume(this.queue, { noAck: false }, (msg) => this.handle(msg));
    } catch (e) {
      this.log.error("Cannot consume the gateway queue; resetting the broker link", { queue: this.queue, err: e as Error });
      this.link.reset("consume failed");
    }
  }

  private handle(msg: AMQPMessage): void {
    const receivedAt = Date.now();
    let parsed: ReturnType<typeof parseDelivery>;
    try {
      parsed = parseDelivery(msg, this.defaultTtlMs, this.maxFrameBytes);
    } catch (err) {
      // Nothing a back-end sends may take the worker down.
      return this.refuse(msg, "no_device", `Command cannot be read: ${(err as Error).message}`);
    }
    if (!parsed.ok) return this.refuse(msg, parsed.reason, parsed.message);
    this.sink.accept(parsed.cmd, {
      redelivered: msg.redelivered,
      ack: () => {
        this.link.corkSubTick();
        msg.ack().catch(() => {});
      },
      reject: (reason, message) => this.refuse(msg, reason, message),
      retry: () => setTimeout(() => msg.nack(true).catch(() => {}), STORE_RETRY_MS),
    }, receivedAt);
  }

  /** A hostile back-end can send thousands of bad commands a second: each reason gets a bounded number of lines. */
  private readonly rejectLog = new BurstLog((msg, fields) => this.log.warn(msg, fields), { windowMs: REJECT_LOG_WINDOW_MS, burst: REJECT_LOG_BURST });

  private logRejection(reason: RejectReason, message: string): void {
    this.rejectLog.note(reason, "Rejected command (dead-lettered to owsla.dead); the back-end sent a command the gateway cannot deliver", { reason, detail: message.slice(0, 300) });
  }

  private refuse(msg: AMQPMessage, reason: RejectReason, message: string): void {
    this.metrics.inc("owsla_commands_rejected_total", { reason });
    // A store limit refuses every command while it holds: its state change is logged once (disk-limits.ts).
    if (LIMIT_REASONS.has(reason)) this.log.debug("Rejected command (dead-lettered to owsla.dead)", { reason, detail: message });
    else this.logRejection(reason, message);
    if (needsDeadLetterCopy(msg.properties.headers) || LIMIT_REASONS.has(reason)) {
      void deadLetterByCopy(this.link.pub, this.deadExchange, msg, reason, STORE_RETRY_MS).then((ok) => {
        if (!ok) this.log.warn("Cannot dead-letter a command by copy yet (x-death header or store limit; the broker did not confirm the copy); it goes back to the queue", { reason });
      });
      return;
    }
    msg.reject(false).catch(() => {});
  }
}
