/**
 * Generates hostile MQTT sessions from a seeded {@link Prng}: random bytes, mutated CONNECTs,
 * mutated packets after a valid CONNECT, Remaining Length tricks (5-byte and non-minimal
 * encodings, lengths larger or smaller than the data), random packet types and flags, junk
 * MQTT 5 properties, and valid sessions split at random points (which must still work). The
 * same seed gives the same sessions.
 */
import { concat, flipBits } from "./fuzz-payloads.ts";
import { lstr, packet, rawPublish, varint } from "./mqtt-bytes.ts";
import { connectBytes, mqttBytes } from "./mqtt-raw.ts";
import type { Prng } from "./prng.ts";

/** Session kinds and their weights. */
export const MQTT_FUZZ_KINDS = {
  random_bytes: 8,
  mutated_connect: 14,
  mutated_packets: 18,
  length_tricks: 12,
  random_type: 12,
  property_junk: 12,
  oversized: 4,
  valid_split: 6,
} as const;

/** One of {@link MQTT_FUZZ_KINDS}. */
export type MqttFuzzKind = keyof typeof MQTT_FUZZ_KINDS;

/** A generated session. */
export interface MqttFuzzSession {
  kind: MqttFuzzKind;
  version: 4 | 5;
  hardwareId: string;
  /** Send a valid CONNECT (with a minted token) before the payload. */
  connectFirst: boolean;
  /** Wait for the CONNACK before the payload (else pipelined right behind the CONNECT). */
  awaitConnack: boolean;
  /** Payload chunks, written in order. */
  chunks: Uint8Array[];
  /** Delay before each chunk, ms (mostly 0). */
  pausesMs: number[];
  close: "end" | "terminate" | "wait";
  /** `puback`: a valid session that must get CONNACK 0 and PUBACK 0 for packet id 2. */
  expect?: "puback";
}

/** Builds sessions; `token(hw)` mints a valid token, `maxPacketBytes` is the gateway's limit. */
export class MqttFuzzGenerator {
  private n = 0;

  constructor(
    private readonly r: Prng,
    private readonly token: (hw: string) => string,
    private readonly maxPacketBytes: number,
  ) {}

  /** The next session. */
  next(): MqttFuzzSession {
    const r = this.r;
    const n = this.n++;
    const kind = r.weighted(MQTT_FUZZ_KINDS);
    const version: 4 | 5 = r.chance(0.7) ? 5 : 4;
    const hw = `mfz-${r.seed.toString(36)}-${n}`;
    const connectFirst = kind === "valid_split" ? false : kind === "random_bytes" || kind === "mutated_connect" ? false : r.chance(0.85);
    const s: MqttFuzzSession = { kind, version, hardwareId: hw, connectFirst, awaitConnack: r.chance(0.6), chunks: [], pausesMs: [], close: r.weighted({ end: 3, terminate: 2, wait: 4 }) };
    if (kind === "valid_split") s.expect = "puback";
    this.split(s, this.payload(s));
    return s;
  }

  /** A valid client packet of a random type (after CONNECT). */
  private validPacket(v: 4 | 5, id: number): Uint8Array {
    const r = this.r;
    const topic = r.pick(["telemetry/temp", "cmd/cmd", "a/b/c", "reply/x", "x"]);
    const payload = JSON.stringify({ fz: id });
    switch (r.int(0, 8)) {
      case 0:
        return mqttBytes({ cmd: "publish", topic, qos: 0, payload }, v);
      case 1:
        return mqttBytes({ cmd: "publish", topic, qos: 1, messageId: id, payload }, v);
      case 2:
        return mqttBytes({ cmd: "publish", topic, qos: 2, messageId: id, payload, ...(v === 5 ? { properties: { responseTopic: "reply/fz", correlationData: Buffer.from([1, 2, 3]), userProperties: { a: "b" } } } : {}) }, v);
      case 3:
        return mqttBytes({ cmd: "subscribe", messageId: id, subscriptions: [{ topic: r.pick(["cmd/#", "#", "cmd/+/x", "$SYS/#"]), qos: r.int(0, 2) }] }, v);
      case 4:
        return mqttBytes({ cmd: "unsubscribe", messageId: id, unsubscriptions: ["cmd/#"] }, v);
      case 5:
        return mqttBytes({ cmd: "pubrel", messageId: id }, v);
      case 6:
        return mqttBytes({ cmd: "puback", messageId: id }, v);
      case 7:
        return mqttBytes({ cmd: "pingreq" }, v);
      default:
        return mqttBytes({ cmd: "pubrec", messageId: id }, v);
    }
  }

