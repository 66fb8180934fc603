/**
 * MQTT 3.1.1 and 5.0 on the gateway's MQTT port (mqtt.js and a bare client against a real
 * gateway and RabbitMQ): identity and refusals, upstream publishes at each QoS under the AMQP
 * contract, commands, request/response, takeover across protocols, and what the gateway refuses.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { GatewayProcess, removeDir, startGateway } from "./helpers/gateway.ts";
import { TestBackend } from "./helpers/backend.ts";
import { connectMqtt, refusedConnect } from "./helpers/mqtt-client.ts";
import { RawMqtt } from "./helpers/mqtt-raw.ts";
import { deviceUuid } from "../src/identity/identity.ts";
import { DEFAULT_GATEWAY_SITE_NAMESPACE } from "../src/config/defaults.ts";
import type { IPublishPacket } from "mqtt-packet";

let gw: GatewayProcess;
let backend: TestBackend;
const uuid = (hw: string) => deviceUuid(DEFAULT_GATEWAY_SITE_NAMESPACE, hw);

beforeAll(async () => {
  gw = await startGateway({ gatewayId: "mq", args: ["--workers", "2"] });
  backend = await new TestBackend(gw.prefix).start();
});

afterAll(async () => {
  await gw.stop();
  await backend.stop([gw.gatewayId]);
  removeDir(gw.dir);
});

/** POST on the gateway's control API. */
async function apiPost(path: string): Promise<Response> {
  const line = gw.json().findLast((l) => l.msg === "Control API listening");
  const token = readFileSync(join(gw.dir, "api.token"), "utf8").trim();
  return fetch(`${String(line!.url).replace(/\/$/, "")}${path}`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
}

describe("identity", () => {
  test("client id = hardware id, password = token: the device gets the same UUID as over the line protocol", async () => {
    const c = await connectMqtt(gw, "mq-thermo-1");
    await c.client.publishAsync("telemetry/temp", JSON.stringify({ c: 21.5 }), { qos: 1 });
    const r = await backend.wait((r) => r.headers.hardware_id === "mq-thermo-1" && r.headers.topic === "telemetry.temp");
    expect(r.headers.device_id).toBe(uuid("mq-thermo-1"));
    expect(r.routingKey).toBe(`mq.${uuid("mq-thermo-1")}.telemetry.temp`);
    expect(r.headers.protocol).toBe("mqtt");
    expect(r.headers.gateway_id).toBe("mq");
    expect(r.body).toEqual({ c: 21.5 });
    await c.end();
  });

  test("the CONNACK advertises the gateway's limits (MQTT 5)", async () => {
    const c = await connectMqtt(gw, "mq-limits", { keepalive: 0 });
    const p = (c.client as unknown as { connackPacket?: { properties?: Record<string, unknown> } }).connackPacket?.properties ?? {};
    expect(p.maximumPacketSize).toBe(65536);
    expect(p.receiveMaximum).toBe(1024);
    expect(p.topicAliasMaximum).toBe(0);
    expect(p.retainAvailable).toBe(false);
    expect(p.sharedSubscriptionAvailable).toBe(false);
    expect(p.serverKeepAlive).toBe(300); // keepalive 0 asked: clamped
    await c.end();
  });

  test("a wrong password is refused: MQTT 5 0x86, MQTT 3.1.1 return code 4", async () => {
    expect((await refusedConnect(gw, "mq-wrong", { password: "nope" })).code).toBe(0x86);
    expect((await refusedConnect(gw, "mq-wrong", { password: "nope", protocolVersion: 4 })).code).toBe(4);
  });

  test("an empty or invalid client id is refused: 0x85 / 3.1.1 return code 2", async () => {
    const raw = await RawMqtt.open(gw.mqttPort);
    expect((await raw.connect("", "x")).reasonCode).toBe(0x85);
    await raw.whenClosed();
    const raw4 = await RawMqtt.open(gw.mqttPort, 4);
    expect((await raw4.connect("bad\u0001id", "x")).returnCode).toBe(2);
    await raw4.whenClosed();
  });

  test("a revoked device is dropped (DISCONNECT 0x87) and its old token refused", async () => {
    const c = await connectMqtt(gw, "mq-revoked");
    const disconnected = new Promise<number | undefined>((resolve) => c.client.on("disconnect", (p) => resolve(p.reasonCode)));
    // The site records a new device in a batch: retry until it knows it.
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await apiPost(`/api/v1/devices/${uuid("mq-revoked")}/revoke`)).status;
      if (status !== 200) await Bun.sleep(100);
    }
    expect(status).toBe(200);
    expect(await disconnected).toBe(0x87);
    expect((await refusedConnect(gw, "mq-revoked")).code).toBe(0x86);
  });
});

