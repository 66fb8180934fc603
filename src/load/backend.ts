/**
 * The back-end simulator: consumes every device message from `<prefix>owsla.up`, answers each
 * one the standard RPC way (default exchange, routing key = `reply_to`, same
 * `correlation_id`), learns which devices are connected from `$presence`, and sends
 * back-end-initiated commands (door unlocks) at a set rate through `<prefix>owsla.down`.
 * A device answers such a command with a `door.ack` pub whose ref is the command id; the
 * time from publishing the command to receiving that `door.ack` is the door-unlock latency.
 */
import { AMQPClient, type AMQPChannel, type AMQPMessage } from "@cloudamqp/amqp-client";
import { linkUrl } from "../bridge/link.ts";
import { Histogram } from "./histogram.ts";
import { watchLoopLag } from "./loop-lag.ts";
import type { BackendOptions } from "./options.ts";
import { zeroBackendCounters, type BackendCounters, type BackendFinal } from "./stats.ts";
import { corkClientForTick } from "../bridge/link.ts";

/** Commands are scheduled in steps of this many ms. */
const CMD_TICK_MS = 10;
/** A command without `door.ack` after this long counts as timed out, in ms. */
const CMD_TIMEOUT_MS = 30_000;
/** Body of every RPC reply. */
const REPLY_BODY = '{"ok":true}';
/**
 * AMQP heartbeat of the simulator's connection, in s: off. amqp-client only answers the
 * broker's heartbeats, and RabbitMQ sends none while deliveries flow, so a consumer that
 * publishes nothing (no RPC replies, no commands) for two intervals is closed for "missed
 * heartbeats from client" (seen here during a 200k-device stampede of presence events).
 */
const HEARTBEAT_S = 0;

const now = () => performance.now();
const wall = () => performance.timeOrigin + performance.now();

/** The `id` of a JSON body `{"id": ...}` ("" when there is none). */
function bodyId(msg: AMQPMessage): string {
  try {
    const id = JSON.parse(msg.bodyString() ?? "{}")?.id;
    return typeof id === "string" ? id : "";
  } catch {
    return "";
  }
}

/** Connected devices known from presence, with O(1) add, remove and random pick. */
class DeviceSet {
  private readonly ids: string[] = [];
  private readonly at = new Map<string, { i: number; gateway: string; conn: string }>();

  get size(): number {
    return this.ids.length;
  }

  add(id: string, gateway: string, conn: string): void {
    const e = this.at.get(id);
    if (e) {
      e.gateway = gateway;
      e.conn = conn;
      return;
    }
    this.at.set(id, { i: this.ids.length, gateway, conn });
    this.ids.push(id);
  }

  /** Removes `id` unless a newer connection (another `conn`) has taken it over. */
  remove(id: string, conn: string): void {
    const e = this.at.get(id);
    if (!e || (conn && e.conn !== conn)) return;
    const last = this.ids.pop()!;
    if (last !== id) {
      this.ids[e.i] = last;
      this.at.get(last)!.i = e.i;
    }
    this.at.delete(id);
  }

  /** A random device and its gateway, or null when none is connected. */
  pick(): { id: string; gateway: string } | null {
    if (this.ids.length === 0) return null;
    const id = this.ids[Math.floor(Math.random() * this.ids.length)]!;
    return { id, gateway: this.at.get(id)!.gateway };
  }
}

/** A running back-end simulator. */
export class BackendSim {
  readonly counters: BackendCounters = zeroBackendCounters();
  readonly doorUnlock = new Histogram();
  private readonly devices = new DeviceSet();
  private readonly lag = watchLoopLag();
  private readonly pending = new Map<string, number>();
  private client: AMQPClient | null = null;
  private pub: AMQPChannel | null = null;
  private cmdTimer: ReturnType<typeof setInterval> | null = null;
  private sweep: ReturnType<typeof setInterval> | null = null;
  private cmdStartAt = 0;
  private cmdsDue = 0;

  constructor(private readonly opts: BackendOptions) {}

  /** Connects, declares the exchanges and a private queue bound to every device message, and consumes. */
  async start(): Promise<void> {
    const client = new AMQPClient(linkUrl(this.opts.broker, HEARTBEAT_S, "owsla load backend"));
    try {
      await client.connect();
    } catch (e) {
      throw new Error(`Cannot connect to the broker for the back-end simulator: ${(e as Error).message}; check --broker and that RabbitMQ runs`);
    }
    this.client = client;
    client.onerror = (err) => this.count(`broker_${err.message.slice(0, 40)}`);
    const sub = await client.channel();
    this.pub = await client.channel();
    const up = `${this.opts.prefix}owsla.up`;
    await sub.exchangeDeclare(up, "topic", { durable: true });
    await sub.exchangeDeclare(`${this.opts.prefix}owsla.down`, "direct", { durable: true });
    const q = await sub.queueDeclare("", { exclusive: true, autoDelete: true });
    await sub.queueBind(q.name, up, "#");
    await sub.basicConsume(q.name, { noAck: true }, (msg) => this.onMessage(msg));
    this.sweep = setInterval(() => this.onSweep(), 1000);
  }

