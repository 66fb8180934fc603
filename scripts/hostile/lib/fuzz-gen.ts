/**
 * Generates hostile device sessions from a seeded {@link Prng}: random bytes, mutated valid
 * frames (bit flips, truncation, duplication, field type swaps), huge lines, invalid UTF-8,
 * deep JSON nesting, NUL bytes and JSON edge cases, sent before or after a valid hello and
 * split at random points. The same seed gives the same sessions.
 */
import type { Prng } from "./prng.ts";
import { isHardwareId } from "../../../src/protocol/hardware-id.ts";
import { bytes, concat, randomValue, validFrame, flipBits, BAD_UTF8, jsonEdge } from "./fuzz-payloads.ts";

/** What a session's main payload is. */
export const FUZZ_KINDS = {
  random_bytes: 10,
  bit_flip: 12,
  truncate: 8,
  duplicate: 8,
  type_swap: 14,
  huge_line: 5,
  frame_size_boundary: 3,
  invalid_utf8: 8,
  deep_nesting: 6,
  nul_bytes: 6,
  json_edge: 10,
  odd_identity: 5,
  valid_mix: 5,
} as const;

/** One of {@link FUZZ_KINDS}. */
export type FuzzKind = keyof typeof FUZZ_KINDS;

/** How the client ends a session. */
export type CloseMode = "end" | "terminate" | "wait" | "linger";

/** A generated session. */
export interface FuzzSession {
  kind: FuzzKind;
  /** Send a valid hello (with a minted token) first. */
  afterHello: boolean;
  /** Wait for welcome before the payload (else pipelined right behind the hello). */
  awaitWelcome: boolean;
  hardwareId: string;
  /** Payload chunks, written in order. */
  chunks: Uint8Array[];
  /** Delay before each chunk, ms (mostly 0). */
  pausesMs: number[];
  close: CloseMode;
  /** ms to wait before closing for `linger`. */
  lingerMs: number;
  /**
   * What the gateway must answer, when the payload determines it: `frame_too_large` (a line
   * over the limit), `ack:<ref>` (a legal frame exactly at the limit), `welcome` (a valid
   * hello for an awkward hardware id).
   */
  expect?: string;
}

/**
 * Builds sessions. `token(hw)` mints a valid token; `maxFrameBytes` is the gateway's limit.
 */
export class FuzzGenerator {
  private n = 0;

  private readonly weights: Record<FuzzKind, number>;

  /** `kinds` limits the sessions to those kinds (default all). */
  constructor(
    private readonly r: Prng,
    private readonly token: (hw: string) => string,
    private readonly maxFrameBytes: number,
    kinds: FuzzKind[] = [],
  ) {
    const unknown = kinds.filter((k) => !(k in FUZZ_KINDS));
    if (unknown.length) throw new Error(`Unknown fuzz kind ${unknown.join(", ")}; known: ${Object.keys(FUZZ_KINDS).join(", ")}`);
    this.weights = Object.fromEntries(Object.entries(FUZZ_KINDS).map(([k, w]) => [k, kinds.length === 0 || kinds.includes(k as FuzzKind) ? w : 0])) as Record<FuzzKind, number>;
  }

  /** The next session. */
  next(): FuzzSession {
    const r = this.r;
    const n = this.n++;
    const kind = r.weighted(this.weights);
    const hw = `fz-${r.seed.toString(36)}-${n}`;
    const afterHello = kind === "frame_size_boundary" || kind === "odd_identity" ? kind === "frame_size_boundary" : r.chance(0.5);
    const s: FuzzSession = {
      kind,
      afterHello,
      awaitWelcome: r.chance(0.5),
      hardwareId: hw,
      chunks: [],
      pausesMs: [],
      close: r.weighted({ end: 3, terminate: 2, wait: 4, linger: 1 }),
      lingerMs: r.int(0, 1500),
    };
    const payload = this.payload(s, n);
    this.split(s, payload);
    return s;
  }