describe("upstream", () => {
  test("QoS 0, 1 and 2 reach the back-end once each; QoS 2 re-sent before PUBREL is not published twice", async () => {
    const c = await connectMqtt(gw, "mq-qos");
    await c.client.publishAsync("q/zero", "0", { qos: 0 });
    await c.client.publishAsync("q/one", "1", { qos: 1 });
    await c.client.publishAsync("q/two", "2", { qos: 2 });
    for (const t of ["q.zero", "q.one", "q.two"]) await backend.wait((r) => r.headers.hardware_id === "mq-qos" && r.headers.topic === t);
    await c.end();

    const raw = await RawMqtt.open(gw.mqttPort);
    await raw.connect("mq-qos2", gw.token("mq-qos2"));
    const pub = { cmd: "publish", topic: "q/dup", payload: Buffer.from('{"n":1}'), qos: 2, messageId: 7, retain: false, dup: false } as IPublishPacket;
    raw.send(pub);
    await raw.next((p) => p.cmd === "pubrec" && p.messageId === 7);
    raw.send({ ...pub, dup: true });
    await Bun.sleep(50);
    raw.send({ cmd: "pubrel", messageId: 7 });
    await raw.next((p) => p.cmd === "pubcomp" && p.messageId === 7);
    await backend.wait((r) => r.headers.hardware_id === "mq-qos2" && r.headers.topic === "q.dup");
    await Bun.sleep(300);
    expect(backend.received.filter((r) => r.headers.hardware_id === "mq-qos2" && r.headers.topic === "q.dup").length).toBe(1);
    expect(raw.got.filter((p) => p.cmd === "pubrec").length).toBe(2);
    raw.drop();
  });

  test("MQTT 3.1.1 publishes too", async () => {
    const c = await connectMqtt(gw, "mq-v4", { protocolVersion: 4 });
    await c.client.publishAsync("old/style", JSON.stringify("hi"), { qos: 1 });
    const r = await backend.wait((r) => r.headers.hardware_id === "mq-v4" && r.headers.topic === "old.style");
    expect(r.body).toBe("hi");
    await c.end();
  });

  test("a request with Response Topic and Correlation Data gets the back-end's reply on that topic with that data", async () => {
    const c = await connectMqtt(gw, "mq-rpc");
    await c.client.subscribeAsync("reply/#", { qos: 1 });
    await c.client.publishAsync("rpc/ask", JSON.stringify({ q: "time" }), { qos: 1, properties: { responseTopic: "reply/7", correlationData: Buffer.from([1, 2, 3, 250]) } });
    const req = await backend.wait((r) => r.headers.hardware_id === "mq-rpc" && r.headers.topic === "rpc.ask");
    expect(req.correlationId.startsWith(`${uuid("mq-rpc")}:`)).toBe(true);
    expect(req.replyTo).toBe(`${gw.prefix}owsla.gw.mq`);
    await backend.reply(req, { t: 42 });
    const got = await c.wait((g) => g.topic === "reply/7");
    expect(JSON.parse(got.payload)).toEqual({ t: 42 });
    expect([...(got.packet.properties?.correlationData ?? [])]).toEqual([1, 2, 3, 250]);
    await c.end();
  });

  test("retain is refused (DISCONNECT 0x9A), nothing published", async () => {
    const c = await connectMqtt(gw, "mq-retain");
    const disconnected = new Promise<number | undefined>((resolve) => c.client.on("disconnect", (p) => resolve(p.reasonCode)));
    c.client.publish("keep/me", "1", { qos: 1, retain: true });
    expect(await disconnected).toBe(0x9a);
    await Bun.sleep(200);
    expect(backend.received.some((r) => r.headers.hardware_id === "mq-retain" && r.headers.topic !== "$presence")).toBe(false);
    await c.end(true);
    // Exactly one DISCONNECT, carrying that reason.
    const raw = await RawMqtt.open(gw.mqttPort);
    await raw.connect("mq-retain-raw", gw.token("mq-retain-raw"));
    raw.send({ cmd: "publish", topic: "keep/me", payload: Buffer.from("1"), qos: 0, retain: true, dup: false });
    await raw.whenClosed();
    expect(raw.got.filter((p) => p.cmd === "disconnect").map((p) => (p as { reasonCode?: number }).reasonCode)).toEqual([0x9a]);
  });

  test("$ topics, wildcards and non-JSON payloads get MQTT 5 PUBACK reason codes; cmd/ and reply/ are not for devices", async () => {
    const raw = await RawMqtt.open(gw.mqttPort);
    await raw.connect("mq-bad-topics", gw.token("mq-bad-topics"));
    const cases: [string, string, number][] = [
      ["$SYS/x", "1", 0x90],
      ["a/+/b", "1", 0x90],
      ["a//b", "1", 0x90],
      ["cmd/other", "1", 0x87],
      ["reply/x", "1", 0x87],
      ["fine/topic", "not json", 0x99],
    ];
    let id = 1;
    for (const [topic, payload, code] of cases) {
      const messageId = id++;
      raw.send({ cmd: "publish", topic, payload: Buffer.from(payload), qos: 1, messageId, retain: false, dup: false });
      const ack = await raw.next((p) => p.cmd === "puback" && p.messageId === messageId);
      expect([topic, (ack as { reasonCode?: number }).reasonCode]).toEqual([topic, code]);
    }
    expect(raw.closed).toBe(false);
    await Bun.sleep(200);
    expect(backend.received.some((r) => r.headers.hardware_id === "mq-bad-topics" && r.headers.topic !== "$presence")).toBe(false);
    raw.drop();
  });

  test("a device that asked for no problem information gets the reason code without a reason string", async () => {
    const raw = await RawMqtt.open(gw.mqttPort);
    await raw.connect("mq-quiet", gw.token("mq-quiet"), { properties: { requestProblemInformation: false } });
    raw.send({ cmd: "publish", topic: "$SYS/x", payload: Buffer.from("1"), qos: 1, messageId: 9, retain: false, dup: false });
    const ack = (await raw.next((p) => p.cmd === "puback")) as { reasonCode?: number; properties?: { reasonString?: string } };
    expect(ack.reasonCode).toBe(0x90);
    expect(ack.properties?.reasonString).toBeUndefined();
    raw.drop();
  });

  test("a packet before CONNECT closes the connection without an answer", async () => {
    const raw = await RawMqtt.open(gw.mqttPort);
    raw.send({ cmd: "pingreq" });
    await raw.whenClosed();
    expect(raw.got).toEqual([]);
  });

  test("MQTT 3.1.1 has no negative PUBACK: a $ topic closes the connection", async () => {
    const raw = await RawMqtt.open(gw.mqttPort, 4);
    await raw.connect("mq-bad-v4", gw.token("mq-bad-v4"));
    raw.send({ cmd: "publish", topic: "$SYS/x", payload: Buffer.from("1"), qos: 1, messageId: 1, retain: false, dup: false });
    await raw.whenClosed();
    expect(raw.got.some((p) => p.cmd === "puback")).toBe(false);
  });
});

