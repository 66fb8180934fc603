/**
 * Seeded generator of hostile back-end messages for the gateway queue (issue 12): commands on
 * `owsla.down` and RPC replies on the default exchange, with random and hostile headers,
 * properties, bodies, sizes and encodings. Each message names its kind (what the body is)
 * and what the gateway must do with it when it is addressed to a connected device.
 */
import type { AMQPProperties } from "@cloudamqp/amqp-client";
import { Prng } from "./prng.ts";

/** Devices the generator may address. */
export interface FuzzTargets {
  /** UUIDs of devices connected for the whole run. */
  online: string[];
  /** UUIDs of devices the gateway knows, not connected (their commands are stored). */
  offline: string[];
}

/** One message to publish. */
export interface BackendFuzzMessage {
  /** Body kind (see {@link BODY_KINDS}). */
  kind: string;
  /** `down`: `owsla.down` with the gateway id; `reply`: default exchange, the gateway queue. */
  route: "down" | "reply";
  body: Uint8Array;
  props: AMQPProperties;
}

const enc = new TextEncoder();
const deepArrays = (n: number) => "[".repeat(n) + "]".repeat(n);

/** Body kinds with their generators: what a careless or hostile back-end sends. */
export const BODY_KINDS: Record<string, (r: Prng) => Uint8Array | string> = {
  json_small: (r) => JSON.stringify({ n: r.int(0, 1e6), s: "x".repeat(r.int(0, 40)), a: [1, 2, { b: null }] }),
  json_exact_numbers: () => '{"e":1e999999,"big":12345678901234567890123,"f":0.10000000000000000001,"neg":-0}',
  deep_fits: (r) => deepArrays(r.int(1000, 30_000)),
  deep_over_frame: () => deepArrays(60_000),
  string_over_frame: (r) => JSON.stringify("y".repeat(r.int(70_000, 1_000_000))),
  string_near_frame: (r) => JSON.stringify("z".repeat(r.int(64_000, 65_600))),
  not_json: (r) => ["hello", "{", "}", "[1,]", "undefined", "NaN", "{'a':1}", "\u0000\u0001"][r.int(0, 7)]!,
  empty: () => "",
  whitespace_lines: () => '{\r\n  "a" :\n\t[1,\r 2]\u000b}',
  raw_newline_in_json: () => '{\n"a":\n1\n}\n',
  line_separators: () => '{"s":"a\u2028b\u2029c"}',
  lone_surrogate_escape: () => '{"s":"\\ud800","t":"\\udc00x"}',
  lone_surrogate_bytes: () => new Uint8Array([0x7b, 0x22, 0x73, 0x22, 0x3a, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d]),
  invalid_utf8: (r) => r.bytes(r.int(1, 2000)),
  nul_inside: () => new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x31, 0x00, 0x7d]),
  bom: () => new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d]),
  escaped_controls: () => '{"s":"\\u0000\\u001b[2J\\n\\r"}',
  many_keys: (r) => JSON.stringify(Object.fromEntries(Array.from({ length: r.int(100, 3000) }, (_, i) => [`k${i}`, i]))),
  duplicate_keys: () => '{"a":1,"a":2,"__proto__":{"x":1},"constructor":null}',
  binary_zeros: (r) => new Uint8Array(r.int(1, 5000)),
};

/** Bodies rare on purpose (big, or slow for the broker): chosen 1 time in 50. */
const RARE = new Set(["string_over_frame", "deep_over_frame", "many_keys"]);

/** Kinds that a connected device must never receive (they cannot fit a frame). */
export const NEVER_DELIVERED = new Set(["deep_over_frame", "string_over_frame"]);

function pick<T>(r: Prng, xs: readonly T[]): T {
  return xs[r.int(0, xs.length - 1)]!;
}

function randomUnicode(r: Prng, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += String.fromCodePoint(pick(r, [r.int(0, 0x1f), r.int(0x20, 0x7e), r.int(0xa0, 0x2fff), r.int(0xd800, 0xdfff), r.int(0x1f300, 0x1f6ff)]));
  return s;
}

