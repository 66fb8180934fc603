import { expect, test } from "bun:test";
import mqtt, { type IPublishPacket, type Packet } from "mqtt-packet";
import { connackCode, connectPacket, replyAddress, replyCorrelation, requestPacket, userProperty } from "./mqtt-codec.ts";

/** Decodes `buf` the way a server (or broker) of `version` would. */
function decode(buf: Buffer, version: 4 | 5): Packet[] {
  const out: Packet[] = [];
  const p = mqtt.parser({ protocolVersion: version });
  p.on("packet", (x) => out.push(x));
  p.on("error", (e) => {
    throw e;
  });
  p.parse(buf);
  return out;
}

test("an MQTT 5 request carries the reply address as Response Topic and Correlation Data", () => {
  const [p] = decode(requestPacket(5, 7, "load", '{"p":"xx"', "reply/3", "r1z"), 5) as IPublishPacket[];
  expect(p!.qos).toBe(1);
  expect(p!.messageId).toBe(7);
  expect(p!.topic).toBe("load");
  expect(JSON.parse(p!.payload.toString())).toEqual({ p: "xx" });
  expect(p!.properties?.responseTopic).toBe("reply/3");
  expect(p!.properties?.correlationData?.toString()).toBe("r1z");
  expect(replyAddress(p!)).toEqual({ topic: "reply/3", correlation: Buffer.from("r1z") });
});

test("an MQTT 3.1.1 request carries the reply address in its JSON payload, and the reply's correlation is read back from it", () => {
  const [p] = decode(requestPacket(4, 9, "load", '{"p":"xx"', "reply/3", "r1z"), 4) as IPublishPacket[];
  expect(JSON.parse(p!.payload.toString())).toEqual({ p: "xx", r: "reply/3", c: "r1z" });
  expect(replyAddress(p!)).toEqual({ topic: "reply/3", correlation: Buffer.from("r1z") });
  expect(replyCorrelation(p!)).toBe("r1z");
});

test("a publish without a reply address has none", () => {
  const plain = { cmd: "publish", qos: 0, dup: false, retain: false, topic: "load", payload: Buffer.from("not json") } as IPublishPacket;
  expect(replyAddress(plain)).toBeNull();
  expect(replyCorrelation(plain)).toBeNull();
});

test("CONNECT names the client id and sends the token as password (with a user name, as 3.1.1 requires)", () => {
  for (const version of [4, 5] as const) {
    const [c] = decode(connectPacket({ version, clientId: "load-1", password: "tok" }), version) as any[];
    expect(c.clientId).toBe("load-1");
    expect(c.password.toString()).toBe("tok");
    expect(c.username).toBe("load");
    expect(c.clean).toBe(true);
    expect(c.protocolVersion).toBe(version);
  }
  const [anon] = decode(connectPacket({ version: 5, clientId: "load-2", password: null }), 5) as any[];
  expect(anon.password).toBeUndefined();
});

test("CONNACK codes of both versions and v5 user properties are read", () => {
  expect(connackCode({ cmd: "connack", sessionPresent: false, reasonCode: 0x86 })).toBe(0x86);
  expect(connackCode({ cmd: "connack", sessionPresent: false, returnCode: 4 })).toBe(4);
  expect(connackCode({ cmd: "connack", sessionPresent: false })).toBe(0);
  const p = { cmd: "publish", qos: 1, dup: false, retain: false, topic: "cmd/x", payload: "{}", properties: { userProperties: { id: "c-1", corr: ["a", "b"] } } } as IPublishPacket;
  expect(userProperty(p, "id")).toBe("c-1");
  expect(userProperty(p, "corr")).toBe("a");
  expect(userProperty(p, "none")).toBeNull();
});