describe("downstream", () => {
  test("subscriptions outside cmd/ and reply/ are refused (0x87 / 3.1.1 0x80)", async () => {
    const subscribe = async (version: 4 | 5, hw: string, filters: string[]) => {
      const raw = await RawMqtt.open(gw.mqttPort, version);
      await raw.connect(hw, gw.token(hw));
      raw.send({ cmd: "subscribe", messageId: 3, subscriptions: filters.map((topic) => ({ topic, qos: 1 as const })) });
      const ack = (await raw.next((p) => p.cmd === "suback")) as { granted: number[] };
      raw.drop();
      return ack.granted;
    };
    expect(await subscribe(5, "mq-sub", ["telemetry/#", "cmd/#", "#", "reply/+", "$SYS/#", "$share/g/cmd/#"])).toEqual([0x87, 1, 0x87, 1, 0x87, 0x9e]);
    expect(await subscribe(4, "mq-sub4", ["other/x", "cmd/+"])).toEqual([0x80, 1]);
  });

  test("a command waits until the device subscribes, then arrives on cmd/<topic> with its id", async () => {
    const c = await connectMqtt(gw, "mq-cmd");
    await backend.command("mq", uuid("mq-cmd"), { set: 19 }, { topic: "set.temp", messageId: "cmd-1" });
    await Bun.sleep(300);
    expect(c.got.length).toBe(0);
    await c.client.subscribeAsync("cmd/#", { qos: 1 });
    const got = await c.wait((g) => g.topic === "cmd/set/temp");
    expect(JSON.parse(got.payload)).toEqual({ set: 19 });
    expect(got.packet.qos).toBe(1);
    expect(got.packet.properties?.userProperties?.id).toBe("cmd-1");
    await c.end();
  });

  test("a command not acked is re-sent (DUP, same packet id) when a persistent session reconnects; then never again", async () => {
    const hw = "mq-persist";
    const a = await RawMqtt.open(gw.mqttPort);
    const first = await a.connect(hw, gw.token(hw), { clean: false, properties: { sessionExpiryInterval: 600 } });
    expect(first.sessionPresent).toBe(false);
    a.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "cmd/#", qos: 1 }] });
    await a.next((p) => p.cmd === "suback");
    await backend.command("mq", uuid(hw), { n: 1 }, { messageId: "p-1" });
    const sent = (await a.next((p) => p.cmd === "publish")) as IPublishPacket;
    a.drop(); // no PUBACK
    // The reconnect may land on either worker: the command is re-sent either way (with DUP and
    // its packet id when the session is found, after the new subscription otherwise).
    const b = await RawMqtt.open(gw.mqttPort);
    const again = await b.connect(hw, gw.token(hw), { clean: false, properties: { sessionExpiryInterval: 600 } });
    if (!again.sessionPresent) b.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "cmd/#", qos: 1 }] });
    const resent = (await b.next((p) => p.cmd === "publish", 10000)) as IPublishPacket;
    expect(resent.properties?.userProperties?.id).toBe("p-1");
    if (again.sessionPresent) {
      expect(resent.dup).toBe(true);
      expect(resent.messageId).toBe(sent.messageId);
    }
    b.send({ cmd: "puback", messageId: resent.messageId! });
    await Bun.sleep(300);
    b.drop();
    const c = await RawMqtt.open(gw.mqttPort);
    const third = await c.connect(hw, gw.token(hw), { clean: false, properties: { sessionExpiryInterval: 600 } });
    if (!third.sessionPresent) c.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "cmd/#", qos: 1 }] });
    await Bun.sleep(1000);
    expect(c.got.filter((p) => p.cmd === "publish").length).toBe(0);
    c.drop();
  });

  test("commands sent while a persistent-session device is offline arrive when it comes back", async () => {
    const hw = "mq-offline";
    const a = await connectMqtt(gw, hw, { clean: false, properties: { sessionExpiryInterval: 600 } });
    await a.client.subscribeAsync("cmd/#", { qos: 1 });
    await a.end();
    for (let i = 0; i < 3; i++) await backend.command("mq", uuid(hw), { i }, { messageId: `off-${i}` });
    await Bun.sleep(300);
    const b = await connectMqtt(gw, hw, { clean: false, properties: { sessionExpiryInterval: 600 } });
    // Session Present 0 (the reconnect landed on the other worker): subscribe again, as MQTT requires.
    if (!(b.client as unknown as { connackPacket?: { sessionPresent?: boolean } }).connackPacket?.sessionPresent) await b.client.subscribeAsync("cmd/#", { qos: 1 });
    for (let i = 0; i < 3; i++) await b.wait((g) => g.packet.properties?.userProperties?.id === `off-${i}`, 10000);
    // Commands taken by two workers (the broker spreads deliveries) may arrive in either order (see architecture.md).
    expect(b.got.map((g) => JSON.parse(g.payload).i).sort()).toEqual([0, 1, 2]);
    await b.end();
  });
});

