import { describe, expect, test } from "bun:test";
import { MAX_PACKED_REF, packRef, unpackRef } from "./correlation.ts";

describe("response addresses in the correlation id", () => {
  test("a response topic and binary correlation data survive the round trip", () => {
    const data = new Uint8Array([0, 1, 2, 255, 254, 10, 13]);
    const ref = packRef({ topic: "reply/7", data })!;
    expect(ref).toMatch(/^[A-Za-z0-9_~-]+$/); // safe in an AMQP short string and a log line
    const back = unpackRef(ref)!;
    expect(back.topic).toBe("reply/7");
    expect([...back.data!]).toEqual([...data]);
  });

  test("without correlation data", () => {
    expect(unpackRef(packRef({ topic: "reply/a/b", data: null })!)).toEqual({ topic: "reply/a/b", data: null });
  });

  test("too long to fit in a correlation id: null", () => {
    expect(packRef({ topic: `reply/${"x".repeat(200)}`, data: null })).toBeNull();
    const fits = packRef({ topic: "reply/1", data: new Uint8Array(100) });
    expect(fits!.length).toBeLessThanOrEqual(MAX_PACKED_REF);
  });

  test("other refs (line-protocol refs, garbage) are not response addresses", () => {
    for (const corr of [null, "", "r1", "m5~", "m5~~", "m5~!!~", "m5~abc", "m5~YQ~x~y"]) expect([corr, unpackRef(corr)]).toEqual([corr, null]);
  });
});
