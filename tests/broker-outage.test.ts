/**
 * The broker goes away (a cut TCP proxy between gateway and RabbitMQ): devices keep getting
 * acks from the outbox, and everything reaches the back-end in per-device order when the
 * broker returns, re-sent with the same message ids. Meanwhile the gateway stays ready
 * (GET /readyz, no token) and /metrics shows the outbox filling (bytes, oldest age) and
 * draining (owsla_outbox_drained_total). The drain is paced by broker.drain_rate (1000/s for
 * the gateway: 500/s per worker) and says so in the log.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { BrokerProxy } from "./helpers/proxy.ts";
import { closeProxied } from "./helpers/proxied-gateway.ts";
import { GatewayProcess, removeDir, startGateway } from "./helpers/gateway.ts";
import { TestBackend } from "./helpers/backend.ts";
import { parseExposition, sumOverWorkers } from "../src/api/prometheus-parse.ts";

let proxy: BrokerProxy;
let gw: GatewayProcess;
let backend: TestBackend;

beforeAll(async () => {
  proxy = new BrokerProxy().up();
  gw = await startGateway({ gatewayId: "outage", args: ["--broker", proxy.url(), "--broker-heartbeat-s", "2", "--broker-reconnect-max-ms", "500", "--broker-drain-rate", "1000", "--workers", "2"] });
  backend = await new TestBackend(gw.prefix).start();
});

/** GET `path` on the gateway's control API; with the generated API token unless `token` is false. */
async function api(path: string, token = true): Promise<{ status: number; text: string }> {
  const url = String(gw.json().findLast((l) => l.msg === "Control API listening")!.url).replace(/\/$/, "");
  const headers: Record<string, string> = token ? { authorization: `Bearer ${readFileSync(join(gw.dir, "api.token"), "utf8").trim()}` } : {};
  const res = await fetch(url + path, { headers });
  return { status: res.status, text: await res.text() };
}

/** Gateway-wide metrics (summed over workers), polled until `until` holds (queue gauges are read once a second). */
async function metricsUntil(until: (m: Map<string, number>) => boolean): Promise<Map<string, number>> {
  let m = new Map<string, number>();
  for (let i = 0; i < 100; i++) {
    m = sumOverWorkers(parseExposition((await api("/metrics")).text));
    if (until(m)) break;
    await Bun.sleep(100);
  }
  return m;
}

afterAll(() => closeProxied(proxy, gw, backend));

test("while the broker is unreachable devices get acks from the outbox, which drains in order when it returns", async () => {
  const { dev, welcome } = await gw.device("thermo-outage");
  dev.send({ op: "pub", topic: "t", body: { n: 0 }, ref: "m0" });
  await dev.op("ack");
  await backend.wait((r) => r.correlationId === `${welcome.id}:m0`);

  proxy.down();
  for (let i = 1; i <= 50; i++) dev.send({ op: "pub", topic: "t", body: { n: i }, ref: `m${i}` });
  // Every message is acked (acks name their ref; their order on the wire may differ from the
  // order the outbox stored them in). What must keep order is what the back-end receives.
  const acks = new Set<string>();
  for (let i = 1; i <= 50; i++) acks.add((await dev.op("ack")).ref);
  expect(acks).toEqual(new Set(Array.from({ length: 50 }, (_, i) => `m${i + 1}`)));
  await Bun.sleep(300);
  expect(backend.received.filter((r) => r.headers.device_id === welcome.id && r.headers.topic === "t").length).toBe(1);

  // Broker down, messages kept in the outbox: still ready (the probe needs no token), the
  // broker reported as not up; the outbox gauges show what is held and for how long.
  const ready = await api("/readyz", false);
  expect(ready.status).toBe(200);
  const readiness = JSON.parse(ready.text);
  expect(readiness.ready).toBe(true);
  expect(Object.values(readiness.broker).filter((b) => b === "up")).toEqual([]);
  const held = await metricsUntil((m) => (m.get("owsla_outbox_bytes") ?? 0) > 0 && (m.get("owsla_outbox_oldest_age_seconds") ?? 0) > 0);
  expect(held.get("owsla_outbox_depth")).toBeGreaterThanOrEqual(50);
  expect(held.get("owsla_outbox_bytes")).toBeGreaterThan(50 * 10);
  expect(held.get("owsla_outbox_oldest_age_seconds")).toBeGreaterThan(0);
  const drainedBefore = held.get("owsla_outbox_drained_total") ?? 0;

  proxy.up();
  await backend.wait((r) => r.correlationId === `${welcome.id}:m50`, 15000);
  const got = backend.received.filter((r) => r.headers.device_id === welcome.id && r.headers.topic === "t").map((r) => r.body.n);
  expect(got).toEqual(Array.from({ length: 51 }, (_, i) => i));
  // The drain shows in the metrics: the drained counter grew by the backlog, the outbox is empty.
  const after = await metricsUntil((m) => m.get("owsla_outbox_bytes") === 0);
  expect(after.get("owsla_outbox_drained_total")! - drainedBefore).toBeGreaterThanOrEqual(50);
  expect(after.get("owsla_outbox_bytes")).toBe(0);
  expect(after.get("owsla_outbox_oldest_age_seconds")).toBe(0);
  expect(after.get("owsla_outbox_depth")).toBe(0);
  // The drain's log: its start with the rate (the gateway's 1000/s shared by 2 workers) and its end.
  const start = gw.json().find((l) => l.msg === "Draining the outbox to the broker");
  expect(start?.rate_per_s).toBe(500);
  expect(start?.messages).toBeGreaterThanOrEqual(50);
  expect(gw.json().find((l) => l.msg === "Outbox drained")?.messages).toBeGreaterThanOrEqual(50);
  dev.close();
});

