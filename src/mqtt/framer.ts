/**
 * MQTT framing: splits the byte stream into whole packets by their fixed header (type byte and
 * Remaining Length), before any packet is parsed. A packet announcing more than the limit is
 * refused from its header alone, so a peer claiming 256 MB never makes the worker buffer it.
 * Pure: bytes in, packets out, partial input kept.
 */

/** What {@link MqttFramer.push} found. */
export type Framed = { kind: "packet"; bytes: Uint8Array } | { kind: "too_large"; size: number } | { kind: "malformed"; message: string };

/** Splits a byte stream into MQTT packets of at most `maxPacketBytes` (fixed header included). */
export class MqttFramer {
  private buf: Uint8Array | null = null;

  constructor(private readonly maxPacketBytes: number) {}

  /** Bytes held of an incomplete packet. */
  get pending(): number {
    return this.buf?.length ?? 0;
  }

  /** Feeds a chunk; returns the whole packets it completes (stops at the first error). */
  push(chunk: Uint8Array): Framed[] {
    let data = this.buf ? concat(this.buf, chunk) : chunk;
    this.buf = null;
    const out: Framed[] = [];
    let pos = 0;
    while (pos < data.length) {
      // Remaining Length: 1 to 4 bytes, 7 bits each, high bit = more.
      let len = 0;
      let mul = 1;
      let i = pos + 1;
      let complete = false;
      for (let n = 0; n < 4 && i < data.length; n++, i++) {
        const b = data[i]!;
        len += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0) {
          complete = true;
          i++;
          break;
        }
        if (n === 3) {
          out.push({ kind: "malformed", message: "Remaining Length longer than 4 bytes" });
          return out;
        }
      }
      if (!complete) break; // header not all here yet
      const size = i - pos + len;
      if (size > this.maxPacketBytes) {
        out.push({ kind: "too_large", size });
        return out;
      }
      if (pos + size > data.length) break;
      out.push({ kind: "packet", bytes: data.subarray(pos, pos + size) });
      pos += size;
    }
    if (pos < data.length) this.buf = data.slice(pos);
    data = new Uint8Array(0);
    return out;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