/** A `device_id` header value: right, wrong case, unknown, or not a string at all. */
function deviceHeader(r: Prng, t: FuzzTargets): unknown {
  const known = [...t.online, ...t.offline];
  return pick(r, [
    () => pick(r, t.online),
    () => pick(r, t.online),
    () => pick(r, t.offline),
    () => pick(r, known).toUpperCase(),
    () => crypto.randomUUID(),
    () => ` ${pick(r, known)}`,
    () => "not-a-uuid",
    () => randomUnicode(r, r.int(0, 60)),
    () => "d".repeat(r.int(300, 70_000)),
    () => r.int(-1e9, 1e9),
    () => enc.encode(pick(r, known)),
    () => [pick(r, known)],
    () => ({ id: pick(r, known) }),
    () => r.chance(0.5),
    () => null,
    () => undefined,
  ])();
}

function topicHeader(r: Prng): unknown {
  return pick(r, [undefined, "cmd", "set.valve", "a..b", ".", "x".repeat(r.int(150, 400)), "täst", "a b", "a/b#", r.int(0, 9), { t: "cmd" }, ["cmd"], randomUnicode(r, r.int(1, 20))]);
}

/** A short string property (AMQP shortstr: at most 255 bytes; longer ones the client may refuse). */
function shortProp(r: Prng): string | undefined {
  return pick(r, [undefined, "", "plain-id", randomUnicode(r, r.int(1, 60)), "m".repeat(r.int(200, 255)), "\u0000\n\r", `${crypto.randomUUID()}:${randomUnicode(r, 5)}`]);
}

function correlation(r: Prng, t: FuzzTargets): string | undefined {
  const dev = pick(r, [...t.online, ...t.offline]);
  return pick(r, [undefined, `${dev}:r${r.int(0, 99)}`, `${dev}:`, `${dev.toUpperCase()}:x`, `:${dev}`, dev, `${crypto.randomUUID()}:x`, `${dev}:${randomUnicode(r, r.int(1, 50))}`, shortProp(r)]);
}

function expiration(r: Prng): string | undefined {
  // Only values RabbitMQ accepts (it closes the channel on others): 0, small, huge.
  return pick(r, [undefined, undefined, "0", "1", String(r.int(2, 100_000)), "4294967295"]);;
}

function extraHeaders(r: Prng): Record<string, unknown> {
  const h: Record<string, unknown> = {};
  const n = r.chance(0.05) ? r.int(50, 300) : r.int(0, 5);
  for (let i = 0; i < n; i++) {
    h[pick(r, [`h${i}`, randomUnicode(r, r.int(1, 10)), "x-death", "reply_to", "k".repeat(r.int(1, 200))])] = pick(r, [
      "v",
      r.int(-1e9, 1e9),
      1.5,
      true,
      null,
      [1, "a", [null]],
      { nested: { deeper: { x: 1 } } },
      new Date(r.int(0, 4e12)),
      BigInt(r.int(0, 1e9)) * 1_000_000_000n,
      enc.encode("bytes"),
    ]);
  }
  return h;
}

/** Generates messages for `targets` from `seed`. */
export class BackendFuzzGen {
  private readonly r: Prng;
  private readonly kinds: string[];
  private readonly rare: string[];

  constructor(seed: number, private readonly targets: FuzzTargets) {
    this.r = new Prng(seed);
    this.kinds = Object.keys(BODY_KINDS).filter((k) => !RARE.has(k));
    this.rare = [...RARE];
  }

  next(): BackendFuzzMessage {
    const r = this.r;
    const kind = r.chance(0.02) ? pick(r, this.rare) : pick(r, this.kinds);
    const raw = BODY_KINDS[kind]!(r);
    const body = typeof raw === "string" ? enc.encode(raw) : raw;
    const headers: Record<string, unknown> = { ...extraHeaders(r) };
    const dev = deviceHeader(r, this.targets);
    if (dev !== undefined) headers.device_id = dev;
    const topic = topicHeader(r);
    if (topic !== undefined) headers.topic = topic;
    const props: AMQPProperties = {
      headers: headers as AMQPProperties["headers"],
      messageId: shortProp(r),
      correlationId: correlation(r, this.targets),
      expiration: expiration(r),
      contentType: pick(r, [undefined, "application/json", "text/plain", "application/octet-stream", randomUnicode(r, 8)]),
      contentEncoding: pick(r, [undefined, "gzip", "deflate", "utf-16", "identity"]),
      deliveryMode: pick(r, [undefined, 1, 2]),
      priority: pick(r, [undefined, 0, 9, 255]),
      timestamp: r.chance(0.2) ? new Date(r.int(0, 4e12)) : undefined,
      type: pick(r, [undefined, "cmd", randomUnicode(r, 10)]),
      appId: pick(r, [undefined, "fuzz"]),
    };
    return { kind, route: r.chance(0.3) ? "reply" : "down", body, props };
  }
}
