/**
 * Downstream: consumes this gateway's queue and hands each command to the router.
 *
 * A delivery is acknowledged only after the router resolved, i.e. the command is durably in
 * the inbox (and written to the device when it is connected). Commands for devices this
 * gateway has never seen, or that cannot be parsed, are rejected without requeue, so the
 * broker dead-letters them to `owsla.dead`.
 */
import type { AMQPMessage } from "@cloudamqp/amqp-client";
import type { Logger } from "../log/logger.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { Command } from "../store/inbox.ts";
import { messageId } from "../identity/identity.ts";
import type { BrokerLink } from "./link.ts";

/** Where parsed commands go. */
export interface CommandRouter {
  /**
   * Resolves once the command is stored (and written to the device when connected).
   * `receivedAt` (wall clock, ms) is when the broker handed it over, for latency metrics.
   */
  deliver(cmd: Command, receivedAt: number): Promise<void>;
  /** Whether the gateway knows device `id`. */
  known(id: string): boolean;
}

/** Delays before looking up an unknown device again, before the command is refused, in ms. */
const UNKNOWN_RECHECK_MS = [20, 200];

/** Why a delivery was refused. */
export type RejectReason = "no_device" | "bad_topic" | "unknown_device";

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TOPIC_RE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** Parses an AMQP delivery into a command, or says why it cannot be one. */
export function parseDelivery(
  msg: Pick<AMQPMessage, "properties" | "bodyString">,
  defaultTtlMs: number,
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
    JSON.parse(text);
    body = text;
  } catch {
    body = JSON.stringify(text); // Not JSON: the device receives it as a string.
  }
  const exp = p.expiration !== undefined ? Number(p.expiration) : Number.NaN;
  const ttl = Number.isFinite(exp) && exp >= 0 ? exp : defaultTtlMs;
  return {
    ok: true,
    cmd: { id: p.messageId || messageId(), deviceId, topic, body, corr, expiresAt: now + ttl },
  };
}

/** Consumes the gateway queue whenever the link is up. */
export class CommandConsumer {
  constructor(
    private readonly link: BrokerLink,
    private readonly queue: string,
    private readonly defaultTtlMs: number,
    private readonly router: CommandRouter,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    link.onUp(() => void this.subscribe());
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
    const receivedAt = performance.timeOrigin + performance.now();
    const parsed = parseDelivery(msg, this.defaultTtlMs);
    if (!parsed.ok) return this.refuse(msg, parsed.reason, parsed.message);
    this.accept(msg, parsed.cmd, 0, receivedAt);
  }

  private accept(msg: AMQPMessage, cmd: Command, attempt: number, receivedAt: number): void {
    if (!this.router.known(cmd.deviceId)) {
      // A device welcomed a moment ago on another worker may not be committed yet: look again.
      const wait = UNKNOWN_RECHECK_MS[attempt];
      if (wait !== undefined) {
        setTimeout(() => this.accept(msg, cmd, attempt + 1, receivedAt), wait);
        return;
      }
      return this.refuse(msg, "unknown_device", `Command ${cmd.id} is for device ${cmd.deviceId}, which this gateway has never seen`);
    }
    this.metrics.inc("owsla_commands_received_total");
    this.router.deliver(cmd, receivedAt).then(
      () => msg.ack().catch(() => {}),
      (err: Error) => {
        this.metrics.inc("owsla_command_store_failures_total");
        this.log.error("Cannot store command; the broker redelivers it in 1 s. Check free disk space and store.dir", { id: cmd.id, err });
        setTimeout(() => msg.nack(true).catch(() => {}), 1000);
      },
    );
  }

  private refuse(msg: AMQPMessage, reason: RejectReason, message: string): void {
    this.metrics.inc("owsla_commands_rejected_total", { reason });
    this.log.warn("Rejected command (dead-lettered to owsla.dead)", { reason, detail: message });
    msg.reject(false).catch(() => {});
  }
}
