import { expect, test } from "bun:test";
import { FloodGuard } from "./flood-guard.ts";
import { ipv4Number } from "./syn-filter.ts";

function guard(threshold = 5, blockMs = 10_000) {
  let now = 0;
  const installed: number[][] = [];
  const g = new FloodGuard(threshold, blockMs, (s) => void installed.push([...s]), () => now);
  return { g, installed, at: (t: number) => (now = t) };
}

test("an address refused `threshold` times within a second is dropped, once", () => {
  const { g, installed } = guard(5);
  const r = Array.from({ length: 8 }, () => g.refused("10.0.0.1"));
  expect(r).toEqual([false, false, false, false, true, false, false, false]);
  expect(installed).toEqual([[ipv4Number("10.0.0.1")!]]);
  expect(g.droppedCount).toBe(1);
  expect(g.blocks).toBe(1);
});

test("refusals spread over more than a second do not add up", () => {
  const { g, installed, at } = guard(5);
  for (let i = 0; i < 20; i++) {
    at(i * 300); // 3-4 refusals per second, under the threshold
    expect(g.refused("10.0.0.1")).toBe(false);
  }
  expect(installed).toEqual([]);
});

test("the drop ends after blockMs, and a new flood is dropped again", () => {
  const { g, installed, at } = guard(3, 10_000);
  for (let i = 0; i < 3; i++) g.refused("10.0.0.1");
  for (let i = 0; i < 3; i++) g.refused("10.0.0.2");
  expect(installed.at(-1)).toEqual([ipv4Number("10.0.0.1")!, ipv4Number("10.0.0.2")!]);
  at(9_999);
  expect(g.expire()).toEqual([]);
  at(10_000);
  expect(g.expire()).toEqual(["10.0.0.1", "10.0.0.2"]);
  expect(installed.at(-1)).toEqual([]);
  expect(g.droppedCount).toBe(0);
  for (let i = 0; i < 3; i++) g.refused("10.0.0.1");
  expect(installed.at(-1)).toEqual([ipv4Number("10.0.0.1")!]);
  expect(g.blocks).toBe(3);
});

test("IPv4-mapped addresses are dropped; IPv6 and missing addresses are not", () => {
  const { g, installed } = guard(1);
  expect(g.refused("::ffff:192.168.1.7")).toBe(true);
  expect(g.refused("fe80::1")).toBe(false);
  expect(g.refused(undefined as unknown as string)).toBe(false);
  expect(installed).toEqual([[ipv4Number("192.168.1.7")!]]);
});

test("a failed install is reported and leaves the address undropped", () => {
  const g = new FloodGuard(1, 1000, () => {
    throw new Error("setsockopt failed");
  }, () => 0);
  expect(() => g.refused("10.0.0.9")).toThrow("setsockopt failed");
  expect(g.droppedCount).toBe(0);
});

test("threshold 0 never drops", () => {
  const { g, installed } = guard(0);
  for (let i = 0; i < 1000; i++) expect(g.refused("10.0.0.1")).toBe(false);
  expect(installed).toEqual([]);
});

test("ipv4Number reads dotted quads and rejects the rest", () => {
  expect(ipv4Number("127.55.0.1")).toBe(0x7f370001);
  expect(ipv4Number("::ffff:10.1.2.3")).toBe(0x0a010203);
  for (const bad of ["256.0.0.1", "1.2.3", "1.2.3.4.5", "a.b.c.d", "::1", "", "1.2.3.-4"]) expect(ipv4Number(bad)).toBeNull();
});
