import { expect, test } from "bun:test";
import mqtt, { type Packet } from "mqtt-packet";
import type { DeviceCommand, FleetEvents } from "./device-protocol.ts";
import { newDev, type Attempt, type Dev } from "./fleet-device.ts";
import { deviceFilters, MqttProtocol } from "./mqtt-protocol.ts";

/** A device on a fresh attempt, with the events it reports and the packets it writes (decoded as a server would). */
function rig(version: 4 | 5 = 5, broker = false) {
  const events: [string, ...unknown[]][] = [];
  const written: Packet[] = [];
  const server = mqtt.parser({ protocolVersion: version });
  server.on("packet", (p) => written.push(p));
  const ev: FleetEvents = {
    welcome: (_d, k) => void events.push(["welcome", k]),
    ack: (_d, ref) => void events.push(["ack", ref]),
    cmd: (_d, c: DeviceCommand) => void events.push(["cmd", c]),
    refused: (_d, _a, code, _r, ref) => void events.push(["refused", code, ref]),
    bad: (_a, kind) => void events.push(["bad", kind]),
  };
  const proto = new MqttProtocol(ev, (_d, data) => server.parse(Buffer.from(data)), null, 4, { version, broker });
  const d: Dev = newDev(3, "load-3");
  const a: Attempt = { d, explained: false, retryAfter: undefined, codec: null };
  d.attempt = a;
  proto.open(d, a);
  const feed = (p: Packet) => proto.data(d, a, mqtt.generate(p, { protocolVersion: version }));
  return { events, written, proto, d, a, feed };
}

test("CONNACK 0 is the welcome and subscribes to the device's command and reply topics", () => {
  const r = rig();
  expect(r.written[0]).toMatchObject({ cmd: "connect", clientId: "load-3", protocolVersion: 5 });
  r.feed({ cmd: "connack", sessionPresent: false, reasonCode: 0, properties: { serverKeepAlive: 30 } });
  expect(r.events).toEqual([["welcome", 30]]);
  expect(r.written[1]).toMatchObject({ cmd: "subscribe", subscriptions: [{ topic: "cmd/#", qos: 1 }, { topic: "reply/3", qos: 1 }] });
  expect(deviceFilters(3, "load-3", true)).toEqual(["reply/3", "cmd/load-3/#"]);
});

test("a refused CONNECT is reported with its reason code", () => {
  const r = rig();
  r.feed({ cmd: "connack", sessionPresent: false, reasonCode: 0x86 });
  expect(r.events).toEqual([["refused", "connack_0x86", undefined]]);
});

test("PUBACK reports the ref its packet id carried; a negative PUBACK is a refusal of that ref", () => {
  const r = rig();
  r.feed({ cmd: "connack", sessionPresent: false, reasonCode: 0 });
  r.proto.pub(r.d, "rA");
  r.proto.pub(r.d, "rB");
  const [pa, pb] = r.written.slice(2) as any[];
  expect(pa).toMatchObject({ cmd: "publish", qos: 1, topic: "load", properties: { responseTopic: "reply/3" } });
  expect(pa.properties.correlationData.toString()).toBe("rA");
  expect(pb.messageId).not.toBe(pa.messageId);
  r.feed({ cmd: "puback", messageId: pb.messageId, reasonCode: 0x90 });
  r.feed({ cmd: "puback", messageId: pa.messageId, reasonCode: 0 });
  r.feed({ cmd: "puback", messageId: pa.messageId, reasonCode: 0 });
  expect(r.events.slice(1)).toEqual([["refused", "puback_0x90", "rB"], ["ack", "rA"], ["bad", "puback_unknown_id"]]);
});

test("a reply on the response topic is PUBACKed and reported with its correlation", () => {
  for (const version of [5, 4] as const) {
    const r = rig(version, version === 4);
    r.feed({ cmd: "connack", sessionPresent: false, returnCode: 0, reasonCode: 0 });
    const payload = version === 5 ? '{"ok":true}' : '{"ok":true,"c":"r9"}';
    r.feed({ cmd: "publish", qos: 1, dup: false, retain: false, messageId: 77, topic: "reply/3", payload, ...(version === 5 ? { properties: { correlationData: Buffer.from("r9") } } : {}) });
    expect(r.written.at(-1)).toMatchObject({ cmd: "puback", messageId: 77 });
    expect(r.events.at(-1)).toEqual(["cmd", { id: "", corr: "r9", body: null }]);
  }
});

test("a command is PUBACKed, named by its id user property, and answered with door/ack whose PUBACK acks the command id", () => {
  const r = rig();
  r.feed({ cmd: "connack", sessionPresent: false, reasonCode: 0 });
  r.feed({ cmd: "publish", qos: 1, dup: false, retain: false, messageId: 5, topic: "cmd/door/unlock", payload: '{"t":1}', properties: { userProperties: { id: "cmd-1" } } });
  expect(r.written.at(-1)).toMatchObject({ cmd: "puback", messageId: 5 });
  expect(r.events.at(-1)).toEqual(["cmd", { id: "cmd-1", corr: null, body: { t: 1 } }]);
  r.proto.doorAck(r.d, "cmd-1");
  const ack = r.written.at(-1) as any;
  expect(ack).toMatchObject({ cmd: "publish", qos: 1, topic: "door/ack" });
  expect(JSON.parse(ack.payload.toString())).toEqual({ id: "cmd-1" });
  r.feed({ cmd: "puback", messageId: ack.messageId, reasonCode: 0 });
  expect(r.events.at(-1)).toEqual(["ack", "cmd-1"]);
});

test("packet ids wrap around 65535 and skip the ones still unacknowledged", () => {
  const r = rig();
  r.feed({ cmd: "connack", sessionPresent: false, reasonCode: 0 });
  const ids = new Set<number>();
  const held: number[] = [];
  for (let i = 0; i < 70_000; i++) {
    r.proto.pub(r.d, `r${i}`);
    const p = r.written.pop() as any;
    ids.add(p.messageId);
    // Keep the first 100 unacknowledged; ack the rest at once.
    if (i < 100) held.push(p.messageId);
    else r.feed({ cmd: "puback", messageId: p.messageId, reasonCode: 0 });
  }
  expect(r.events.filter((e) => e[0] === "ack").length).toBe(70_000 - 100);
  // The held ids were never handed out again: acking them now reports the first refs.
  r.events.length = 0;
  for (const id of held) r.feed({ cmd: "puback", messageId: id, reasonCode: 0 });
  expect(r.events).toEqual(held.map((_, i) => ["ack", `r${i}`]));
  expect(Math.max(...ids)).toBe(0xffff);
  expect(ids.has(0)).toBe(false);
});
