/**
 * Site-wide events through the broker: today, device revocations.
 *
 * Every gateway of a site shares the site secret, so a revocation must reach all of them, not
 * only the one where the operator ran it. Each gateway owns a durable queue
 * `<prefix>owsla.site.<gateway id>` bound to the durable fanout exchange `<prefix>owsla.site`.
 * A revocation is published there (persistent, confirmed) and lands in every gateway's queue;
 * a gateway that is offline finds it waiting when it reconnects. A delivery is acknowledged
 * only after `onRevoked` resolved, i.e. after the gateway stored the new token generation
 * durably; if storing fails the broker delivers it again.
 *
 * A revocation published while the broker is unreachable waits in `pending` (and in the file
 * named by `pendingFile`, so a restart does not forget it) and goes out when the link is up.
 * Revocations are idempotent (the receiver keeps the highest generation), so a re-send or a
 * gateway receiving its own revocation changes nothing.
 *
 * The gateway sees only what reached its queue after the queue first existed: a gateway added
 * to a site later learns older revocations from the site database (the lead's site records),
 * not from here.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import type { AMQPChannel, AMQPClient, AMQPMessage } from "@cloudamqp/amqp-client";
import type { Logger } from "../log/logger.ts";
import { BrokerLink, type LinkOptions } from "./link.ts";
import { declareQueue } from "./topology.ts";

/** A revocation as it travels between gateways. */
export interface SiteRevocation {
  /** Device UUID (the same on every gateway of the site). */
  deviceId: string;
  /** Token generation the device must present from now on (older tokens are refused). */
  generation: number;
  /** Hardware id, when the revoking gateway knows it (lets the others record the device). */
  hardwareId: string | null;
  /** Gateway that revoked. */
  origin: string;
  /** When, ms since the epoch. */
  at: number;
}

/** Exchange and queue names of the site events for gateway `gatewayId`. */
export function siteNames(prefix: string, gatewayId: string): { exchange: string; queue: string } {
  return { exchange: `${prefix}owsla.site`, queue: `${prefix}owsla.site.${gatewayId}` };
}

/** Options for {@link SiteEvents}. */
export interface SiteEventsOptions {
  /** Broker connection settings (URLs, TLS, backoff); `topology` and `declare` are set here. */
  link: Omit<LinkOptions, "declare">;
  prefix: string;
  gatewayId: string;
  /** Type of the gateway's site queue. */
  queueType: "quorum" | "classic";
  /** Stores the revocation durably and applies it; the delivery is acked once it resolves. */
  onRevoked(r: SiteRevocation): Promise<void>;
  /** File keeping revocations not yet confirmed by the broker across restarts. */
  pendingFile: string;
  log: Logger;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Parses a site event body; null (with the reason) when it is not a valid revocation. */
export function parseRevocation(body: string | null): { ok: true; r: SiteRevocation } | { ok: false; why: string } {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(body ?? "") as Record<string, unknown>;
  } catch {
    return { ok: false, why: "body is not JSON" };
  }
  if (typeof v !== "object" || v === null || v.type !== "revocation") return { ok: false, why: "type is not \"revocation\"" };
  if (typeof v.device_id !== "string" || !UUID_RE.test(v.device_id)) return { ok: false, why: "device_id is not a lower-case UUID" };
  if (typeof v.generation !== "number" || !Number.isSafeInteger(v.generation) || v.generation < 1) return { ok: false, why: "generation is not a positive integer" };
  const hw = typeof v.hardware_id === "string" && v.hardware_id.length <= 256 ? v.hardware_id : null;
  return {
    ok: true,
    r: { deviceId: v.device_id, generation: v.generation, hardwareId: hw, origin: String(v.origin ?? ""), at: Number(v.at) || 0 },
  };
}

/** Encodes a revocation as published. */
export function encodeRevocation(r: SiteRevocation): string {
  return JSON.stringify({ type: "revocation", device_id: r.deviceId, generation: r.generation, hardware_id: r.hardwareId, origin: r.origin, at: r.at });
}

/** The site events of one gateway: publishes revocations and consumes its site queue. */
export class SiteEvents {
  readonly link: BrokerLink;
  readonly names: { exchange: string; queue: string };
  /** Revocations applied from the site queue. */
  received = 0;
  private pending: SiteRevocation[] = [];
  private flushing = false;

