/**
 * Splits a TCP byte stream into NDJSON lines: bytes in, lines out, partial
 * input kept, no I/O.
 *
 * Memory per decoder is bounded by `maxFrameBytes`: a line that cannot fit is
 * reported as soon as it is too long, without waiting for its newline.
 *
 * @module
 */

/** One result of {@link LineDecoder.push}: a complete line, or a framing error. */
export type DecodeResult =
  | { kind: "line"; text: string }
  | { kind: "error"; code: "frame_too_large" | "bad_frame"; message: string };

const LF = 0x0a;
const CR = 0x0d;

/** A pending buffer at most this large is kept for reuse after a line completes. */
const RETAIN_BYTES = 1024;

/** Stateless between calls (no `stream: true`), so one instance serves every decoder. */
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** True when `bytes[start, end)` holds only ASCII whitespace (space, tab, CR, VT, FF). */
function isBlank(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const b = bytes[i];
    if (b !== 0x20 && b !== 0x09 && b !== CR && b !== 0x0b && b !== 0x0c) return false;
  }
  return true;
}

/**
 * Incremental line decoder for the device protocol.
 *
 * - Lines end with `\n`; one trailing `\r` is stripped.
 * - Empty and whitespace-only lines are skipped.
 * - Each complete line is decoded as UTF-8; invalid UTF-8 yields a
 *   `bad_frame` result for that line and decoding continues.
 * - A line longer than `maxFrameBytes` (counting its `\r` and `\n`) yields one
 *   `frame_too_large` result as soon as more than `maxFrameBytes - 1` bytes are
 *   buffered without a newline. The decoder is then dead: later pushes return
 *   `[]` and keep nothing.
 *
 * The decoder keeps no reference to a chunk after `push` returns, so callers
 * may reuse their buffers.
 *
 * @example
 * ```ts
 * const decoder = new LineDecoder(65536);
 * decoder.push(new TextEncoder().encode('{"op":"ping"}\n{"op":'));
 * // [{ kind: "line", text: '{"op":"ping"}' }]
 * ```
 */
export class LineDecoder {
  readonly #max: number;
  /** Bytes of the unfinished line; `null` while none are held. */
  #buf: Uint8Array | null = null;
  #len = 0;
  #dead = false;

  /**
   * Creates a decoder.
   *
   * @param maxFrameBytes Largest legal line in bytes, including its newline
   * (the protocol default is 65536).
   * @throws {RangeError} If `maxFrameBytes` is not a positive safe integer.
   */
  constructor(maxFrameBytes: number) {
    if (!Number.isSafeInteger(maxFrameBytes) || maxFrameBytes < 1) {
      throw new RangeError(
        `Cannot create LineDecoder: maxFrameBytes ${maxFrameBytes} is not a positive integer; pass a byte count such as 65536`,
      );
    }
    this.#max = maxFrameBytes;
  }

  /** Number of bytes held for the unfinished line; never more than `maxFrameBytes - 1`. */
  get buffered(): number {
    return this.#len;
  }

  /**
   * Feeds the next chunk of the stream.
   *
   * @returns The lines and errors completed by this chunk, in stream order.
   */
  push(chunk: Uint8Array): DecodeResult[] {
    const out: DecodeResult[] = [];
    if (this.#dead) return out;
    const limit = this.#max - 1; // content bytes a legal line may have before its \n
    const n = chunk.length;
    let start = 0;
    while (start < n) {
      const nl = chunk.indexOf(LF, start);
      if (nl === -1) {
        const total = this.#len + (n - start);
        if (total > limit) {
          out.push(this.#fail(`${total} bytes without a newline exceed`));
          return out;
        }
        this.#append(chunk, start, n);
        return out;
      }
      const total = this.#len + (nl - start);
      if (total > limit) {
        out.push(this.#fail(`line of ${total + 1} bytes exceeds`));
        return out;
      }
      if (this.#len === 0) {
        this.#emit(chunk, start, nl, out); // whole line inside the chunk: no copy
      } else {
        this.#append(chunk, start, nl);
        this.#emit(this.#buf!, 0, this.#len, out);
        this.#len = 0;
        if (this.#buf!.length > RETAIN_BYTES) this.#buf = null;
      }
      start = nl + 1;
    }
    return out;
  }

  /** Decodes `bytes[start, end)` (without its `\n`) and appends the result to `out`. */
  #emit(bytes: Uint8Array, start: number, end: number, out: DecodeResult[]): void {
    if (end > start && bytes[end - 1] === CR) end--;
    if (isBlank(bytes, start, end)) return;
    try {
      out.push({ kind: "line", text: utf8.decode(bytes.subarray(start, end)) });
    } catch {
      out.push({
        kind: "error",
        code: "bad_frame",
        message: `Cannot decode frame: line of ${end - start} bytes is not valid UTF-8; encode frames as UTF-8 JSON`,
      });
    }
  }

  /** Copies `chunk[start, end)` onto the pending bytes; the caller has checked the limit. */
  #append(chunk: Uint8Array, start: number, end: number): void {
    const need = this.#len + (end - start);
    if (need === this.#len) return;
    let buf = this.#buf;
    if (buf === null || buf.length < need) {
      // Double to keep appends amortised O(1); never beyond what a legal line needs.
      const cap = Math.min(Math.max(need, (buf?.length ?? 0) * 2, 64), this.#max - 1);
      const grown = new Uint8Array(Math.max(cap, need));
      if (buf !== null) grown.set(buf.subarray(0, this.#len));
      this.#buf = buf = grown;
    }
    buf.set(chunk.subarray(start, end), this.#len);
    this.#len = need;
  }

  /** Kills the decoder, drops its bytes, and returns the `frame_too_large` result. */
  #fail(what: string): DecodeResult {
    this.#dead = true;
    this.#buf = null;
    this.#len = 0;
    return {
      kind: "error",
      code: "frame_too_large",
      message: `Cannot decode frame: ${what} maxFrameBytes ${this.#max}; send frames of at most ${this.#max} bytes including the newline`,
    };
  }
}
