import { expect, test } from "bun:test";
import { BanList } from "./bans.ts";

test("a key is banned after the configured failures within the window, then released", () => {
  let now = 0;
  const b = new BanList({ failures: 3, windowMs: 1000, durationMs: 5000 }, () => now);
  expect(b.fail("ip:1")).toBe(false);
  expect(b.fail("ip:1")).toBe(false);
  expect(b.fail("ip:1")).toBe(true);
  expect(b.remaining("ip:1")).toBe(5000);
  expect(b.remaining("ip:2")).toBe(0);
  expect(b.bansTotal).toBe(1);
  now = 5001;
  expect(b.remaining("ip:1")).toBe(0);
});

test("failures spread beyond the window do not ban", () => {
  let now = 0;
  const b = new BanList({ failures: 3, windowMs: 1000, durationMs: 5000 }, () => now);
  for (let i = 0; i < 10; i++) {
    expect(b.fail("hw:x")).toBe(false);
    now += 600;
  }
});

test("failures 0 never bans", () => {
  const b = new BanList({ failures: 0, windowMs: 1000, durationMs: 5000 }, () => 0);
  for (let i = 0; i < 100; i++) expect(b.fail("k")).toBe(false);
});
