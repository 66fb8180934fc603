/**
 * Broker-only baselines for scripts/bench: what amqp-client and RabbitMQ do on this machine
 * without the gateway, with the same messages (persistent, JSON body with the same filler,
 * routing key `<gw>.<uuid>.load`, published to `<prefix>owsla.up` with confirms).
 *
 *   rtt:        publishes at --rate per second with reply_to = its own queue and a
 *               correlation id; the back-end simulator (`owsla load --backend`) answers each
 *               the RPC way; measures publish -> reply (the gateway round trip minus the gateway).
 *   throughput: publishes as fast as confirms allow with --window unconfirmed at a time.
 *
 * Usage: bun scripts/bench-lib/amqp-baseline.ts rtt|throughput --prefix P [--rate 5000]
 *        [--window 1000] [--duration 30] [--payload 64] [--broker URL]
 * Prints one JSON object.
 */
import { AMQPClient } from "@cloudamqp/amqp-client";
import { linkUrl } from "../../src/bridge/link.ts";
import { Histogram } from "../../src/load/histogram.ts";

const mode = process.argv[2];
if (mode !== "rtt" && mode !== "throughput") throw new Error("First argument must be rtt or throughput");
const flag = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
};
const num = (name: string, dflt: number) => {
  const v = Number(flag(name, String(dflt)));
  if (!Number.isFinite(v) || v < 0) throw new Error(`Invalid --${name}: expected a non-negative number`);
  return v;
};
const prefix = flag("prefix", "");
const rate = num("rate", 5000);
const window = num("window", 1000);
const durationMs = num("duration", 30) * 1000;
const payload = num("payload", 64);
const broker = flag("broker", process.env.OWSLA_TEST_BROKER ?? "amqp://guest:guest@127.0.0.1:5672");

const device = crypto.randomUUID();
const body = JSON.stringify({ p: "x".repeat(payload) });
const exchange = `${prefix}owsla.up`;
const routingKey = `baseline.${device}.load`;

const client = new AMQPClient(linkUrl(broker, 0, `owsla bench ${mode} baseline`));
await client.connect();
const ch = await client.channel();
await ch.confirmSelect();
await ch.exchangeDeclare(exchange, "topic", { durable: true });

/** Coalesces one tick's publishes into one socket write, as the gateway and the back-end simulator do. */
let corked = false;
function corkTick(): void {
  if (corked) return;
  const sock = (client as unknown as { socket?: { cork(): void; uncork(): void } }).socket;
  if (!sock) return;
  corked = true;
  sock.cork();
  process.nextTick(() => {
    corked = false;
    sock.uncork();
  });
}

const now = () => performance.now();
let failed = 0;

if (mode === "rtt") {
  const sub = await client.channel();
  const q = await sub.queueDeclare("", { exclusive: true, autoDelete: true });
  const sentAt = new Map<string, number>();
  const h = new Histogram();
  await sub.basicConsume(q.name, { noAck: true }, (msg) => {
    const t0 = sentAt.get(msg.properties.correlationId ?? "");
    if (t0 === undefined) return;
    sentAt.delete(msg.properties.correlationId!);
    h.recordMs(now() - t0);
  });
  let seq = 0;
  const cpu0 = process.cpuUsage();
  const start = now();
  const warmupEnd = start + 2000;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const t = now();
      if (t - start >= durationMs) {
        clearInterval(timer);
        return resolve();
      }
      const due = Math.floor(((t - start) / 1000) * rate) - seq;
      for (let i = 0; i < due; i++) {
        const corr = `${device}:r${seq++}`;
        if (t >= warmupEnd) sentAt.set(corr, now());
        corkTick();
        ch.basicPublish(exchange, routingKey, body, { deliveryMode: 2, contentType: "application/json", replyTo: q.name, correlationId: corr }).catch(() => failed++);
      }
    }, 10);
  });
  await Bun.sleep(1000);
  const cpu = process.cpuUsage(cpu0);
  // The client's own CPU per round trip (publish with confirm + consume the reply): the AMQP floor.
  const cpuUsPerRoundTrip = seq > 0 ? Math.round(((cpu.user + cpu.system) / seq) * 10) / 10 : null;
  console.log(JSON.stringify({ mode, rate, duration_s: durationMs / 1000, warmup_s: 2, sent: seq, replies: h.count, unanswered: sentAt.size, publish_failures: failed, latency_ms: h.summary(), cpu_us_per_round_trip: cpuUsPerRoundTrip }));
} else {
  let inflight = 0;
  let confirmed = 0;
  const start = now();
  await new Promise<void>((resolve) => {
    const pump = () => {
      if (now() - start >= durationMs) {
        if (inflight === 0) resolve();
        return;
      }
      while (inflight < window) {
        inflight++;
        corkTick();
        ch.basicPublish(exchange, routingKey, body, { deliveryMode: 2, contentType: "application/json" }).then(
          () => {
            inflight--;
            confirmed++;
            pump();
          },
          () => {
            inflight--;
            failed++;
            pump();
          },
        );
      }
    };
    pump();
  });
  const s = (now() - start) / 1000;
  console.log(JSON.stringify({ mode, window, duration_s: Math.round(s * 10) / 10, confirmed, publish_failures: failed, confirmed_per_s: Math.round(confirmed / s) }));
}
await client.close().catch(() => {});
process.exit(0);
