import { describe, expect, test } from "bun:test";
import { ERROR_CODES, encodeFrame, errorFrame, type GatewayFrame, parseFrame, type ParseResult } from "./frames.ts";

const parse = (value: unknown) => parseFrame(JSON.stringify(value));

/** Asserts a failed parse and returns it for further checks. */
function failure(result: ParseResult) {
  if (result.ok) throw new Error(`expected a failure, got ${JSON.stringify(result.frame)}`);
  return result;
}

describe("parseFrame: envelope", () => {
  test("parseFrame rejects invalid JSON as bad_frame and closes", () => {
    for (const text of ["{", "not json", '{"op":"ping"', "{'op':'ping'}", ""]) {
      expect(failure(parseFrame(text))).toMatchObject({ code: "bad_frame", close: true });
    }
    expect(failure(parseFrame("{")).message).toBe("Cannot parse frame: it is not valid JSON; send one JSON object per line");
  });

  test("parseFrame rejects JSON that is not an object and closes", () => {
    for (const text of ["[]", '[{"op":"ping"}]', "null", "42", '"ping"', "true"]) {
      expect(failure(parseFrame(text))).toMatchObject({ code: "bad_frame", close: true });
    }
    expect(failure(parseFrame("[1]")).message).toContain("expected a JSON object, got an array");
  });

  test("parseFrame rejects a missing or non-string op and closes", () => {
    expect(failure(parse({ v: 1 }))).toEqual({
      ok: false,
      code: "bad_frame",
      close: true,
      message: 'Cannot parse frame: field "op" is missing; use one of hello, pub, ack, ping, bye',
    });
    for (const op of [null, 1, true, ["ping"], { op: "ping" }]) {
      expect(failure(parse({ op }))).toMatchObject({ code: "bad_frame", close: true });
    }
  });

  test("parseFrame answers an unknown op with unknown_op and stays open", () => {
    const result = failure(parse({ op: "subscribe", ref: "r9" }));
    expect(result).toEqual({
      ok: false,
      code: "unknown_op",
      close: false,
      ref: "r9",
      message: 'Unknown op "subscribe"; use one of hello, pub, ack, ping, bye',
    });
    expect(failure(parse({ op: "PING" })).code).toBe("unknown_op");
  });

  test("parseFrame truncates a long unknown op in its message", () => {
    const message = failure(parse({ op: "x".repeat(10000) })).message;
    expect(message.length).toBeLessThan(120);
  });

  test("parseFrame ignores and drops unknown fields", () => {
    expect(parse({ op: "ping", extra: [1, 2], __proto__x: 1 })).toEqual({ ok: true, frame: { op: "ping" } });
    expect(parseFrame('{"op":"bye","__proto__":{"polluted":true}}')).toEqual({ ok: true, frame: { op: "bye" } });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  test("parseFrame does not throw on 100k-deep nesting", () => {
    const open = "[".repeat(100_000);
    const closed = open + "]".repeat(100_000);
    for (const text of [open, closed, `{"op":"pub","topic":"t","body":${closed}}`, '{"op":"pub","body":' + open]) {
      expect(() => parseFrame(text)).not.toThrow();
    }
    expect(failure(parseFrame(open))).toMatchObject({ code: "bad_frame", close: true });
    expect(failure(parseFrame(closed))).toMatchObject({ code: "bad_frame", close: true });
    const objects = '{"a":'.repeat(100_000) + "1" + "}".repeat(100_000);
    expect(() => parseFrame(objects)).not.toThrow();
  });

  test("parseFrame accepts escaped NUL characters in strings", () => {
    const result = parseFrame('{"op":"pub","topic":"t","body":"a\\u0000b","ref":"r\\u0000"}');
    expect(result).toEqual({ ok: true, frame: { op: "pub", topic: "t", body: "a\u0000b", ref: "r\u0000" } });
  });

  test("parseFrame rejects a raw NUL byte inside a string as invalid JSON", () => {
    expect(failure(parseFrame('{"op":"pub","topic":"t","body":"a\u0000b"}'))).toMatchObject({
      code: "bad_frame",
      close: true,
    });
  });

  test("parseFrame never throws on random input", () => {
    let seed = 12345;
    const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const alphabet = '{}[]":,\\ 0123456789.eE-+truefalsnopubhelloackv\u0000\uffff🌡';
    for (let i = 0; i < 2000; i++) {
      let text = '{"op":"' + ["hello", "pub", "ack", "ping", "bye", "x"][i % 6] + '"';
      const n = Math.floor(random() * 40);
      for (let j = 0; j < n; j++) text += alphabet[Math.floor(random() * alphabet.length)];
      expect(() => parseFrame(text)).not.toThrow();
    }
  });
});

describe("parseFrame: hello", () => {
  test("parseFrame accepts a minimal hello", () => {
    expect(parse({ op: "hello", v: 1 })).toEqual({ ok: true, frame: { op: "hello", v: 1 } });
  });

  test("parseFrame accepts a full hello and lower-cases resume", () => {
    const resume = "9B2F0C1E-3F4A-4C1D-9A7B-2E5F6A7B8C9D";
    expect(parse({ op: "hello", v: 1, device: "thermo-00042", token: "t0k", resume, extra: 1 })).toEqual({
      ok: true,
      frame: { op: "hello", v: 1, device: "thermo-00042", token: "t0k", resume: resume.toLowerCase() },
    });
  });

  test("parseFrame rejects a hello without v 1 and closes", () => {
    for (const v of [undefined, 2, 0, "1", 1.5, null, true, [1]]) {
      const result = failure(parse({ op: "hello", v }));
      expect(result).toMatchObject({ code: "bad_frame", close: true });
      expect(result.message).toStartWith("Unsupported protocol version");
    }
    expect(failure(parse({ op: "hello", v: 2 })).message).toBe(
      'Unsupported protocol version: got 2; send "v":1 in hello',
    );
  });

  test("parseFrame accepts v 1.0 because JSON cannot tell it from 1", () => {
    expect(parseFrame('{"op":"hello","v":1.0}')).toMatchObject({ ok: true });
  });

  test("parseFrame refuses a hello device with a lone UTF-16 surrogate (it cannot be hashed or encoded)", () => {
    expect(failure(parse({ op: "hello", v: 1, device: "\ud800x" })).message).toContain("(well-formed Unicode)");
  });

  test("parseFrame checks hello device: 1 to 256 characters without control or format characters", () => {
    expect(parse({ op: "hello", v: 1, device: "d".repeat(256) })).toMatchObject({ ok: true });
    for (const device of ["", "d".repeat(257), 42, {}, ["d"], "lock-9\nforged log line", "\u001b[2J", "a\u0000", "rtl\u202eevil"]) {
      const result = failure(parse({ op: "hello", v: 1, device }));
      expect(result).toMatchObject({ code: "bad_frame", close: false });
      expect(result.message).toStartWith(
        'Invalid hello frame: field "device" must be a string of 1 to 256 characters without control or format characters (well-formed Unicode), got',
      );
      // The refused value is echoed escaped, never raw.
      expect(result.message).not.toMatch(/[\n\u001b\u0000\u202e]/);
    }
  });

  test("parseFrame checks hello token: string of at most 512 characters", () => {
    expect(parse({ op: "hello", v: 1, token: "" })).toMatchObject({ ok: true, frame: { token: "" } });
    expect(parse({ op: "hello", v: 1, token: "t".repeat(512) })).toMatchObject({ ok: true });
    for (const token of ["t".repeat(513), 7, false]) {
      const result = failure(parse({ op: "hello", v: 1, token }));
      expect(result).toMatchObject({ code: "bad_frame", close: false });
      expect(result.message).toContain('field "token"');
    }
  });

  test("parseFrame checks hello resume: canonical UUID", () => {
    for (const resume of [
      "9b2f0c1e3f4a4c1d9a7b2e5f6a7b8c9d",
      "{9b2f0c1e-3f4a-4c1d-9a7b-2e5f6a7b8c9d}",
      "9b2f0c1e-3f4a-4c1d-9a7b-2e5f6a7b8c9",
      "9b2f0c1e-3f4a-4c1d-9a7b-2e5f6a7b8c9dd",
      "9b2f0c1e-3f4a-4c1d-9a7b-2e5f6a7b8c9g",
      " 9b2f0c1e-3f4a-4c1d-9a7b-2e5f6a7b8c9d",
      "",
      123,
    ]) {
      const result = failure(parse({ op: "hello", v: 1, resume }));
      expect(result).toMatchObject({ code: "bad_frame", close: false });
      expect(result.message).toContain('field "resume" must be a UUID');
    }
  });

  test("parseFrame treats null optional hello fields as absent", () => {
    expect(parse({ op: "hello", v: 1, device: null, token: null, resume: null })).toEqual({
      ok: true,
      frame: { op: "hello", v: 1 },
    });
  });
});

describe("parseFrame: pub", () => {
  test("parseFrame accepts a pub with body and ref", () => {
    expect(parse({ op: "pub", topic: "temp", body: { c: 21.5 }, ref: "r1" })).toEqual({
      ok: true,
      frame: { op: "pub", topic: "temp", body: { c: 21.5 }, ref: "r1" },
    });
  });

  test("parseFrame gives a pub without body a null body", () => {
    expect(parse({ op: "pub", topic: "t" })).toEqual({ ok: true, frame: { op: "pub", topic: "t", body: null } });
  });

  test("parseFrame accepts any JSON value as pub body", () => {
    for (const body of [null, false, 0, "", "x", [], [1, [2]], { a: { b: null } }]) {
      expect(parse({ op: "pub", topic: "t", body })).toEqual({ ok: true, frame: { op: "pub", topic: "t", body } });
    }
  });

  test("parseFrame accepts valid topics", () => {
    for (const topic of ["a", "temp", "sensors.temp", "A-b_C.9.x-y", "_", "-.-", "t".repeat(128), "a.".repeat(63) + "bc"]) {
      expect(parse({ op: "pub", topic })).toMatchObject({ ok: true, frame: { topic } });
    }
  });

  test("parseFrame rejects invalid topics naming the field", () => {
    for (const topic of [undefined, "", ".", "a.", ".a", "a..b", "a b", "a/b", "a*", "temp\n", "é", "t".repeat(129), 5, null, ["a"]]) {
      const result = failure(parse({ op: "pub", topic, ref: "r1" }));
      expect(result).toMatchObject({ code: "bad_frame", close: false, ref: "r1" });
      expect(result.message).toContain('Invalid pub frame: field "topic"');
    }
    expect(failure(parse({ op: "pub" })).message).toStartWith('Invalid pub frame: field "topic" is missing; it must be');
  });

  test("parseFrame checks pub ref: string of 1 to 128 characters and at most 200 UTF-8 bytes", () => {
    expect(parse({ op: "pub", topic: "t", ref: "r".repeat(128) })).toMatchObject({ ok: true });
    expect(parse({ op: "pub", topic: "t", ref: "é".repeat(100) })).toMatchObject({ ok: true });
    expect(parse({ op: "pub", topic: "t", ref: null })).toEqual({ ok: true, frame: { op: "pub", topic: "t", body: null } });
    // 64 emoji are 128 UTF-16 units but 256 bytes: the correlation id would not fit AMQP's 255.
    for (const ref of ["", "r".repeat(129), "\u{1F4A9}".repeat(64), "\ud800x", 1, {}, true]) {
      const result = failure(parse({ op: "pub", topic: "t", ref }));
      expect(result).toMatchObject({ code: "bad_frame", close: false });
      expect(result.ref).toBeUndefined();
      expect(result.message).toStartWith('Invalid pub frame: field "ref" must be a string of 1 to 128 characters and at most 200 bytes in UTF-8, got');
    }
  });
});

describe("parseFrame: ack, ping, bye", () => {
  test("parseFrame accepts an ack with a ref", () => {
    expect(parse({ op: "ack", ref: "0193abc" })).toEqual({ ok: true, frame: { op: "ack", ref: "0193abc" } });
  });

  test("parseFrame rejects an ack without a valid ref", () => {
    expect(failure(parse({ op: "ack" }))).toEqual({
      ok: false,
      code: "bad_frame",
      close: false,
      message: 'Invalid ack frame: field "ref" is missing; it must be a string of 1 to 255 characters (the id of a cmd)',
    });
    expect(parse({ op: "ack", ref: "r".repeat(255) })).toMatchObject({ ok: true });
    for (const ref of ["", "r".repeat(256), null, 5, ["r"]]) {
      expect(failure(parse({ op: "ack", ref }))).toMatchObject({ code: "bad_frame", close: false });
    }
  });

  test("parseFrame accepts ping and bye, ignoring extra fields", () => {
    expect(parse({ op: "ping", ref: "x" })).toEqual({ ok: true, frame: { op: "ping" } });
    expect(parse({ op: "bye", reason: "reboot" })).toEqual({ ok: true, frame: { op: "bye" } });
  });
});

describe("encodeFrame and errorFrame", () => {
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);

  test("encodeFrame writes one JSON line ending in a newline", () => {
    const frame: GatewayFrame = { op: "welcome", id: "9b2f", conn: "41c0", gateway: "bldg-7", keepalive: 60 };
    const text = decode(encodeFrame(frame));
    expect(text).toBe('{"op":"welcome","id":"9b2f","conn":"41c0","gateway":"bldg-7","keepalive":60}\n');
  });

  test("encodeFrame encodes non-ASCII as UTF-8 and escapes newlines inside strings", () => {
    const frame: GatewayFrame = { op: "cmd", id: "1", topic: "t", body: { s: "温度🌡\nx" }, corr: null };
    const bytes = encodeFrame(frame);
    expect(bytes.indexOf(0x0a)).toBe(bytes.length - 1);
    expect(JSON.parse(decode(bytes))).toEqual(frame);
  });

  test("errorFrame includes retry_after only when given", () => {
    expect(errorFrame("bad_frame", "Nope")).toEqual({ op: "error", code: "bad_frame", message: "Nope" });
    expect(errorFrame("server_busy", "Busy", 1500)).toEqual({
      op: "error",
      code: "server_busy",
      message: "Busy",
      retry_after: 1500,
    });
  });

  test("ERROR_CODES lists the twelve codes of the spec", () => {
    expect<string[]>([...ERROR_CODES].sort()).toEqual(
      [
        "bad_frame",
        "frame_too_large",
        "hello_timeout",
        "keepalive_timeout",
        "unauthorized",
        "rate_limited",
        "server_busy",
        "not_ready",
        "unknown_op",
        "shutting_down",
        "taken_over",
        "slow_consumer",
      ].sort(),
    );
  });
});