describe("sessions", () => {
  test("a line-protocol connection takes over an MQTT one of the same hardware id (DISCONNECT 0x8E), and the other way round", async () => {
    const hw = "mq-both";
    const m = await connectMqtt(gw, hw);
    const kicked = new Promise<number | undefined>((resolve) => m.client.on("disconnect", (p) => resolve(p.reasonCode)));
    const { dev, welcome } = await gw.device(hw);
    expect(welcome.id).toBe(uuid(hw));
    expect(await kicked).toBe(0x8e);
    const m2 = await connectMqtt(gw, hw);
    const err = await dev.op("error");
    expect(err.code).toBe("taken_over");
    await m2.end();
    dev.close();
  });

  test("silence past 1.5 x keepalive closes the connection; the will becomes the presence reason", async () => {
    const hw = "mq-will";
    const raw = await RawMqtt.open(gw.mqttPort);
    const ack = await raw.connect(hw, gw.token(hw), { keepalive: 1, will: { topic: "status", payload: Buffer.from('{"state":"lost","battery":3}'), qos: 0, retain: false } });
    expect(ack.reasonCode).toBe(0);
    await raw.whenClosed(5000);
    const p = await backend.wait((r) => r.headers.hardware_id === hw && r.headers.topic === "$presence" && r.body.event === "disconnected");
    expect(p.body.reason).toEqual({ state: "lost", battery: 3 });
    expect(backend.received.some((r) => r.headers.hardware_id === hw && r.headers.topic === "status")).toBe(false);
  });

  test("a DISCONNECT drops the will: the presence reason is bye", async () => {
    const hw = "mq-bye";
    const c = await connectMqtt(gw, hw, { will: { topic: "status", payload: Buffer.from("gone"), qos: 0, retain: false } });
    await c.end();
    const p = await backend.wait((r) => r.headers.hardware_id === hw && r.headers.topic === "$presence" && r.body.event === "disconnected");
    expect(p.body.reason).toBe("bye");
  });

  test("a non-JSON will is the reason as a string", async () => {
    const hw = "mq-will-text";
    const raw = await RawMqtt.open(gw.mqttPort, 4);
    await raw.connect(hw, gw.token(hw), { will: { topic: "status", payload: Buffer.from("power lost"), qos: 0, retain: false } });
    raw.drop();
    const p = await backend.wait((r) => r.headers.hardware_id === hw && r.headers.topic === "$presence" && r.body.event === "disconnected");
    expect(p.body.reason).toBe("power lost");
  });
});
