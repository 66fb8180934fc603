import { describe, expect, test } from "bun:test";
import mqtt from "mqtt-packet";
import { decodePacket, encodePacket } from "./codec.ts";

const connect = mqtt.generate({ cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clientId: "dev-1", clean: true, keepalive: 60 }, { protocolVersion: 4 });

describe("shared packet decoder", () => {
  test("a packet that fails mid-field does not spoil the next one (of any connection)", () => {
    // CONNECT with the reserved flag bit set, and with an unknown protocol level.
    const badFlags = Buffer.from(connect);
    badFlags[9] = badFlags[9]! | 0x01;
    const badLevel = Buffer.from(connect);
    badLevel[8] = 6;
    for (const bad of [badFlags, badLevel, Buffer.from([0x10, 0x03, 0x00, 0x04, 0x4d])]) {
      expect(decodePacket(bad, 4)).toBeInstanceOf(Error);
      const ok = decodePacket(connect, 4);
      expect(ok instanceof Error ? ok.message : ok.cmd).toBe("connect");
    }
  });
});

/**
 * The decoder as it was before its BufferList was replaced: one shared `mqtt-packet` parser
 * with its own `bl` list, reset the same way. Its answers are the reference (a fresh parser per
 * packet differs from a shared one after some malformed packets, and the shared one is what
 * devices have always been answered by).
 */
const refParser = mqtt.parser({ protocolVersion: 4 });
let refParsed: unknown = null;
let refFailed: Error | null = null;
refParser.on("packet", (packet) => {
  refParsed = packet;
});
refParser.on("error", (e: Error) => {
  refFailed = e;
});
function reference(bytes: Uint8Array, version: 3 | 4 | 5): unknown {
  refParsed = null;
  refFailed = null;
  const p = refParser as unknown as { settings: object; _pos: number; _list: { length: number }; _resetState(): void };
  p.settings = { protocolVersion: version };
  p._pos = 0;
  try {
    refParser.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
  } catch (e) {
    refFailed = e as Error;
  }
  const out = refFailed ?? refParsed ?? new Error("Packet ends before its fields do");
  if (refFailed || !refParsed || p._list.length > 0) {
    p._resetState();
    p._pos = 0;
  }
  return out;
}

/** Comparable form: errors by class and message, packets with their buffers as bytes. */
function shape(v: unknown): unknown {
  if (v instanceof Error) return { error: v.constructor.name, message: v.message };
  return JSON.parse(JSON.stringify(v, (_k, x) => (x && x.type === "Buffer" && Array.isArray(x.data) ? { bytes: x.data } : x)));
}

/** Deterministic pseudo-random numbers (xorshift). */
function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