  constructor(private readonly o: SiteEventsOptions) {
    this.names = siteNames(o.prefix, o.gatewayId);
    const { exchange, queue } = this.names;
    this.link = new BrokerLink({
      ...o.link,
      topology: { ...o.link.topology, queue },
      declare: async (client: AMQPClient, ch: AMQPChannel, log: Logger) => {
        await ch.exchangeDeclare(exchange, "fanout", { durable: true });
        await declareQueue(client, { name: queue, args: o.queueType === "quorum" ? { "x-queue-type": "quorum" } : {}, bind: { exchange, key: "" } }, log);
        await ch.queueBind(queue, exchange, "");
      },
    });
    this.pending = this.loadPending();
    this.link.onUp(() => {
      void this.consume();
      void this.flush();
    });
  }

  /** Connects (in the background). */
  start(): void {
    this.link.start();
  }

  /** Stops consuming and closes the connections. */
  async close(): Promise<void> {
    await this.link.close();
  }

  /**
   * Publishes a revocation to every gateway of the site. Resolves once the broker confirmed
   * it, or once it is kept in the pending file (broker unreachable): it goes out later.
   */
  async publishRevocation(r: SiteRevocation): Promise<"sent" | "pending"> {
    this.pending.push(r);
    this.savePending();
    await this.flush();
    return this.pending.includes(r) ? "pending" : "sent";
  }

  /** Revocations not yet confirmed by the broker. */
  get pendingCount(): number {
    return this.pending.length;
  }

  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.pending.length > 0 && this.link.up && this.link.pub) {
        const r = this.pending[0]!;
        await this.link.pub.basicPublish(this.names.exchange, "", encodeRevocation(r), {
          messageId: `revocation:${r.deviceId}:${r.generation}`,
          type: "revocation",
          contentType: "application/json",
          deliveryMode: 2,
          timestamp: new Date(r.at),
        });
        this.pending.shift();
        this.savePending();
      }
    } catch (e) {
      this.link.publishFailed(e);
      this.o.log.warn("Cannot publish a site revocation yet; it is kept and sent when the broker link is back", { err: e as Error, pending: this.pending.length });
    } finally {
      this.flushing = false;
    }
  }

  private async consume(): Promise<void> {
    const ch = this.link.sub;
    if (!ch) return;
    try {
      await ch.basicConsume(this.names.queue, { noAck: false }, (msg) => void this.handle(msg));
    } catch (e) {
      this.o.log.error("Cannot consume the site queue; resetting its broker link", { queue: this.names.queue, err: e as Error });
      this.link.reset("site consume failed");
    }
  }

  private async handle(msg: AMQPMessage): Promise<void> {
    const parsed = parseRevocation(msg.bodyString());
    if (!parsed.ok) {
      this.o.log.warn("Dropped an invalid site event", { why: parsed.why, message_id: msg.properties.messageId });
      await msg.ack().catch(() => {});
      return;
    }
    try {
      await this.o.onRevoked(parsed.r);
      this.received++;
      await msg.ack().catch(() => {});
    } catch (e) {
      this.o.log.error("Cannot store a site revocation; the broker delivers it again in 1 s. Check free disk space and store.dir", { device: parsed.r.deviceId, err: e as Error });
      setTimeout(() => msg.nack(true).catch(() => {}), 1000);
    }
  }

  private loadPending(): SiteRevocation[] {
    if (!existsSync(this.o.pendingFile)) return [];
    try {
      const v = JSON.parse(readFileSync(this.o.pendingFile, "utf8")) as SiteRevocation[];
      return Array.isArray(v) ? v : [];
    } catch (e) {
      this.o.log.error("Cannot read the pending site revocations; they are not re-sent. Revoke those devices again", { file: this.o.pendingFile, err: e as Error });
      return [];
    }
  }

  private savePending(): void {
    try {
      // Written to a new file, synced, then renamed over the old one: a crash leaves one or the other.
      const tmp = `${this.o.pendingFile}.tmp`;
      const fd = openSync(tmp, "w", 0o600);
      try {
        writeSync(fd, JSON.stringify(this.pending));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.o.pendingFile);
    } catch (e) {
      this.o.log.error("Cannot write the pending site revocations file; they are sent if the gateway keeps running", { file: this.o.pendingFile, err: e as Error });
    }
  }
}
