/**
 * A back-end for cluster tests: one AMQP connection that moves to the next node of the cluster
 * when it is lost or when the broker nacks a publish (a quorum queue electing a leader), as a
 * real back-end should. Collects device messages from a quorum queue bound to `owsla.up` and
 * sends commands with publisher confirms, each re-sent (same message id) until confirmed.
 */
import { AMQPClient, type AMQPChannel } from "@cloudamqp/amqp-client";

/** A device message as the back-end saw it. */
export interface UpSeen {
  deviceId: string;
  topic: string;
  body: string;
  at: number;
  /** The broker had delivered it before (to a connection that was lost). */
  redelivered: boolean;
  messageId: string;
}

/** `p`, or a rejection after `ms` (a broker RPC on a node that is still joining can hang). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)));
  p.catch(() => {});
  return Promise.race([p, deadline]).finally(() => clearTimeout(t));
}

/** A reconnecting back-end on a list of node URLs. */
export class ClusterBackend {
  readonly received: UpSeen[] = [];
  reconnects = 0;
  private client: AMQPClient | null = null;
  private pub: AMQPChannel | null = null;
  private index = 0;
  private connecting: Promise<void> | null = null;
  private closed = false;

  constructor(
    private readonly urls: string[],
    private readonly prefix: string,
    private readonly queue = `${prefix}backend`,
  ) {}

  /** Connects (to the first node that answers), declares the back-end queue and consumes it. */
  async start(): Promise<this> {
    await this.ensure();
    return this;
  }

  private ensure(): Promise<void> {
    if (this.pub && !this.pub.closed) return Promise.resolve();
    this.connecting ??= this.connect().finally(() => (this.connecting = null));
    return this.connecting;
  }

  private async connect(): Promise<void> {
    for (let attempt = 0; !this.closed; attempt++) {
      const url = this.urls[this.index % this.urls.length]!;
      let c: AMQPClient | null = null;
      try {
        c = new AMQPClient(`${url}?heartbeat=2`);
        await within(this.setup(c), 10_000, "connect and declare");
        this.client = c;
        if (attempt > 0 || this.reconnects > 0) this.reconnects++;
        return;
      } catch {
        c?.close().catch(() => {});
        this.index++;
        await Bun.sleep(Math.min(1000, 100 * 2 ** Math.min(attempt, 4)));
      }
    }
  }

  /** Connects `c`, declares the back-end's queue, consumes it and opens the publish channel. */
  private async setup(c: AMQPClient): Promise<void> {
    await c.connect();
    const ch = await c.channel();
    await ch.exchangeDeclare(`${this.prefix}owsla.up`, "topic", { durable: true });
    await ch.exchangeDeclare(`${this.prefix}owsla.down`, "direct", { durable: true });
    await ch.queueDeclare(this.queue, { durable: true }, { "x-queue-type": "quorum" });
    await ch.queueBind(this.queue, `${this.prefix}owsla.up`, "#");
    await ch.basicQos(1000);
    await ch.basicConsume(this.queue, { noAck: false }, (m) => {
      const h = (m.properties.headers ?? {}) as Record<string, unknown>;
      this.received.push({ deviceId: String(h.device_id ?? ""), topic: String(h.topic ?? ""), body: m.bodyString() ?? "", at: Date.now(), redelivered: m.redelivered, messageId: m.properties.messageId ?? "" });
      m.ack().catch(() => {});
    });
    const pub = await c.channel();
    await pub.confirmSelect();
    c.ondisconnect = () => {
      if (this.client === c) this.pub = null;
    };
    this.pub = pub;
  }

  /** Drops the connection and moves to the next node (after a nack or a failed publish). */
  private drop(): void {
    const c = this.client;
    this.client = null;
    this.pub = null;
    this.index++;
    c?.close().catch(() => {});
  }

  /**
   * Sends a command and resolves once the broker confirmed it (re-sending with the same message
   * id after a nack or a lost connection). Returns when confirmed, or false after `deadlineMs`.
   */
  async command(gatewayId: string, deviceId: string, id: string, body: unknown, deadlineMs = 60_000): Promise<boolean> {
    const until = Date.now() + deadlineMs;
    while (!this.closed && Date.now() < until) {
      await this.ensure();
      const pub = this.pub;
      if (!pub) continue;
      try {
        const confirmed = pub.basicPublish(`${this.prefix}owsla.down`, gatewayId, JSON.stringify(body), {
          messageId: id,
          headers: { device_id: deviceId, topic: "cmd" },
          deliveryMode: 2,
          contentType: "application/json",
        });
        await within(confirmed, 10_000, "publish confirm");
        return true;
      } catch {
        this.drop();
      }
    }
    return false;
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    this.closed = true;
    await this.client?.close().catch(() => {});
  }
}