describe("decoding matches the BufferList-based decoder it replaced", () => {
  const samples: [Uint8Array, 3 | 4 | 5][] = [];
  for (const v of [4, 5] as const) {
    const g = (p: object) => mqtt.generate(p as mqtt.Packet, { protocolVersion: v });
    samples.push(
      [g({ cmd: "connect", protocolId: "MQTT", protocolVersion: v, clientId: "thermo-42", clean: true, keepalive: 60, username: "x", password: Buffer.from("v1.token") }), v],
      [g({ cmd: "connect", protocolId: "MQTT", protocolVersion: v, clientId: "lock-7", clean: false, keepalive: 0, will: { topic: "w/t", payload: Buffer.from('{"a":1}'), qos: 1, retain: false, ...(v === 5 ? { properties: { willDelayInterval: 3 } } : {}) }, ...(v === 5 ? { properties: { sessionExpiryInterval: 3600, receiveMaximum: 10, maximumPacketSize: 2048, requestProblemInformation: false, userProperties: { a: "b" } } } : {}) }), v],
      [g({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "cmd/#", qos: 1 }, { topic: "reply/17", qos: 0 }] }), v],
      [g({ cmd: "unsubscribe", messageId: 9, unsubscriptions: ["cmd/#", "reply/+"] }), v],
      [g({ cmd: "publish", topic: "telemetry/temp", payload: Buffer.from('{"c":21.5}'), qos: 1, messageId: 300, retain: false, dup: false, ...(v === 5 ? { properties: { responseTopic: "reply/1", correlationData: Buffer.from("r1"), payloadFormatIndicator: true } } : {}) }), v],
      [g({ cmd: "publish", topic: "t", payload: Buffer.alloc(0), qos: 0, retain: false, dup: false }), v],
      [g({ cmd: "publish", topic: "t/2", payload: Buffer.from("[1,2]"), qos: 2, messageId: 65535, retain: false, dup: true }), v],
      [g({ cmd: "puback", messageId: 7 }), v],
      [g({ cmd: "pubrel", messageId: 8 }), v],
      [g({ cmd: "pingreq" }), v],
      [g({ cmd: "disconnect", ...(v === 5 ? { reasonCode: 4, properties: { sessionExpiryInterval: 10 } } : {}) }), v],
    );
  }
  samples.push([mqtt.generate({ cmd: "connect", protocolId: "MQIsdp", protocolVersion: 3, clientId: "old", clean: true, keepalive: 10 } as mqtt.Packet, { protocolVersion: 3 }), 3]);

  test("whole packets", () => {
    for (const [bytes, v] of samples) expect(shape(decodePacket(bytes, v))).toEqual(shape(reference(bytes, v)));
  });

  test("truncated, mutated and shuffled packets, interleaved with valid ones", () => {
    const next = rng(0x5eed);
    let compared = 0;
    for (let round = 0; round < 4000; round++) {
      const [orig, v] = samples[Math.floor(next() * samples.length)]!;
      const bytes = Buffer.from(orig);
      const edits = 1 + Math.floor(next() * 3);
      for (let e = 0; e < edits; e++) {
        const i = Math.floor(next() * bytes.length);
        if (i === 0 || next() < 0.2) continue; // keep most type bytes (a wrong one is simply another packet)
        bytes[i] = Math.floor(next() * 256);
      }
      // Cut or keep, and fix the Remaining Length so that the framer would hand this over whole.
      const body = next() < 0.3 ? bytes.subarray(2, 2 + Math.floor(next() * (bytes.length - 2))) : bytes.subarray(2);
      if (bytes[1]! >= 0x80 || body.length > 127) continue;
      const packet = Buffer.concat([Buffer.from([bytes[0]!, body.length]), body]);
      const version = next() < 0.1 ? ((v === 5 ? 4 : 5) as 4 | 5) : v;
      expect(shape(decodePacket(packet, version))).toEqual(shape(reference(packet, version)));
      compared++;
      // A valid packet right after must decode as ever.
      const [ok, okv] = samples[round % samples.length]!;
      expect(shape(decodePacket(ok, okv))).toEqual(shape(reference(ok, okv)));
    }
    expect(compared).toBeGreaterThan(2000);
  });

  test("a publish payload is a view of the packet bytes, as with mqtt-packet", () => {
    const bytes = mqtt.generate({ cmd: "publish", topic: "a", payload: Buffer.from('{"x":1}'), qos: 1, messageId: 2, retain: false, dup: false }, { protocolVersion: 4 });
    const p = decodePacket(bytes, 4) as mqtt.IPublishPacket;
    expect((p.payload as Buffer).buffer).toBe(bytes.buffer);
  });
});

describe("encoding matches mqtt-packet's writer", () => {
  const same = (packet: object, version: 3 | 4 | 5) => {
    const expected = mqtt.generate(packet as mqtt.Packet, { protocolVersion: version === 5 ? 5 : 4 });
    expect([...encodePacket(packet as mqtt.Packet, version)]).toEqual([...expected]);
  };

  test("acknowledgements, SUBACKs and PINGRESP written directly", () => {
    for (const v of [3, 4, 5] as const) {
      same({ cmd: "pingresp" }, v);
      for (const messageId of [0, 1, 2, 127, 128, 255, 256, 4242, 65534, 65535]) {
        for (const cmd of ["puback", "pubrec", "pubcomp"]) same({ cmd, messageId }, v);
        same({ cmd: "suback", messageId, granted: [1] }, v);
        same({ cmd: "suback", messageId, granted: [1, 0, 0x80] }, v);
      }
      same({ cmd: "suback", messageId: 3, granted: Array.from({ length: 100 }, (_, i) => [0, 1, 0x80, 0x87, 0x97, 0x9e][i % 6]) }, v);
    }
  });

  test("the others still go through mqtt-packet", () => {
    same({ cmd: "puback", messageId: 5, reasonCode: 0x87, properties: { reasonString: "no" } }, 5);
    same({ cmd: "pubcomp", messageId: 5, reasonCode: 0x92 }, 5);
    same({ cmd: "suback", messageId: 3, granted: Array.from({ length: 300 }, () => 1) }, 5);
    same({ cmd: "suback", messageId: 3, granted: [1], properties: { reasonString: "x" } }, 5);
    same({ cmd: "connack", returnCode: 0, reasonCode: 0, sessionPresent: true, properties: { receiveMaximum: 5 } }, 5);
    same({ cmd: "disconnect", reasonCode: 0x8e }, 5);
  });
});
