import { describe, expect, test } from "bun:test";
import { type DecodeResult, LineDecoder } from "./line-decoder.ts";

const enc = new TextEncoder();
const bytes = (s: string) => enc.encode(s);
const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
const lines = (...texts: string[]): DecodeResult[] => texts.map((text) => ({ kind: "line", text }));

/** Deterministic PRNG (mulberry32) so random split tests are reproducible. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Pushes `input` cut at the given offsets and returns every result. */
function feed(decoder: LineDecoder, input: Uint8Array, cuts: number[]): DecodeResult[] {
  const out: DecodeResult[] = [];
  let prev = 0;
  for (const cut of [...cuts, input.length]) {
    out.push(...decoder.push(input.subarray(prev, cut)));
    prev = cut;
  }
  return out;
}

// A stream exercising every rule: plain lines, CRLF, blank lines, multi-byte text, invalid UTF-8.
const MIXED = concat(
  bytes('{"op":"hello","v":1,"device":"thermo-00042"}\n'),
  bytes('{"op":"pub","topic":"temp","body":{"c":21.5},"ref":"r1"}\r\n'),
  bytes("\n   \r\n\t\n"),
  bytes('{"op":"pub","topic":"note","body":"温度 🌡️ ok"}\n'),
  new Uint8Array([0x7b, 0xff, 0xfe, 0x7d, 0x0a]),
  bytes('{"op":"ping"}\n{"op":"bye"}\n'),
  bytes('{"op":"partial"'),
);

