import { describe, expect, test } from "bun:test";
import { rawJsonField } from "./raw-field.ts";

describe("rawJsonField", () => {
  test("returns a member's text exactly as written", () => {
    const body = '{"x": 1e999999, "big":12345678901234567890123, "s":"a\\"}b", "a":[1,{"b":"]"}]}';
    expect(rawJsonField(`{"op":"pub","topic":"t","body":${body},"ref":"r"}`, "body")).toBe(body);
    expect(rawJsonField('{ "body" : 12345678901234567890123 , "op":"pub"}', "body")).toBe("12345678901234567890123");
    expect(rawJsonField('{"body":"x\\\\"}', "body")).toBe('"x\\\\"');
    expect(rawJsonField('{"body":null}', "body")).toBe("null");
  });

  test("takes the last of repeated members and decodes escaped keys, like JSON.parse", () => {
    expect(rawJsonField('{"body":1,"body":[2]}', "body")).toBe("[2]");
    expect(rawJsonField('{"b\\u006fdy":{"k":1}}', "body")).toBe('{"k":1}');
  });

  test("is undefined for a missing member or a non-object", () => {
    expect(rawJsonField('{"op":"pub"}', "body")).toBeUndefined();
    expect(rawJsonField("[1,2]", "body")).toBeUndefined();
  });

  test("handles nesting far deeper than a recursive encoder could", () => {
    const deep = "[".repeat(200_000) + "]".repeat(200_000);
    expect(rawJsonField(`{"body":${deep},"ref":"r"}`, "body")).toBe(deep);
  });

  test("agrees with JSON.parse on the value for random objects", () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const value = (d: number): unknown => {
      const r = rnd();
      if (d > 3 || r < 0.3) return [1.5, -2, "s\"\\\n", true, null][Math.floor(rnd() * 5)];
      if (r < 0.6) return Array.from({ length: Math.floor(rnd() * 4) }, () => value(d + 1));
      return Object.fromEntries(Array.from({ length: Math.floor(rnd() * 4) }, (_, i) => [`k${i}`, value(d + 1)]));
    };
    for (let i = 0; i < 300; i++) {
      const v = { op: "pub", body: value(0), ref: "x" };
      const text = JSON.stringify(v, null, i % 2 ? 1 : undefined);
      expect(JSON.parse(rawJsonField(text, "body")!)).toEqual(v.body);
    }
  });
});
