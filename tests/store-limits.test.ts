/**
 * Issue 12, item 13: bounded disk use while the broker (the WAN) is down, on a real gateway and
 * a real RabbitMQ, with small limits.
 * - Outbox: the broker is cut (a TCP proxy); a device publishes until it gets `server_busy`
 *   with `retry_after` (never an ack for a message that was not stored); every acked message
 *   reaches the back-end once the broker is back, and the refused one is accepted then.
 *   MQTT 5 gets PUBACK 0x97 (quota exceeded) instead of a success PUBACK.
 * - Free-space floor: a floor above the disk's free space stores nothing new (commands
 *   dead-lettered with `min_free_bytes`, pubs that need the outbox refused).
 * - Inbox: a back-end sends more commands for an offline device than store.inbox_max_bytes
 *   holds; the oldest are dead-lettered to owsla.dead with `x-owsla-rejected: inbox_max_bytes`,
 *   a command larger than the whole limit too; the newest are delivered when the device
 *   connects. The metrics and the log name the limit.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { BrokerProxy } from "./helpers/proxy.ts";
import { closeProxied } from "./helpers/proxied-gateway.ts";
import { GatewayProcess, startGateway } from "./helpers/gateway.ts";
import { TestBackend } from "./helpers/backend.ts";
import type { TestDevice } from "./helpers/device.ts";
import { RawMqtt } from "./helpers/mqtt-raw.ts";
import { parseExposition, sumOverWorkers } from "../src/api/prometheus-parse.ts";

/** Per worker (one worker): about a dozen 1 KB messages. */
const OUTBOX_MAX = 16_000;
/** Per worker: six commands of 100 body bytes. */
const INBOX_MAX = 600;

let proxy: BrokerProxy;
let gw: GatewayProcess;
let backend: TestBackend;

beforeAll(async () => {
  proxy = new BrokerProxy().up();
  gw = await startGateway({
    gatewayId: "limits",
    args: ["--broker", proxy.url(), "--broker-reconnect-max-ms", "500", "--workers", "1", "--store-outbox-max-bytes", String(OUTBOX_MAX), "--store-inbox-max-bytes", String(INBOX_MAX), "--store-min-free-bytes", "0"],
  });
  backend = await new TestBackend(gw.prefix).start();
});

afterAll(() => closeProxied(proxy, gw, backend));

/** A control API request with the gateway's token. */
function api(path: string, init: RequestInit = {}): Promise<Response> {
  const url = String(gw.json().findLast((l) => l.msg === "Control API listening")!.url).replace(/\/$/, "");
  const headers = { authorization: `Bearer ${readFileSync(join(gw.dir, "api.token"), "utf8").trim()}`, "content-type": "application/json" };
  return fetch(url + path, { ...init, headers });
}

/** Gateway-wide counters and gauges from GET /metrics. */
async function metrics(): Promise<Map<string, number>> {
  return sumOverWorkers(parseExposition(await (await api("/metrics")).text()));
}

/** Sends pub `ref` and returns the gateway's answer to it (ack or error). */
async function pub(dev: TestDevice, ref: string, n: number): Promise<Record<string, any>> {
  dev.send({ op: "pub", topic: "fill", body: { n, pad: "p".repeat(1000) }, ref });
  return dev.next((f) => f.ref === ref && (f.op === "ack" || f.op === "error"), 10_000);
}