describe("LineDecoder", () => {
  test("decoder returns two frames from one chunk", () => {
    const d = new LineDecoder(65536);
    expect(d.push(bytes('{"op":"ping"}\n{"op":"bye"}\n'))).toEqual(lines('{"op":"ping"}', '{"op":"bye"}'));
    expect(d.buffered).toBe(0);
  });

  test("decoder keeps a partial line until its newline arrives", () => {
    const d = new LineDecoder(65536);
    expect(d.push(bytes('{"op":'))).toEqual([]);
    expect(d.buffered).toBe(6);
    expect(d.push(bytes('"ping"}\n{"op"'))).toEqual(lines('{"op":"ping"}'));
    expect(d.buffered).toBe(5);
    expect(d.push(bytes(':"bye"}\n'))).toEqual(lines('{"op":"bye"}'));
    expect(d.buffered).toBe(0);
  });

  test("decoder strips one trailing CR from CRLF lines", () => {
    const d = new LineDecoder(100);
    expect(d.push(bytes('{"op":"ping"}\r\n{"a":1}\r\r\n'))).toEqual(lines('{"op":"ping"}', '{"a":1}\r'));
  });

  test("decoder skips empty and whitespace-only lines", () => {
    const d = new LineDecoder(100);
    expect(d.push(bytes("\n\r\n  \n\t \r\n\v\f\n{}\n"))).toEqual(lines("{}"));
  });

  test("decoder keeps leading and inner whitespace of a line", () => {
    const d = new LineDecoder(100);
    expect(d.push(bytes('  {"op": "ping"} \n'))).toEqual(lines('  {"op": "ping"} '));
  });

  test("decoder gives the same results fed one byte at a time as in one push", () => {
    const whole = new LineDecoder(65536).push(MIXED);
    expect(whole.length).toBe(6);
    const d = new LineDecoder(65536);
    const cuts = Array.from({ length: MIXED.length - 1 }, (_, i) => i + 1);
    expect(feed(d, MIXED, cuts)).toEqual(whole);
    expect(d.buffered).toBe('{"op":"partial"'.length);
  });

  test("decoder gives the same results at random split points", () => {
    const whole = new LineDecoder(65536).push(MIXED);
    const random = prng(0x0051a);
    for (let iteration = 0; iteration < 500; iteration++) {
      const count = Math.floor(random() * 12);
      const cuts = Array.from({ length: count }, () => Math.floor(random() * (MIXED.length + 1))).sort((a, b) => a - b);
      expect(feed(new LineDecoder(65536), MIXED, cuts)).toEqual(whole);
    }
  });

  test("decoder reports an oversized line at any split point after the same lines", () => {
    const input = bytes('{"op":"ping"}\n\r\n{"op":"bye"}\n' + "w".repeat(100) + '\n{"op":"ping"}\n');
    const kinds = (results: DecodeResult[]) => results.map((r) => (r.kind === "line" ? r.text : r.code));
    const expected = ['{"op":"ping"}', '{"op":"bye"}', "frame_too_large"];
    expect(kinds(new LineDecoder(64).push(input))).toEqual(expected);
    const random = prng(7);
    for (let iteration = 0; iteration < 300; iteration++) {
      const cuts = Array.from({ length: 1 + Math.floor(random() * 20) }, () => Math.floor(random() * input.length));
      expect(kinds(feed(new LineDecoder(64), input, cuts.sort((a, b) => a - b)))).toEqual(expected);
    }
  });

  test("decoder reassembles multi-byte UTF-8 split at every byte position", () => {
    for (const text of ['{"t":"🌡️🔥"}', '{"t":"温度计"}', '{"t":"é€𐍈"}']) {
      const input = bytes(text + "\n");
      for (let cut = 0; cut <= input.length; cut++) {
        expect(feed(new LineDecoder(256), input, [cut])).toEqual(lines(text));
      }
    }
  });

  test("decoder accepts a line of exactly maxFrameBytes including the newline", () => {
    const max = 64;
    const text = "x".repeat(max - 1);
    expect(new LineDecoder(max).push(bytes(text + "\n"))).toEqual(lines(text));
    expect(new LineDecoder(max).push(bytes(text.slice(1) + "\r\n"))).toEqual(lines(text.slice(1)));
    const d = new LineDecoder(max);
    expect(d.push(bytes(text))).toEqual([]);
    expect(d.buffered).toBe(max - 1);
    expect(d.push(bytes("\n"))).toEqual(lines(text));
  });

  test("decoder rejects a line one byte over maxFrameBytes", () => {
    const max = 64;
    const [error] = new LineDecoder(max).push(bytes("x".repeat(max) + "\n"));
    expect(error).toEqual({
      kind: "error",
      code: "frame_too_large",
      message: "Cannot decode frame: line of 65 bytes exceeds maxFrameBytes 64; send frames of at most 64 bytes including the newline",
    });
    const crlf = new LineDecoder(max).push(bytes("x".repeat(max - 1) + "\r\n"));
    expect(crlf.map((r) => r.kind === "error" && r.code)).toEqual(["frame_too_large"]);
  });

  test("decoder reports an oversized line before its newline arrives", () => {
    const d = new LineDecoder(64);
    expect(d.push(bytes("x".repeat(63)))).toEqual([]);
    const [error] = d.push(bytes("x"));
    expect(error).toMatchObject({ kind: "error", code: "frame_too_large" });
    expect((error as { message: string }).message).toContain("64 bytes without a newline exceed maxFrameBytes 64");
    expect(d.buffered).toBe(0);
  });

  test("decoder returns lines before an oversized line in the same chunk, then stops", () => {
    const d = new LineDecoder(32);
    const results = d.push(bytes('{"op":"ping"}\n' + "y".repeat(40) + '\n{"op":"bye"}\n'));
    expect(results.map((r) => (r.kind === "line" ? r.text : r.code))).toEqual(['{"op":"ping"}', "frame_too_large"]);
  });

  test("decoder is dead after frame_too_large and keeps nothing", () => {
    const d = new LineDecoder(16);
    expect(d.push(bytes("z".repeat(20)))).toHaveLength(1);
    expect(d.push(bytes('{"op":"ping"}\n'))).toEqual([]);
    expect(d.push(bytes("abc"))).toEqual([]);
    expect(d.buffered).toBe(0);
  });

  test("decoder streams 10 MB without a newline in 4 KB chunks with bounded memory", () => {
    const max = 65536;
    const d = new LineDecoder(max);
    const chunk = new Uint8Array(4096).fill(0x61);
    const results: DecodeResult[] = [];
    for (let sent = 0; sent < 10 * 1024 * 1024; sent += chunk.length) {
      results.push(...d.push(chunk));
      expect(d.buffered).toBeLessThanOrEqual(max);
    }
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ kind: "error", code: "frame_too_large" });
    expect(d.buffered).toBe(0);
  });

  test("decoder reports invalid UTF-8 as bad_frame and decodes later lines", () => {
    const d = new LineDecoder(100);
    const input = concat(
      bytes("{}\n"),
      new Uint8Array([0x22, 0xc3, 0x28, 0x22, 0x0a]), // bad continuation byte
      new Uint8Array([0xed, 0xa0, 0x80, 0x0a]), // encoded surrogate
      new Uint8Array([0xc0, 0xaf, 0x0a]), // overlong "/"
      new Uint8Array([0xe6, 0xb8, 0x0a]), // truncated sequence
      bytes('{"op":"ping"}\n'),
    );
    const results = d.push(input);
    expect(results.map((r) => (r.kind === "line" ? r.text : r.code))).toEqual([
      "{}",
      "bad_frame",
      "bad_frame",
      "bad_frame",
      "bad_frame",
      '{"op":"ping"}',
    ]);
    expect(results[1]).toEqual({
      kind: "error",
      code: "bad_frame",
      message: "Cannot decode frame: line of 4 bytes is not valid UTF-8; encode frames as UTF-8 JSON",
    });
  });

  test("decoder passes NUL bytes inside a line through unchanged", () => {
    const d = new LineDecoder(100);
    const input = concat(bytes('{"s":"a'), new Uint8Array([0]), bytes('b"}\n'));
    expect(d.push(input)).toEqual(lines('{"s":"a\u0000b"}'));
  });

  test("decoder keeps no reference to a pushed chunk", () => {
    const d = new LineDecoder(100);
    const chunk = bytes('{"a":1}\n{"b":');
    d.push(chunk);
    chunk.fill(0x21);
    expect(d.push(bytes("2}\n"))).toEqual(lines('{"b":2}'));
  });

  test("decoder reassembles a 20 KB line pushed three bytes at a time", () => {
    const d = new LineDecoder(65536);
    const text = '{"op":"pub","topic":"t","body":"' + "q".repeat(20000) + '"}';
    const input = bytes(text + "\n");
    const out: DecodeResult[] = [];
    for (let i = 0; i < input.length; i += 3) out.push(...d.push(input.subarray(i, i + 3)));
    expect(out).toEqual(lines(text));
  });

  test("decoder rejects a maxFrameBytes that is not a positive integer", () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new LineDecoder(bad)).toThrow(RangeError);
    }
    expect(() => new LineDecoder(0)).toThrow("Cannot create LineDecoder: maxFrameBytes 0 is not a positive integer");
  });
});
