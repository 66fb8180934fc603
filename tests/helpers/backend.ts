/** A back-end on the real broker for tests: collects device messages and sends commands. */
import { AMQPClient, type AMQPChannel, type AMQPMessage } from "@cloudamqp/amqp-client";
import { BROKER_URL } from "./gateway.ts";

/** A message the back-end received from a gateway. */
export interface Received {
  routingKey: string;
  messageId: string;
  correlationId: string;
  replyTo: string;
  headers: Record<string, any>;
  body: any;
  msg: AMQPMessage;
}

/** A test back-end bound to `<prefix>owsla.up`. */
export class TestBackend {
  readonly received: Received[] = [];
  private waiters: { pred: (r: Received) => boolean; resolve: (r: Received) => void }[] = [];
  client!: AMQPClient;
  ch!: AMQPChannel;
  queue = "";

  constructor(readonly prefix: string) {}

  /** Connects, declares the topology (as the gateway would) and a private queue for `bindingKey`. */
  async start(bindingKey = "#"): Promise<this> {
    this.client = new AMQPClient(BROKER_URL);
    await this.client.connect();
    this.ch = await this.client.channel();
    await this.ch.exchangeDeclare(`${this.prefix}owsla.up`, "topic", { durable: true });
    await this.ch.exchangeDeclare(`${this.prefix}owsla.down`, "direct", { durable: true });
    const q = await this.ch.queueDeclare("", { exclusive: true, autoDelete: true });
    this.queue = q.name;
    await this.ch.queueBind(q.name, `${this.prefix}owsla.up`, bindingKey);
    await this.ch.basicConsume(q.name, { noAck: true }, (msg) => {
      const text = msg.bodyString() ?? "null";
      const r: Received = {
        routingKey: msg.routingKey,
        messageId: msg.properties.messageId ?? "",
        correlationId: msg.properties.correlationId ?? "",
        replyTo: msg.properties.replyTo ?? "",
        headers: (msg.properties.headers ?? {}) as Record<string, any>,
        body: JSON.parse(text),
        msg,
      };
      this.received.push(r);
      const i = this.waiters.findIndex((w) => w.pred(r));
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(r);
    });
    return this;
  }

  /** The first message (already received or future) matching `pred`. */
  wait(pred: (r: Received) => boolean, timeoutMs = 5000): Promise<Received> {
    const found = this.received.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (r: Received) => (clearTimeout(t), resolve(r)) };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`Back-end got no matching message within ${timeoutMs} ms (got ${this.received.length})`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** Publishes a command for `deviceId` via `owsla.down` to gateway `gatewayId`. */
  async command(gatewayId: string, deviceId: string, body: unknown, props: { topic?: string; messageId?: string; correlationId?: string; expiration?: string } = {}): Promise<void> {
    const headers: Record<string, string> = { device_id: deviceId };
    if (props.topic) headers.topic = props.topic;
    await this.ch.basicPublish(`${this.prefix}owsla.down`, gatewayId, JSON.stringify(body), {
      headers,
      deliveryMode: 2,
      contentType: "application/json",
      messageId: props.messageId,
      correlationId: props.correlationId,
      expiration: props.expiration,
    });
  }

  /** Replies the standard RPC way: default exchange, routing key = reply_to, same correlation_id. */
  async reply(to: Received, body: unknown): Promise<void> {
    await this.ch.basicPublish("", to.replyTo, JSON.stringify(body), { correlationId: to.correlationId, contentType: "application/json" });
  }

  /** Deletes the gateway queues of `gatewayIds` and closes the connection. */
  async stop(gatewayIds: string[] = []): Promise<void> {
    for (const id of gatewayIds) await this.ch.queueDelete(`${this.prefix}owsla.gw.${id}`).catch(() => {});
    await this.ch.queueDelete(`${this.prefix}owsla.dead`).catch(() => {});
    await this.ch.exchangeDelete(`${this.prefix}owsla.dead`).catch(() => {});
    await this.ch.exchangeDelete(`${this.prefix}owsla.up`).catch(() => {});
    await this.ch.exchangeDelete(`${this.prefix}owsla.down`).catch(() => {});
    await this.client.close().catch(() => {});
  }
}