test("outbox at store.outbox_max_bytes: pubs get server_busy with retry_after, nothing acked is lost, pubs are accepted again once the broker drained it", async () => {
  const { dev, welcome } = await gw.device("meter-fill");
  expect((await pub(dev, "warm", -1)).op).toBe("ack");
  await backend.wait((r) => r.correlationId === `${welcome.id}:warm`);

  proxy.down();
  const acked: number[] = [];
  let refused: Record<string, any> | null = null;
  for (let n = 0; n < 200 && !refused; n++) {
    const a = await pub(dev, `m${n}`, n);
    if (a.op === "ack") acked.push(n);
    else refused = a;
  }
  // Refused for the limit, with a retry hint; the outbox holds what was acked, within the limit.
  expect(refused).toMatchObject({ op: "error", code: "server_busy" });
  expect(refused!.retry_after).toBeGreaterThan(0);
  expect(refused!.message).toContain("store.outbox_max_bytes");
  expect(acked.length).toBeGreaterThan(3);
  expect(acked.length).toBeLessThan(OUTBOX_MAX / 1000);
  // More refusals: still server_busy, and one warning in the log, not one per message.
  for (let i = 0; i < 3; i++) expect((await pub(dev, `again${i}`, 1000 + i)).code).toBe("server_busy");
  let m = await metrics();
  expect(m.get('owsla_pubs_refused_total{reason="outbox_max_bytes"}')).toBe(4);
  const warned = gw.json().filter((l) => l.limit === "outbox_max_bytes" && l.level === "warn");
  expect(warned).toHaveLength(1);
  expect(warned[0]!.outbox_max_bytes).toBe(OUTBOX_MAX);
  expect(String(warned[0]!.msg)).toContain("raise store.outbox_max_bytes");

  // MQTT: a QoS 1 PUBLISH is answered with PUBACK 0x97 (quota exceeded), not a success PUBACK.
  const raw = await RawMqtt.open(gw.mqttPort);
  await raw.connect("meter-mqtt", gw.token("meter-mqtt"));
  raw.send({ cmd: "publish", topic: "fill", payload: Buffer.from(JSON.stringify({ pad: "p".repeat(1000) })), qos: 1, messageId: 7, retain: false, dup: false });
  const puback = (await raw.next((p) => p.cmd === "puback" && p.messageId === 7)) as { reasonCode?: number; properties?: { reasonString?: string } };
  expect(puback.reasonCode).toBe(0x97);
  expect(puback.properties?.reasonString).toContain("store.outbox_max_bytes");
  raw.drop();

  // The broker returns: every acked message arrives, in order; the refused one is accepted
  // when sent again (as a device does after retry_after).
  proxy.up();
  const last = acked.at(-1)!;
  await backend.wait((r) => r.correlationId === `${welcome.id}:m${last}`, 20_000);
  const got = backend.received.filter((r) => r.headers.device_id === welcome.id && r.headers.topic === "fill" && r.body.n >= 0 && r.body.n < 1000).map((r) => r.body.n);
  expect(got).toEqual(acked);
  let again: Record<string, any> = {};
  for (let i = 0; i < 50; i++) {
    again = await pub(dev, `retry${i}`, acked.length);
    if (again.op === "ack") break;
    await Bun.sleep(again.retry_after ?? 100);
  }
  expect(again.op).toBe("ack");
  await backend.wait((r) => r.correlationId === `${welcome.id}:${again.ref}`);
  m = await metrics();
  expect(m.get("owsla_outbox_depth")).toBe(0);
  dev.close();
}, 60_000);

/** Takes everything from the gateway's dead-letter queue. */
async function takeDeadLetters(want: number): Promise<{ id: string; headers: Record<string, any>; body: string }[]> {
  const q = `${gw.prefix}owsla.dead`;
  const out: { id: string; headers: Record<string, any>; body: string }[] = [];
  for (let i = 0; i < 200 && out.length < want; i++) {
    const m = await backend.ch.basicGet(q, { noAck: true });
    if (m) out.push({ id: m.properties.messageId ?? "", headers: (m.properties.headers ?? {}) as Record<string, any>, body: m.bodyString() ?? "" });
    else await Bun.sleep(50);
  }
  return out;
}

