/**
 * The "contract floor" baseline: a bare Bun server (as in bare-welcome.ts) that also does the
 * broker work docs/amqp-contract.md requires of any gateway, and nothing else — no store, no
 * registry, no limits, no supervision, no worker-to-worker routing:
 *
 * - a welcome (line `hello`, or MQTT CONNECT → CONNACK) gets a device UUID v5 from the hardware
 *   id, as the gateway computes it, and a persistent `$presence` "connected" event with the
 *   contract's headers, published with a confirm; a close publishes "disconnected";
 * - a `pub` (or MQTT QoS 1 PUBLISH) is published persistent with a confirm (routing key
 *   `<gw>.<uuid>.<topic>`, the contract's headers, `reply_to` = this process's reply queue, a
 *   `correlation_id`); its `ack` (PUBACK) is written once the broker confirmed it;
 * - a reply on the reply queue goes to its device as a `cmd` with `corr` = the pub's ref (MQTT:
 *   PUBLISH QoS 1 on the request's response topic with its correlation data); the broker
 *   delivery is acked when the device acks (the contract's durability rule).
 *
 * Broker writes are corked per event-loop turn, as the gateway and the back-end simulator do.
 * Back-end-initiated commands (`owsla.down`) are not consumed: routing them to the process that
 * holds the device is gateway work, not a floor. Run the load with `--cmd-rate 0`.
 * What it costs is the least any gateway on Bun and amqp-client pays for the contract on this
 * machine; the gateway is compared with it in docs/benchmarks.md.
 */
import { AMQPClient, type AMQPMessage } from "@cloudamqp/amqp-client";
import { deviceUuid } from "../../src/identity/identity.ts";
import { linkUrl } from "../../src/bridge/link.ts";
import { serveMqttFloor } from "./floor-mqtt.ts";

/** Where the floor server sends what devices say. */
export interface FloorOptions {
  broker: string;
  /** Broker name prefix, as the gateway's `broker.prefix`. */
  prefix: string;
  /** Gateway id used in routing keys and headers. */
  gateway: string;
  /** Also serve MQTT on this port (0: not). */
  mqttPort?: number;
}

/** A fixed site namespace: the floor computes the same kind of v5 id as the gateway. */
const SITE_NAMESPACE = "6f77736c-612d-4666-a96f-6f722d62656e";

/** What the floor keeps per connection, whatever the protocol. */
export interface FloorConn {
  /** Index in the connection table; part of every correlation id. */
  i: number;
  deviceId: string | null;
  hardwareId: string;
  connId: string;
  /** Command id (or MQTT packet id) written to the device -> broker delivery tag to ack when the device acks it. */
  tags: Map<string | number, number> | null;
}

/** The broker side shared by the line-protocol and MQTT floors of one process. */
export class FloorBroker {
  private readonly conns: (FloorConn | undefined)[] = [];
  private readonly free: number[] = [];
  private corked = false;
  private pub!: Awaited<ReturnType<AMQPClient["channel"]>>;
  private sub!: Awaited<ReturnType<AMQPClient["channel"]>>;
  private queue = "";
  private readonly client: AMQPClient;
  /** Gets each reply with its connection (null once that connection is gone). */
  onReply: (c: FloorConn, corr: string, msg: AMQPMessage) => void = () => {};

  constructor(private readonly o: FloorOptions) {
    this.client = new AMQPClient(linkUrl(o.broker, 0, "owsla bench contract floor"));
  }

  async start(): Promise<void> {
    await this.client.connect();
    this.pub = await this.client.channel();
    await this.pub.confirmSelect();
    await this.pub.exchangeDeclare(`${this.o.prefix}owsla.up`, "topic", { durable: true });
    this.sub = await this.client.channel();
    this.queue = (await this.sub.queueDeclare("", { exclusive: true, autoDelete: true })).name;
    await this.sub.basicConsume(this.queue, { noAck: false }, (msg) => {
      const corr = msg.properties.correlationId ?? "";
      const colon = corr.indexOf(":");
      const c = this.conns[Number(corr.slice(0, colon))];
      if (!c) return this.ack(msg.deliveryTag);
      this.onReply(c, corr.slice(colon + 1), msg);
    });
  }

  /** A new connection's state. */
  open(): FloorConn {
    const i = this.free.pop() ?? this.conns.length;
    const c: FloorConn = { i, deviceId: null, hardwareId: "", connId: crypto.randomUUID(), tags: null };
    this.conns[i] = c;
    return c;
  }

  /** The connection closed: its unacked replies go back to the queue, its presence ends. */
  close(c: FloorConn): void {
    this.conns[c.i] = undefined;
    this.free.push(c.i);
    this.cork();
    for (const tag of c.tags?.values() ?? []) this.sub.basicNack(tag, true).catch(() => {});
    if (c.deviceId) this.presence(c, "disconnected", "peer_closed");
  }