  private payload(s: MqttFuzzSession): Uint8Array {
    const r = this.r;
    const v = s.version;
    const hw = s.hardwareId;
    const some = (k: number) => Array.from({ length: k }, (_, i) => this.validPacket(v, r.chance(0.1) ? 0 : i + 1));
    switch (s.kind) {
      case "random_bytes":
        return r.bytes(r.int(1, r.chance(0.2) ? 20000 : 512));
      case "mutated_connect": {
        const extra = v === 5 && r.chance(0.5) ? { properties: { sessionExpiryInterval: r.int(0, 10000), receiveMaximum: r.int(1, 100), userProperties: { k: "v" } } } : {};
        const will = r.chance(0.3) ? { will: { topic: "will/x", payload: Buffer.from('{"bye":1}'), qos: r.int(0, 2), retain: false } } : {};
        const c = connectBytes(hw, this.token(hw), v, { ...extra, ...will, clean: r.chance(0.5) });
        const m = r.chance(0.5) ? flipBits(r, c, r.int(1, 6)) : r.chance(0.5) ? c.subarray(0, r.int(1, c.length - 1)) : this.replaceBytes(c);
        return concat([m, ...some(r.int(0, 2))]);
      }
      case "mutated_packets": {
        const ps = some(r.int(1, 5));
        const i = r.int(0, ps.length - 1);
        ps[i] = r.chance(0.5) ? flipBits(r, ps[i]!, r.int(1, 4)) : this.replaceBytes(ps[i]!);
        return concat(ps);
      }
      case "length_tricks": {
        const body = [...lstr("telemetry/x"), 0, 1, ...(v === 5 ? [0] : []), ...new TextEncoder().encode("{}")];
        const first = r.pick([0x10, 0x32, 0x82, 0x62, 0xc0, 0xe0]);
        switch (r.int(0, 4)) {
          case 0: // 5-byte Remaining Length
            return new Uint8Array([first, 0xff, 0xff, 0xff, 0xff, r.int(0, 0x7f), ...body]);
          case 1: // non-minimal encoding of a small length
            return new Uint8Array([first, 0x80 | body.length, 0x80, 0x00, ...body]);
          case 2: // longer than the data (the rest never comes)
            return new Uint8Array([first, ...varint(body.length + r.int(1, 100_000)), ...body]);
          case 3: // shorter than the content: the next packet starts mid-body
            return new Uint8Array([first, ...varint(r.int(0, body.length - 1)), ...body, ...some(1)[0]!]);
          default: // announced far over the limit, then a trickle
            return new Uint8Array([first, ...varint(r.int(this.maxPacketBytes, 268_435_455)), ...body]);
        }
      }
      case "random_type": {
        const k = r.int(1, 4);
        return concat(Array.from({ length: k }, () => packet(r.int(0, 255), [...r.bytes(r.int(0, 64))])));
      }
      case "property_junk": {
        const props = [...r.bytes(r.int(0, 200))];
        if (r.chance(0.3)) props.unshift(0x26, 0xff, 0xff); // a user property claiming 65535 bytes
        return concat([rawPublish({ topic: "telemetry/junk", flags: r.pick([0, 2, 4]), packetId: r.int(0, 65535), props, version: 5 }), ...some(r.int(0, 2))]);
      }
      case "oversized": {
        const size = this.maxPacketBytes + r.int(-8, 8);
        const payload = "x".repeat(Math.max(0, size - 32));
        return rawPublish({ topic: "telemetry/big", flags: 0x02, packetId: 1, payload: JSON.stringify(payload), version: v });
      }
      case "valid_split":
        return concat([
          connectBytes(hw, this.token(hw), v),
          mqttBytes({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "cmd/#", qos: 1 }] }, v),
          mqttBytes({ cmd: "publish", topic: "telemetry/fuzz", qos: 1, messageId: 2, payload: '{"split":true}' }, v),
          mqttBytes({ cmd: "pingreq" }, v),
        ]);
    }
  }

  /** Overwrites 1-4 bytes with values MQTT parsers trip on (0x00, 0xff, 0x7f, 0x80, 0xc0). */
  private replaceBytes(b: Uint8Array): Uint8Array {
    const out = new Uint8Array(b);
    for (let k = this.r.int(1, 4); k > 0; k--) out[this.r.int(0, out.length - 1)] = this.r.pick([0x00, 0xff, 0x7f, 0x80, 0xc0, 0x01]);
    return out;
  }

  /** Splits the payload into chunks at random points, with a few short pauses. */
  private split(s: MqttFuzzSession, payload: Uint8Array): void {
    const r = this.r;
    const parts = payload.length < 2 || r.chance(0.5) ? 1 : r.int(2, Math.min(8, payload.length));
    let pos = 0;
    for (let i = 0; i < parts; i++) {
      const end = i === parts - 1 ? payload.length : r.int(pos + 1, payload.length - (parts - i - 1));
      s.chunks.push(payload.subarray(pos, end));
      s.pausesMs.push(i > 0 && r.chance(0.2) ? r.int(1, 120) : 0);
      pos = end;
    }
  }
}