test("publishes cut off in flight are re-sent with the same message id; every acked message arrives", async () => {
  const { dev, welcome } = await gw.device("thermo-inflight");
  const total = 2000;
  const acked = new Set<string>();
  const pump = (async () => {
    for (let i = 0; i < total; i++) {
      dev.send({ op: "pub", topic: "burst", body: { n: i }, ref: `b${i}` });
      if (i % 100 === 0) await Bun.sleep(5);
    }
  })();
  await Bun.sleep(15);
  proxy.down();
  await pump;
  await Bun.sleep(500);
  proxy.up();
  // A device sends a `rate_limited` pub again after `retry_after`, as the protocol says (on a
  // loaded machine more than max_pending_pubs can be in flight when the link drops).
  const isAnswer = (f: Record<string, any>) => f.op === "ack" || (f.op === "error" && f.code === "rate_limited");
  while (acked.size < total) {
    const f = await dev.next(isAnswer, 20000);
    if (f.op === "ack") {
      acked.add(f.ref);
      continue;
    }
    const n = Number(String(f.ref).slice(1));
    setTimeout(() => dev.send({ op: "pub", topic: "burst", body: { n }, ref: f.ref }), f.retry_after);
  }
  expect(acked.size).toBe(total);
  await backend.wait((r) => r.headers.device_id === welcome.id && r.headers.topic === "burst" && r.body.n === total - 1, 20000);
  // Let stragglers from the outbox arrive.
  let prev = -1;
  for (let i = 0; i < 50; i++) {
    const n = backend.received.filter((r) => r.headers.device_id === welcome.id && r.headers.topic === "burst").length;
    if (n === prev && n >= total) break;
    prev = n;
    await Bun.sleep(100);
  }
  const mine = backend.received.filter((r) => r.headers.device_id === welcome.id && r.headers.topic === "burst");
  const byRef = new Map<string, Set<string>>();
  for (const r of mine) {
    const ref = r.correlationId.split(":")[1]!;
    if (!byRef.has(ref)) byRef.set(ref, new Set());
    byRef.get(ref)!.add(r.messageId);
  }
  for (const ref of acked) expect(byRef.has(ref)).toBe(true);
  // A duplicate (re-send) always carries the message id of the first attempt.
  for (const ids of byRef.values()) expect(ids.size).toBe(1);
  dev.close();
});

test("a gateway started while the broker is down accepts devices and acks from the outbox", async () => {
  const p2 = new BrokerProxy().up();
  p2.down();
  const g2 = await startGateway({ gatewayId: "late-broker", prefix: gw.prefix, waitBroker: false, args: ["--broker", p2.url(), "--broker-reconnect-max-ms", "300"] });
  try {
    const { dev, welcome } = await g2.device("thermo-early");
    dev.send({ op: "pub", topic: "early", body: 1, ref: "e1" });
    expect((await dev.op("ack")).ref).toBe("e1");
    expect(g2.proc.exitCode).toBeNull();
    p2.up();
    await backend.wait((r) => r.correlationId === `${welcome.id}:e1`, 10000);
    dev.close();
  } finally {
    await g2.stop();
    p2.down();
    await backend.ch.queueDelete(`${gw.prefix}owsla.gw.late-broker`).catch(() => {});
    removeDir(g2.dir);
  }
});
