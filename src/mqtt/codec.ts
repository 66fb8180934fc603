/**
 * Packet encoding and decoding with `mqtt-packet`. One parser serves the whole worker: the
 * framer hands it exactly one whole packet at a time, so it keeps no state between calls (a
 * parser per connection would cost memory for every one of hundreds of thousands).
 */
import mqtt from "mqtt-packet";
import type { Packet } from "mqtt-packet";

export type { Packet } from "mqtt-packet";

/** MQTT protocol levels the gateway speaks: 4 = 3.1.1 (3 = 3.1 is treated alike), 5 = 5.0. */
export type MqttVersion = 3 | 4 | 5;

const parser = mqtt.parser({ protocolVersion: 4 });
let parsed: Packet | null = null;
let failed: Error | null = null;
parser.on("packet", (p: Packet) => {
  parsed = p;
});
parser.on("error", (e: Error) => {
  failed = e;
});

/** Decodes one whole packet (as framed by `MqttFramer`) for a connection speaking `version`. */
export function decodePacket(bytes: Uint8Array, version: MqttVersion): Packet | Error {
  parsed = null;
  failed = null;
  const p = parser as unknown as { settings: object; _pos: number; _list: { length: number }; _resetState(): void };
  p.settings = { protocolVersion: version };
  // Every packet starts at position 0 (a packet that failed mid-field left the read position
  // behind, and `_resetState()` does not reset it).
  p._pos = 0;
  try {
    parser.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
  } catch (e) {
    failed = e as Error;
  }
  const out: Packet | Error = failed ?? parsed ?? new Error("Packet ends before its fields do");
  // Whatever happened, the next packet (of any connection) starts from a clean state.
  if (failed || !parsed || p._list.length > 0) {
    p._resetState();
    p._pos = 0;
  }
  return out;
}

/** Encodes a packet for a connection speaking `version`. */
export function encodePacket(packet: Packet, version: MqttVersion): Uint8Array {
  return mqtt.generate(packet, { protocolVersion: version === 5 ? 5 : 4 });
}