  /** Identity and the "connected" presence event. */
  welcome(c: FloorConn, hardwareId: string): void {
    c.hardwareId = hardwareId;
    c.deviceId = deviceUuid(SITE_NAMESPACE, hardwareId);
    this.presence(c, "connected", null);
  }

  /** Publishes a device message; resolves on the broker's confirm. */
  publish(c: FloorConn, topic: string, body: string, ref: string): Promise<unknown> {
    return this.send(c, topic, body, { replyTo: this.queue, correlationId: `${c.i}:${ref}` });
  }

  ack(tag: number): void {
    this.cork();
    this.sub.basicAck(tag).catch(() => {});
  }

  private presence(c: FloorConn, event: string, reason: string | null): void {
    this.send(c, "$presence", JSON.stringify({ event, reason, at: new Date().toISOString() }), {}).catch(() => {});
  }

  private send(c: FloorConn, topic: string, body: string, extra: { replyTo?: string; correlationId?: string }): Promise<unknown> {
    this.cork();
    const headers: Record<string, string> = { device_id: c.deviceId!, connection_id: c.connId, gateway_id: this.o.gateway, topic, hardware_id: c.hardwareId };
    return this.pub.basicPublish(`${this.o.prefix}owsla.up`, `${this.o.gateway}.${c.deviceId}.${topic}`, body, {
      deliveryMode: 2,
      contentType: "application/json",
      messageId: crypto.randomUUID(),
      timestamp: new Date(),
      headers,
      ...extra,
    });
  }

  /** One socket write per event-loop turn for everything sent to the broker in it. */
  private cork(): void {
    const sock = (this.client as unknown as { socket?: { cork(): void; uncork(): void } }).socket;
    if (this.corked || !sock) return;
    this.corked = true;
    sock.cork();
    process.nextTick(() => {
      this.corked = false;
      sock.uncork();
    });
  }
}

/** Serves the line protocol on `port` (and MQTT on `o.mqttPort`) with one broker connection. */
export async function serveContractFloor(port: number, o: FloorOptions): Promise<void> {
  const broker = new FloorBroker(o);
  await broker.start();
  const lines = new Map<number, { write(s: string): number }>();
  let cmdSeq = 0;
  const welcomeTail = `","gateway":${JSON.stringify(o.gateway)},"keepalive":60}\n`;
  const mqtt = o.mqttPort ? serveMqttFloor(o.mqttPort, broker) : null;
  broker.onReply = (c, ref, msg) => {
    const s = lines.get(c.i);
    if (!s) {
      if (mqtt) mqtt.reply(c, ref, msg);
      else broker.ack(msg.deliveryTag);
      return;
    }
    const id = `c${++cmdSeq}`;
    (c.tags ??= new Map()).set(id, msg.deliveryTag);
    s.write(`{"op":"cmd","id":"${id}","topic":"reply","body":${msg.bodyString() ?? "null"},"corr":${JSON.stringify(ref)}}\n`);
  };
  Bun.listen<{ c: FloorConn; buf: string }>({
    hostname: "0.0.0.0",
    port,
    ...({ reusePort: true } as object),
    socket: {
      open(s) {
        s.data = { c: broker.open(), buf: "" };
        lines.set(s.data.c.i, s);
      },
      close(s) {
        lines.delete(s.data.c.i);
        broker.close(s.data.c);
      },
      data(s, chunk) {
        const st = s.data;
        const c = st.c;
        st.buf += chunk.toString("utf8");
        let nl: number;
        while ((nl = st.buf.indexOf("\n")) >= 0) {
          const line = st.buf.slice(0, nl);
          st.buf = st.buf.slice(nl + 1);
          let f: { op?: string; ref?: string; device?: string; topic?: string; body?: unknown };
          try {
            f = JSON.parse(line) as typeof f;
          } catch {
            continue;
          }
          if (f.op === "pub" && c.deviceId) {
            const ref = typeof f.ref === "string" ? f.ref : "";
            broker.publish(c, String(f.topic), JSON.stringify(f.body ?? null), ref).then(
              () => ref && lines.get(c.i) === s && s.write(`{"op":"ack","ref":${JSON.stringify(ref)}}\n`),
              () => {},
            );
          } else if (f.op === "ack") {
            const tag = c.tags?.get(String(f.ref));
            if (tag !== undefined) {
              c.tags!.delete(String(f.ref));
              broker.ack(tag);
            }
          } else if (f.op === "ping") {
            s.write('{"op":"pong"}\n');
          } else if (f.op === "hello" && !c.deviceId && typeof f.device === "string") {
            broker.welcome(c, f.device);
            s.write(`{"op":"welcome","id":"${c.deviceId}","conn":"${c.connId}${welcomeTail}`);
          }
        }
      },
    },
  });
}
