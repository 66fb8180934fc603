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

/**
 * What the parser reads a packet from, in place of its `bl` BufferList: the framer hands it one
 * whole packet in one buffer, so the list never holds more than that buffer. Same results as
 * `bl` for one buffer (views, not copies; out-of-range reads throw the same way), without its
 * per-read offset arrays and slices: a CONNECT and a SUBSCRIBE took about a third of the CPU
 * of an MQTT connect in a worker.
 */
class OneBufferList {
  private buf: Buffer = EMPTY;

  get length(): number {
    return this.buf.length;
  }

  clear(): void {
    this.buf = EMPTY;
  }

  append(buf: Uint8Array): this {
    if (buf.byteLength === 0) return this;
    const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    this.buf = this.buf.length === 0 ? view : Buffer.concat([this.buf, view]);
    return this;
  }

  consume(bytes: number): this {
    bytes = Math.trunc(bytes);
    if (Number.isNaN(bytes) || bytes <= 0) return this;
    this.buf = bytes >= this.buf.length ? EMPTY : this.buf.subarray(bytes);
    return this;
  }

  slice(start?: number, end?: number): Buffer {
    const len = this.buf.length;
    if (typeof start === "number" && start < 0) start += len;
    if (typeof end === "number" && end < 0) end += len;
    if (typeof start !== "number" || start < 0) start = 0;
    if (typeof end !== "number" || end > len) end = len;
    if (start >= len || end <= 0) return Buffer.alloc(0);
    if (start === 0 && end === len) return this.buf;
    return this.buf.subarray(start, Math.max(start, end));
  }

  toString(encoding: BufferEncoding, start?: number, end?: number): string {
    return this.slice(start, end).toString(encoding);
  }

  readUInt8(offset = 0): number {
    if (offset >= 0 && offset < this.buf.length) return this.buf[offset]!;
    return this.slice(offset, offset + 1).readUInt8(0);
  }

  readUInt16BE(offset = 0): number {
    if (offset >= 0 && offset + 2 <= this.buf.length) return this.buf.readUInt16BE(offset);
    return this.slice(offset, offset + 2).readUInt16BE(0);
  }

  readUInt32BE(offset = 0): number {
    if (offset >= 0 && offset + 4 <= this.buf.length) return this.buf.readUInt32BE(offset);
    return this.slice(offset, offset + 4).readUInt32BE(0);
  }
}

const EMPTY = Buffer.alloc(0);
const list = new OneBufferList();
const SETTINGS = { 3: Object.freeze({ protocolVersion: 3 }), 4: Object.freeze({ protocolVersion: 4 }), 5: Object.freeze({ protocolVersion: 5 }) } as const;

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
  const p = parser as unknown as { settings: object; error: Error | null; _pos: number; _list: { length: number }; _resetState(): void };
  // (parse() would reset a parser left with an error, list included: never the case here.)
  if (p.error) p._resetState();
  // The parser replaces its settings with the CONNECT packet it parses: set them every time.
  p.settings = SETTINGS[version];
  // Every packet starts at position 0 (a packet that failed mid-field left the read position
  // behind, and `_resetState()` does not reset it).
  p._pos = 0;
  list.clear();
  p._list = list;
  try {
    parser.parse(bytes as Buffer);
  } catch (e) {
    failed = e as Error;
  }
  const out: Packet | Error = failed ?? parsed ?? new Error("Packet ends before its fields do");
  // Whatever happened, the next packet (of any connection) starts from a clean state.
  if (failed || !parsed || p._list.length > 0) {
    p._resetState();
    p._pos = 0;
  }
  list.clear();
  return out;
}

/** Encodes a packet for a connection speaking `version`. */
export function encodePacket(packet: Packet, version: MqttVersion): Uint8Array {
  return encodeSmall(packet, version) ?? mqtt.generate(packet, { protocolVersion: version === 5 ? 5 : 4 });
}

const PINGRESP = Uint8Array.of(0xd0, 0x00);
/** First byte of the acknowledgements written directly. */
const ACK_HEADER: Record<string, number> = { puback: 0x40, pubrec: 0x50, pubcomp: 0x70 };

function isPacketId(id: unknown): id is number {
  return typeof id === "number" && Number.isInteger(id) && id >= 0 && id <= 0xffff;
}

/**
 * The packets every connection answers with, written directly — byte for byte what
 * `mqtt-packet` writes (codec.test.ts compares them) without its generic writer: PINGRESP,
 * PUBACK/PUBREC/PUBCOMP without reason code or properties, SUBACK without properties.
 * Anything else (or anything unusual in these) is null: `mqtt-packet` writes it.
 */
function encodeSmall(p: Packet, version: MqttVersion): Uint8Array | null {
  switch (p.cmd) {
    case "pingresp":
      return PINGRESP;
    case "puback":
    case "pubrec":
    case "pubcomp": {
      if (p.reasonCode !== undefined || p.properties !== undefined || !isPacketId(p.messageId)) return null;
      const id = p.messageId;
      // MQTT 5: mqtt-packet writes the reason code (0) and an empty property length.
      return version === 5 ? Uint8Array.of(ACK_HEADER[p.cmd]!, 4, id >> 8, id & 0xff, 0, 0) : Uint8Array.of(ACK_HEADER[p.cmd]!, 2, id >> 8, id & 0xff);
    }
    case "suback": {
      const { granted, messageId: id } = p;
      if (p.properties !== undefined || !isPacketId(id) || !Array.isArray(granted) || granted.length === 0 || granted.length > 100) return null;
      const head = version === 5 ? 5 : 4; // type, length, packet id (2), MQTT 5 property length
      const out = new Uint8Array(head + granted.length);
      out[0] = 0x90;
      out[1] = head - 2 + granted.length;
      out[2] = id >> 8;
      out[3] = id & 0xff;
      for (let i = 0; i < granted.length; i++) {
        const code = granted[i];
        if (typeof code !== "number" || !Number.isInteger(code) || code < 0 || code > 0xff) return null;
        out[head + i] = code;
      }
      return out;
    }
    default:
      return null;
  }
}
