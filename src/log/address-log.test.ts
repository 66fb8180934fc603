import { expect, test } from "bun:test";
import { AddressLog, refusalDetail } from "./address-log.ts";
import { memoryLogger } from "./logger.ts";

function setup(maxKeys = 100) {
  const log = memoryLogger("info");
  let t = 1_000_000;
  const a = new AddressLog(log, { windowMs: 60_000, maxKeys, now: () => t });
  return { log, a, advance: (ms: number) => (t += ms) };
}

test("one line per address and kind per window, at info; the next one says how many were left out", () => {
  const { log, a, advance } = setup();
  for (let i = 0; i < 10; i++) a.note("hello", "10.0.0.1", "Device refused", { why: "bad token" });
  a.note("frame", "10.0.0.1", "Bad frame", { code: "bad_frame" });
  a.note("hello", "10.0.0.2", "Device refused", { why: "bad token" });
  expect(log.lines.map((l) => [l.level, l.msg, l.remote, l.left_out])).toEqual([
    ["info", "Device refused", "10.0.0.1", undefined],
    ["info", "Bad frame", "10.0.0.1", undefined],
    ["info", "Device refused", "10.0.0.2", undefined],
  ]);
  advance(60_000);
  a.note("hello", "10.0.0.1", "Device refused", { why: "bad token" });
  expect(log.lines.at(-1)).toMatchObject({ msg: "Device refused", remote: "10.0.0.1", why: "bad token", left_out: 9 });
});

test("a spray of addresses beyond the table writes no more lines until old entries expire", () => {
  const { log, a, advance } = setup(3);
  for (let i = 0; i < 50; i++) a.note("hello", `10.0.1.${i}`, "Device refused");
  expect(log.lines.length).toBe(3);
  advance(60_000);
  a.note("hello", "10.0.2.1", "Device refused");
  expect(log.lines.length).toBe(4);
  expect(log.lines.at(-1)).toMatchObject({ remote: "10.0.2.1", left_out: 47 });
});

test("nothing is written or remembered when info is not logged", () => {
  const log = memoryLogger("warn");
  const a = new AddressLog(log);
  a.note("hello", "10.0.0.1", "Device refused");
  expect(log.lines.length).toBe(0);
});

test("refusal details leave out what the device sent and escape control characters", () => {
  expect(refusalDetail('Invalid hello frame: field "token" must be a string of 1 to 512 characters, got "abcdefgh"')).toBe('Invalid hello frame: field "token" must be a string of 1 to 512 characters');
  expect(refusalDetail("Cannot parse frame: Unexpected \u001b[2J")).toBe("Cannot parse frame: Unexpected \\u001b[2J");
  expect(refusalDetail("x".repeat(500)).length).toBe(200);
});