test("inbox at store.inbox_max_bytes: the oldest stored commands are dead-lettered with the reason, one larger than the limit too, the newest reach the device", async () => {
  // The device is known (welcomed once) and then offline.
  const first = await gw.device("valve-away");
  const id = first.welcome.id as string;
  first.dev.close();
  await first.dev.waitClosed();
  // Ten commands of 100 body bytes, each sent once the one before is stored: the inbox holds six.
  const body = "x".repeat(98); // a JSON string of 100 bytes
  const stored = async () => (await metrics()).get("owsla_commands_stored_total") ?? 0;
  const before = await stored();
  for (let i = 0; i < 10; i++) {
    await backend.command(gw.gatewayId, id, body, { messageId: `c${i}` });
    for (let t = 0; t < 200 && (await stored()) < before + i + 1; t++) await Bun.sleep(20);
  }
  await backend.command(gw.gatewayId, id, "y".repeat(INBOX_MAX), { messageId: "huge" });
  const dead = await takeDeadLetters(5);
  expect(dead.map((d) => d.id).sort()).toEqual(["c0", "c1", "c2", "c3", "huge"]);
  for (const d of dead) {
    expect(d.headers["x-owsla-rejected"]).toBe("inbox_max_bytes");
    expect(d.headers.device_id).toBe(id);
  }
  expect(dead.find((d) => d.id === "c0")!.body).toBe(JSON.stringify(body));
  const m = await metrics();
  expect(m.get('owsla_commands_dropped_total{reason="inbox_max_bytes"}')).toBe(5);
  expect(m.get("owsla_inbox_depth")).toBe(6);
  expect(gw.json().filter((l) => l.limit === "inbox_max_bytes" && l.level === "warn")).toHaveLength(1);

  // The control API cannot store a command larger than the limit either: 503, nothing stored.
  const res = await api(`/api/v1/devices/${id}/commands`, { method: "POST", body: JSON.stringify({ topic: "cmd", body: { pad: "z".repeat(INBOX_MAX) } }) });
  expect(res.status).toBe(503);
  const err = (await res.json()) as { error: { code: string; message: string } };
  expect(err.error.code).toBe("not_ready");
  expect(err.error.message).toContain("store.inbox_max_bytes");
  expect((await metrics()).get("owsla_inbox_depth")).toBe(6);

  // The device comes back: the six newest, oldest first.
  const { dev } = await gw.device("valve-away");
  const got: string[] = [];
  while (got.length < 6) {
    const c = await dev.op("cmd", 10_000);
    got.push(c.id);
    dev.send({ op: "ack", ref: c.id });
  }
  expect(got).toEqual(["c4", "c5", "c6", "c7", "c8", "c9"]);
  dev.close();
}, 60_000);

test("free space under store.min_free_bytes: identities still work, a command for an offline device is dead-lettered, pubs that need the outbox get server_busy", async () => {
  // A floor no disk here reaches (1 PiB): the data directory is always "under" it.
  const floor = 2 ** 50;
  const proxy2 = new BrokerProxy().up();
  const gw2 = await startGateway({ gatewayId: "floor", args: ["--broker", proxy2.url(), "--broker-reconnect-max-ms", "500", "--workers", "1", "--store-min-free-bytes", String(floor)] });
  const backend2 = await new TestBackend(gw2.prefix).start();
  try {
    // Welcome (the site database) and pubs the broker confirms need no outbox: they go on.
    const away = await gw2.device("floor-away");
    away.dev.close();
    await away.dev.waitClosed();
    const { dev, welcome } = await gw2.device("floor-meter");
    dev.send({ op: "pub", topic: "t", body: { n: 1 }, ref: "up1" });
    expect((await dev.next((f) => f.ref === "up1")).op).toBe("ack");
    await backend2.wait((r) => r.correlationId === `${welcome.id}:up1`);
    // A command for the offline device cannot be stored: dead-lettered with the reason.
    await backend2.command(gw2.gatewayId, away.welcome.id, { open: true }, { messageId: "floor-cmd" });
    let dead = null;
    for (let i = 0; i < 200 && !dead; i++) {
      dead = await backend2.ch.basicGet(`${gw2.prefix}owsla.dead`, { noAck: true });
      if (!dead) await Bun.sleep(50);
    }
    expect(dead?.properties.messageId).toBe("floor-cmd");
    expect(dead?.properties.headers?.["x-owsla-rejected"]).toBe("min_free_bytes");
    expect(dead?.bodyString()).toBe('{"open":true}');
    // The broker goes away: a pub would need the outbox, which may not grow.
    proxy2.down();
    dev.send({ op: "pub", topic: "t", body: { n: 2 }, ref: "up2" });
    const busy = await dev.next((f) => f.ref === "up2", 10_000);
    expect(busy).toMatchObject({ op: "error", code: "server_busy" });
    expect(busy.message).toContain("store.min_free_bytes");
    const warned = gw2.json().filter((l) => l.limit === "min_free_bytes" && l.level === "warn");
    expect(warned).toHaveLength(1);
    expect(warned[0]!.min_free_bytes).toBe(floor);
    expect(warned[0]!.free_bytes).toBeGreaterThan(0);
    dev.close();
  } finally {
    await closeProxied(proxy2, gw2, backend2);
  }
}, 60_000);