  /** Starts back-end-initiated commands at the configured rate. */
  startCommands(): void {
    if (this.cmdTimer || this.opts.cmdRate <= 0) return;
    this.cmdStartAt = now();
    this.cmdTimer = setInterval(() => this.sendDueCommands(), CMD_TICK_MS);
  }

  /** Counters with the device gauge brought up to date. */
  snapshot(): BackendCounters {
    this.counters.devices = this.devices.size;
    return this.counters;
  }

  /** Everything measured. */
  final(): BackendFinal {
    return { counters: this.snapshot(), doorUnlock: this.doorUnlock.toData(), loopLag: this.lag.histogram.toData(), rssBytes: process.memoryUsage().rss };
  }

  /** Stops commands and closes the connection (its queue goes with it). */
  async stop(): Promise<void> {
    this.lag.stop();
    if (this.cmdTimer) clearInterval(this.cmdTimer);
    if (this.sweep) clearInterval(this.sweep);
    await this.client?.close().catch(() => {});
  }

  private count(kind: string): void {
    this.counters.errors[kind] = (this.counters.errors[kind] ?? 0) + 1;
  }

  private onMessage(msg: AMQPMessage): void {
    this.counters.received++;
    const rk = msg.routingKey;
    const a = rk.indexOf(".");
    const b = rk.indexOf(".", a + 1);
    if (a < 0 || b < 0) return this.count("bad_routing_key");
    const topic = rk.slice(b + 1);
    const p = msg.properties;
    if (topic === "$presence") {
      this.counters.presence++;
      const device = rk.slice(a + 1, b);
      const conn = String(p.headers?.connection_id ?? "");
      let event = "";
      try {
        event = JSON.parse(msg.bodyString() ?? "{}").event;
      } catch {
        return this.count("bad_presence");
      }
      if (event === "connected") this.devices.add(device, rk.slice(0, a), conn);
      else if (event === "disconnected") this.devices.remove(device, conn);
      return;
    }
    if (topic === "door.ack") {
      const corr = p.correlationId ?? "";
      // The line protocol's ref is the command id; an MQTT device names it in the body.
      const cmdId = this.pending.has(corr.slice(corr.indexOf(":") + 1)) ? corr.slice(corr.indexOf(":") + 1) : bodyId(msg);
      const t0 = this.pending.get(cmdId);
      if (t0 !== undefined) {
        this.pending.delete(cmdId);
        this.doorUnlock.recordMs(now() - t0);
        this.counters.doorAcks++;
      }
      return;
    }
    if (!this.opts.reply) return;
    if (!p.replyTo || !p.correlationId) return this.count("no_reply_to");
    this.publish("", p.replyTo, REPLY_BODY, { correlationId: p.correlationId, contentType: "application/json" });
    this.counters.replies++;
  }

  private publish(exchange: string, key: string, body: string, props: Parameters<AMQPChannel["basicPublish"]>[3]): void {
    const ch = this.pub;
    if (!ch) return;
    this.corkTick();
    ch.basicPublish(exchange, key, body, props).catch(() => this.count("publish_failed"));
  }

  /** Coalesces this tick's publishes into one socket write (as the gateway does). */
  private corkTick(): void {
    corkClientForTick(this.client);
  }

  private sendDueCommands(): void {
    const due = Math.floor(((now() - this.cmdStartAt) / 1000) * this.opts.cmdRate) - this.cmdsDue;
    for (let i = 0; i < due; i++) {
      this.cmdsDue++;
      const target = this.devices.pick();
      if (!target) {
        this.count("no_connected_device");
        continue;
      }
      const id = crypto.randomUUID();
      this.pending.set(id, now());
      this.counters.cmdsSent++;
      this.publish(`${this.opts.prefix}owsla.down`, target.gateway, `{"t":${wall()}}`, {
        messageId: id,
        deliveryMode: 2,
        contentType: "application/json",
        headers: { device_id: target.id, topic: this.opts.cmdTopic },
      });
    }
  }

  private onSweep(): void {
    const t = now();
    for (const [id, t0] of this.pending) {
      if (t - t0 < CMD_TIMEOUT_MS) break;
      this.pending.delete(id);
      this.counters.cmdTimeouts++;
    }
  }
}