  private payload(s: FuzzSession, n: number): Uint8Array {
    const r = this.r;
    const hw = s.hardwareId;
    const frameText = () => JSON.stringify(validFrame(r, hw, this.token, n));
    const nl = () => (r.chance(0.85) ? "\n" : r.pick(["", "\r\n", "\n\n", "\r"]));
    switch (s.kind) {
      case "random_bytes": {
        const b = r.bytes(r.int(1, r.chance(0.2) ? 20000 : 2048));
        if (r.chance(0.5)) b[b.length - 1] = 0x0a;
        return b;
      }
      case "bit_flip": {
        const lines = Array.from({ length: r.int(1, 4) }, () => frameText() + "\n").join("");
        return flipBits(r, bytes(lines), r.int(1, 6));
      }
      case "truncate": {
        const t = frameText();
        const cut = t.slice(0, r.int(0, t.length - 1));
        return bytes(cut + nl() + (r.chance(0.5) ? frameText() + "\n" : ""));
      }
      case "duplicate": {
        const t = frameText() + "\n";
        const mode = r.int(0, 3);
        if (mode === 0) return bytes(t.repeat(r.int(2, 200)));
        if (mode === 1) return bytes(t.replace("\n", "").repeat(r.int(2, 50)) + "\n");
        const a = r.int(0, t.length - 1);
        const b = r.int(a, t.length);
        const slice = t.slice(a, b);
        return bytes(t.slice(0, b) + slice.repeat(r.int(1, 30)) + t.slice(b));
      }
      case "type_swap": {
        const f = validFrame(r, hw, this.token, n);
        const keys = [...Object.keys(f), "op", "v", "device", "token", "resume", "topic", "body", "ref"];
        const swaps = r.int(1, 3);
        for (let i = 0; i < swaps; i++) {
          const k = r.pick(keys);
          if (r.chance(0.1)) delete f[k];
          else f[k] = randomValue(r);
        }
        return bytes(JSON.stringify(f) + nl());
      }
      case "huge_line": {
        const size = r.int(this.maxFrameBytes, this.maxFrameBytes * 4);
        const withNewline = r.chance(0.3);
        const b = new Uint8Array(size + (withNewline ? 1 : 0));
        const fill = r.pick([0x61, 0x7b, 0x5b, 0x20, 0x00, 0xff]);
        b.fill(fill);
        if (fill === 0x61 && r.chance(0.5)) b.set(bytes('{"op":"pub","topic":"t","body":"'));
        if (withNewline) b[size] = 0x0a;
        // Whitespace-only lines are skipped, but the limit applies before the newline is seen.
        s.expect = "frame_too_large";
        return b;
      }
      case "frame_size_boundary": {
        // A pub exactly at the limit (legal, acked) or one byte over (frame_too_large).
        const over = r.chance(0.5);
        const ref = `edge-${n}`;
        const head = `{"op":"pub","topic":"edge","ref":"${ref}","body":"`;
        const tail = '"}\n';
        const total = this.maxFrameBytes + (over ? 1 : 0);
        const pad = "p".repeat(total - head.length - tail.length);
        s.expect = over ? "frame_too_large" : `ack:${ref}`;
        s.awaitWelcome = true;
        return bytes(head + pad + tail);
      }
      case "invalid_utf8": {
        const t = bytes(frameText());
        const bad = r.pick(BAD_UTF8);
        const at = r.chance(0.7) ? Math.max(1, t.indexOf(0x22, r.int(0, t.length - 1)) + 1 || 1) : r.int(0, t.length);
        const out = concat([t.subarray(0, at), new Uint8Array(bad), t.subarray(at), bytes("\n")]);
        return out;
      }
      case "deep_nesting": {
        const depth = r.pick([64, 500, 1000, 5000, 10_000, 20_000, 32_000]);
        const open = r.pick(["[", '{"a":']);
        const close = open === "[" ? "]" : "}";
        const balanced = r.chance(0.7);
        const maxDepth = Math.floor((this.maxFrameBytes - 100) / (open.length + (balanced ? 1 : 0)));
        const d = Math.min(depth, maxDepth);
        const body = open.repeat(d) + "1" + (balanced ? close.repeat(d) : "");
        const where = r.int(0, 3);
        const line =
          where === 0
            ? `{"op":"pub","topic":"deep","body":${body},"ref":"d${n}"}`
            : where === 1
              ? `{"op":"hello","v":1,"device":${body},"token":"x"}`
              : where === 2
                ? `{"op":"ack","ref":${body}}`
                : body;
        return bytes(line + "\n");
      }
      case "nul_bytes": {
        const t = frameText();
        const mode = r.int(0, 3);
        if (mode === 0) return new Uint8Array(r.int(1, 5000));
        if (mode === 1) {
          const at = r.int(0, t.length);
          return concat([bytes(t.slice(0, at)), new Uint8Array(r.int(1, 8)), bytes(t.slice(at) + "\n")]);
        }
        if (mode === 2) return bytes(t.replace(/"([a-z]+)"/, '"$1\\u0000"') + "\n");
        return concat([new Uint8Array(3), bytes("\n" + t + "\n"), new Uint8Array(2), bytes("\n")]);
      }
      case "json_edge": {
        const lines = Array.from({ length: r.int(1, 5) }, () => jsonEdge(r, hw, this.token(hw)));
        return bytes(lines.join("\n") + nl());
      }
      case "odd_identity": {
        // A valid token for a hardware id full of awkward characters: it must be welcomed, and
        // its presence messages must not break the broker link. An id that is not a valid
        // hardware id (a lone surrogate, also from cutting an emoji in half; a control or format
        // character such as NUL, newline, tab or U+2028) is refused with bad_frame
        // (docs/protocol-notes.md).
        const odd = r.pick(["\u0000", "💩".repeat(r.int(1, 128)), "é".repeat(256), "\ud800x", "a b\tc", "..", "#", "*", "\n", "x".repeat(256), "\u2028"]);
        const id = `${odd}`.slice(0, 256);
        s.hardwareId = id;
        s.expect = isHardwareId(id) ? "welcome" : "bad_frame";
        const lines = [JSON.stringify({ op: "hello", v: 1, device: id, token: this.token(id) })];
        for (let i = 0; i < r.int(0, 3); i++) lines.push(JSON.stringify({ op: "pub", topic: "odd", body: { id }, ref: `${"💩".repeat(r.int(0, 64))}${i}`.slice(0, 128) }));
        lines.push('{"op":"ping"}');
        return bytes(lines.join("\n") + "\n");
      }
      case "valid_mix": {
        const lines = Array.from({ length: r.int(1, 20) }, () => frameText());
        if (r.chance(0.3)) lines.push('{"op":"bye"}');
        return bytes(lines.join("\n") + "\n");
      }
    }
  }

  /** Splits `payload` into chunks: whole, byte by byte (small ones), or at random points. */
  private split(s: FuzzSession, payload: Uint8Array): void {
    const r = this.r;
    const mode = r.int(0, 9);
    if (mode < 5 || payload.length > 200_000) {
      s.chunks.push(payload);
      s.pausesMs.push(0);
      return;
    }
    if (mode < 7 && payload.length <= 512) {
      for (let i = 0; i < payload.length; i++) {
        s.chunks.push(payload.subarray(i, i + 1));
        s.pausesMs.push(r.chance(0.05) ? r.int(1, 20) : 0);
      }
      return;
    }
    let at = 0;
    while (at < payload.length) {
      const len = r.int(1, Math.max(1, Math.min(payload.length - at, r.pick([3, 64, 1500, 65536]))));
      s.chunks.push(payload.subarray(at, at + len));
      s.pausesMs.push(r.chance(0.2) ? r.int(0, 30) : 0);
      at += len;
    }
  }
}
