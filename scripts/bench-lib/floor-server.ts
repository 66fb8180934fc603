/**
 * The "contract floor" baseline: a bare Bun server (as in bare-welcome.ts) that also does the
 * broker work docs/amqp-contract.md requires of any gateway, and nothing else — no store, no
 * registry, no limits, no supervision, no worker-to-worker routing:
 *
 * - a `hello` gets its welcome (device UUID v5 from the hardware id, as the gateway computes
 *   it) and a persistent `$presence` "connected" event with the contract's headers, published
 *   with a confirm; a close publishes "disconnected";
 * - a `pub` is published persistent with a confirm (routing key `<gw>.<uuid>.<topic>`, the
 *   contract's headers, `reply_to` = this process's reply queue, a `correlation_id`); its
 *   `ack` is written once the broker confirmed it;
 * - a reply on the reply queue goes to its device as a `cmd` with `corr` = the pub's ref; the
 *   broker delivery is acked when the device acks the `cmd` (the contract's durability rule).
 *
 * Broker writes are corked per event-loop turn, as the gateway and the back-end simulator do.
 * Back-end-initiated commands (`owsla.down`) are not consumed: routing them to the process that
 * holds the device is gateway work, not a floor. Run the load with `--cmd-rate 0`.
 * What it costs is the least any gateway on Bun and amqp-client pays for the contract on this
 * machine; the gateway is compared with it in docs/benchmarks.md.
 */
import { AMQPClient, type AMQPChannel } from "@cloudamqp/amqp-client";
import { deviceUuid } from "../../src/identity/identity.ts";
import { linkUrl } from "../../src/bridge/link.ts";

/** Where the floor server sends what devices say. */
export interface FloorOptions {
  broker: string;
  /** Broker name prefix, as the gateway's `broker.prefix`. */
  prefix: string;
  /** Gateway id used in routing keys and headers. */
  gateway: string;
}

/** A fixed site namespace: the floor computes the same kind of v5 id as the gateway. */
const SITE_NAMESPACE = "6f77736c-612d-4666-a96f-6f722d62656e";

interface FloorConn {
  buf: string;
  /** Index in `conns`; part of every correlation id. */
  i: number;
  deviceId: string | null;
  hardwareId: string;
  connId: string;
  /** Command id written to the device -> broker delivery tag to ack when the device acks it. */
  tags: Map<string, number> | null;
}

export async function serveContractFloor(port: number, o: FloorOptions): Promise<void> {
  const client = new AMQPClient(linkUrl(o.broker, 0, "owsla bench contract floor"));
  await client.connect();
  const pub = await client.channel();
  await pub.confirmSelect();
  const exchange = `${o.prefix}owsla.up`;
  await pub.exchangeDeclare(exchange, "topic", { durable: true });
  const sub = await client.channel();
  await sub.prefetch(0);
  const q = await sub.queueDeclare("", { exclusive: true, autoDelete: true });

  let corked = false;
  const sock = (client as unknown as { socket?: { cork(): void; uncork(): void } }).socket;
  const cork = () => {
    if (corked || !sock) return;
    corked = true;
    sock.cork();
    process.nextTick(() => {
      corked = false;
      sock.uncork();
    });
  };

  const conns: (FloorConn | undefined)[] = [];
  const free: number[] = [];
  let cmdSeq = 0;
  const socketOf = new Map<number, { write(s: string | Uint8Array): number }>();

  const publish = (ch: AMQPChannel, c: FloorConn, topic: string, body: string, extra: { replyTo?: string; correlationId?: string }) => {
    cork();
    const headers: Record<string, string> = { device_id: c.deviceId!, connection_id: c.connId, gateway_id: o.gateway, topic, hardware_id: c.hardwareId };
    return ch.basicPublish(exchange, `${o.gateway}.${c.deviceId}.${topic}`, body, {
      deliveryMode: 2,
      contentType: "application/json",
      messageId: crypto.randomUUID(),
      timestamp: new Date(),
      headers,
      ...extra,
    });
  };
  const presence = (c: FloorConn, event: string, reason: string | null) =>
    publish(pub, c, "$presence", JSON.stringify({ event, reason, at: new Date().toISOString() }), {}).catch(() => {});

  await sub.basicConsume(q.name, { noAck: false }, (msg) => {
    const corr = msg.properties.correlationId ?? "";
    const colon = corr.indexOf(":");
    const c = conns[Number(corr.slice(0, colon))];
    const s = c && socketOf.get(c.i);
    cork();
    if (!c || !s) return void sub.basicAck(msg.deliveryTag).catch(() => {});
    const id = `c${++cmdSeq}`;
    (c.tags ??= new Map()).set(id, msg.deliveryTag);
    s.write(`{"op":"cmd","id":"${id}","topic":"reply","body":${msg.bodyString() ?? "null"},"corr":${JSON.stringify(corr.slice(colon + 1))}}\n`);
  });

  const welcomeTail = `","gateway":${JSON.stringify(o.gateway)},"keepalive":60}\n`;
  Bun.listen<FloorConn>({
    hostname: "0.0.0.0",
    port,
    ...({ reusePort: true } as object),
    socket: {
      open(s) {
        const i = free.pop() ?? conns.length;
        const c: FloorConn = { buf: "", i, deviceId: null, hardwareId: "", connId: crypto.randomUUID(), tags: null };
        conns[i] = c;
        socketOf.set(i, s);
        s.data = c;
      },
      close(s) {
        const c = s.data;
        conns[c.i] = undefined;
        socketOf.delete(c.i);
        free.push(c.i);
        cork();
        for (const tag of c.tags?.values() ?? []) sub.basicNack(tag, true).catch(() => {});
        if (c.deviceId) presence(c, "disconnected", "peer_closed");
      },
      data(s, chunk) {
        const c = s.data;
        c.buf += chunk.toString("utf8");
        let nl: number;
        while ((nl = c.buf.indexOf("\n")) >= 0) {
          const line = c.buf.slice(0, nl);
          c.buf = c.buf.slice(nl + 1);
          let f: { op?: string; ref?: string; device?: string; topic?: string; body?: unknown };
          try {
            f = JSON.parse(line) as typeof f;
          } catch {
            continue;
          }
          if (f.op === "pub" && c.deviceId) {
            const ref = typeof f.ref === "string" ? f.ref : "";
            publish(pub, c, String(f.topic), JSON.stringify(f.body ?? null), { replyTo: q.name, correlationId: `${c.i}:${ref}` }).then(
              () => ref && socketOf.get(c.i) === s && s.write(`{"op":"ack","ref":${JSON.stringify(ref)}}\n`),
              () => {},
            );
          } else if (f.op === "ack") {
            const tag = c.tags?.get(String(f.ref));
            if (tag !== undefined) {
              c.tags!.delete(String(f.ref));
              cork();
              sub.basicAck(tag).catch(() => {});
            }
          } else if (f.op === "ping") {
            s.write('{"op":"pong"}\n');
          } else if (f.op === "hello" && !c.deviceId && typeof f.device === "string") {
            c.hardwareId = f.device;
            c.deviceId = deviceUuid(SITE_NAMESPACE, f.device);
            s.write(`{"op":"welcome","id":"${c.deviceId}","conn":"${c.connId}${welcomeTail}`);
            presence(c, "connected", null);
          }
        }
      },
    },
  });
}
