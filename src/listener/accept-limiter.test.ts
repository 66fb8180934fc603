import { expect, test } from "bun:test";
import { AcceptLimiter } from "./accept-limiter.ts";

test("per-address limit refuses a burst from one address but not from another", () => {
  let now = 0;
  const l = new AcceptLimiter(5, 0, () => now);
  const results = Array.from({ length: 8 }, () => l.admit("10.0.0.1"));
  expect(results.filter((r) => r === null).length).toBe(5);
  expect(results.slice(5)).toEqual(["per_ip", "per_ip", "per_ip"]);
  expect(l.admit("10.0.0.2")).toBeNull();
  now = 1000; // one second later the bucket is full again
  expect(l.admit("10.0.0.1")).toBeNull();
});

test("total limit applies across addresses", () => {
  const now = 0;
  const l = new AcceptLimiter(0, 3, () => now);
  const r = ["a", "b", "c", "d"].map((ip) => l.admit(ip));
  expect(r).toEqual([null, null, null, "total"]);
});

test("rate 0 means unlimited", () => {
  const l = new AcceptLimiter(0, 0, () => 0);
  for (let i = 0; i < 10_000; i++) expect(l.admit("x")).toBeNull();
});
