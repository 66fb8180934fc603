/**
 * Payload pieces of the fuzzer (scripts/hostile/lib/fuzz-gen.ts): random JSON values, valid
 * frames to mutate, bit flips, invalid UTF-8 sequences and JSON edge cases.
 */
import type { Prng } from "./prng.ts";

const enc = new TextEncoder();
export const bytes = (s: string) => enc.encode(s);

export function concat(parts: Uint8Array[]): Uint8Array {
  const n = parts.reduce((s, p) => s + p.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A random JSON value of a random type, including awkward ones. */
export function randomValue(r: Prng, depth = 0): unknown {
  const k = r.int(0, depth > 2 ? 11 : 14);
  switch (k) {
    case 0:
      return null;
    case 1:
      return r.chance(0.5);
    case 2:
      return r.pick([0, -0, 1, -1, 1.5, 2 ** 53 + 1, -(2 ** 63), 1e308, 5e-324, 255, 65536]);
    case 3:
      return "";
    case 4:
      return "x".repeat(r.int(1, 300));
    case 5:
      return r.pick(["\u0000", "\ud800", "\udfff", "💩".repeat(r.int(1, 70)), "a\nb", "\r\n", "\u2028", "\ufeff", "é".repeat(130)]);
    case 6:
      return r.pick(["1", "true", "null", "hello", "pub", "{}", "[]", "__proto__", "constructor", "toString"]);
    case 7:
      return "s".repeat(r.int(200, 600));
    case 8:
      return [];
    case 9:
      return {};
    case 10:
      return r.int(-1000, 1000);
    case 11:
      return "00000000-0000-4000-8000-000000000000";
    case 12:
      return [randomValue(r, depth + 1), randomValue(r, depth + 1)];
    case 13:
      return { a: randomValue(r, depth + 1), __proto__x: 1 };
    default:
      return { op: r.pick(["hello", "pub", "ack"]), v: 1, nested: randomValue(r, depth + 1) };
  }
}

/** A valid frame object of a random op (tokens for `hw` come from `token`). */
export function validFrame(r: Prng, hw: string, token: (hw: string) => string, n: number): Record<string, unknown> {
  switch (r.int(0, 7)) {
    case 0:
      return { op: "hello", v: 1, device: hw, token: token(hw) };
    case 1:
      return { op: "hello", v: 1, resume: crypto.randomUUID() };
    case 2:
    case 3:
      return { op: "pub", topic: r.pick(["temp", "sensors.temp", "a-b_c.d", "x"]), body: { c: 21.5, n }, ref: `r${n}` };
    case 4:
      return { op: "ack", ref: crypto.randomUUID() };
    case 5:
      return { op: "ping" };
    case 6:
      return { op: r.pick(["teleport", "HELLO", "Pub", ""]) };
    default:
      return { op: "pub", topic: "t", body: null };
  }
}

/** Flips `k` random bits of `b` in place. */
export function flipBits(r: Prng, b: Uint8Array, k: number): Uint8Array {
  for (let i = 0; i < k && b.length > 0; i++) b[r.int(0, b.length - 1)]! ^= 1 << r.int(0, 7);
  return b;
}

/** Sequences that are not valid UTF-8. */
export const BAD_UTF8: number[][] = [
  [0xff],
  [0xfe, 0xff],
  [0xc0, 0xaf], // overlong "/"
  [0xc0, 0x80], // overlong NUL
  [0xe0, 0x80, 0xaf],
  [0xed, 0xa0, 0x80], // UTF-8 encoded surrogate
  [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
  [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0x80],
  [0xe2, 0x82], // truncated sequence
];

/** Nasty lines built by hand. */
export function jsonEdge(r: Prng, hw: string, token: string): string {
  const cases = [
    "{}",
    "[]",
    "null",
    "123",
    '"hello"',
    '{"op":null}',
    '{"op":1}',
    '{"op":["hello"]}',
    '{"op":{"op":"hello"}}',
    '{"op":"hello"}',
    '{"op":"hello","v":"1"}',
    '{"op":"hello","v":1.0000000000000001}',
    '{"op":"hello","v":2}',
    '{"op":"hello","v":1e400}',
    `{"op":"hello","v":1,"device":"${hw}","device":"other","token":"${token}"}`,
    `{"op":"pub","op":"hello","v":1,"device":"${hw}","token":"${token}"}`,
    `{"op":"hello","v":1,"__proto__":{"device":"${hw}","token":"${token}"}}`,
    '{"op":"hello","v":1,"constructor":{"prototype":{"polluted":1}}}',
    '{"op":"pub","topic":"a","body":{"__proto__":{"toJSON":1}},"ref":"x"}',
    '{"op":"pub","topic":"a","body":{"toJSON":"x"},"ref":"x"}',
    '{"op":"pub","topic":"","body":1}',
    '{"op":"pub","topic":".a","body":1}',
    '{"op":"pub","topic":"a..b","body":1}',
    '{"op":"pub","topic":"#","body":1}',
    '{"op":"pub","topic":"a.*","body":1}',
    `{"op":"pub","topic":"${"a".repeat(201)}","body":1}`,
    `{"op":"pub","topic":"${"a.".repeat(99)}a","body":1,"ref":"${"r".repeat(128)}"}`,
    `{"op":"pub","topic":"t","body":1,"ref":"${"💩".repeat(64)}"}`,
    `{"op":"pub","topic":"t","body":1,"ref":"${"é".repeat(128)}"}`,
    `{"op":"pub","topic":"t","body":1,"ref":"${"r".repeat(129)}"}`,
    '{"op":"pub","topic":"t","body":1,"ref":""}',
    '{"op":"pub","topic":"t","body":1,"ref":5}',
    '{"op":"ack"}',
    '{"op":"ack","ref":null}',
    '{"op":"ack","ref":{"$gt":""}}',
    `{"op":"ack","ref":"${"z".repeat(5000)}"}`,
    '{"op":"ping","op":"bye"}',
    '{"op":"hello","v":1,"resume":"00000000-0000-5000-8000-000000000000"}',
    '{"op":"hello","v":1,"resume":"not-a-uuid"}',
    '{"op":"hello","v":1,"resume":"FFFFFFFF-FFFF-4FFF-BFFF-FFFFFFFFFFFF"}',
    '{"op":"hello","v":1,"device":"","token":""}',
    `{"op":"hello","v":1,"device":"${"d".repeat(257)}","token":"x"}`,
    `{"op":"hello","v":1,"device":"dev","token":"${"t".repeat(513)}"}`,
    '{"op":"hello","v":1,"device":"dev","token":"1.abc"}',
    '{"op":"hello","v":1,"device":"dev","token":"-1.abc"}',
    '{"op":"hello","v":1,"device":"dev","token":"99999999999999999999.abc"}',
    '{"op":"hello","v":1,"device":"dev","token":"1e3.abc"}',
    '{"op" : "ping" }',
    ' \t{"op":"ping"}\t ',
    '{"op":"ping"}\r',
    '{"op":"ping"}\r\r',
    '\r',
    "   ",
    "\u000b\u000c",
    '{"op":"ping"',
    '{"op":"ping"}}',
    '{"op":"ping"}{"op":"ping"}',
    "{'op':'ping'}",
    '{"op":"ping",}',
    "\ufeff{\"op\":\"ping\"}",
    '{"op":"\\u0070ing"}',
    '{"op":"ping\\u0000"}',
    '{"\\u0000op":"ping"}',
    `{"op":"pub","topic":"t","body":${"1".repeat(400)}}`,
    `{"op":"pub","topic":"t","body":-${"9".repeat(400)}e-99999}`,
    '{"op":"pub","topic":"t","body":"\\ud800\\udc00\\ud800"}',
    "[".repeat(100) + "]".repeat(99),
    '{"a":'.repeat(200),
  ];
  return r.pick(cases);
}
