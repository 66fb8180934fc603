import { expect, test } from "bun:test";
import { memoryLogger } from "../log/logger.ts";
import { DiskLimits, freeBytesOf, workerLimits, type DiskLimitSettings } from "./disk-limits.ts";

const settings = (o: Partial<DiskLimitSettings> = {}): DiskLimitSettings => ({ outboxMaxBytes: 0, inboxMaxBytes: 0, inboxMaxAgeMs: 0, minFreeBytes: 0, ...o });

test("the gateway's byte limits are split over the workers; age and the free-space floor are not; 0 stays no limit", () => {
  const store = { outbox_max_bytes: 1000, inbox_max_bytes: 300, inbox_max_age_s: 60, min_free_bytes: 500 };
  expect(workerLimits(store, 4)).toEqual({ outboxMaxBytes: 250, inboxMaxBytes: 75, inboxMaxAgeMs: 60_000, minFreeBytes: 500 });
  expect(workerLimits({ ...store, outbox_max_bytes: 0, inbox_max_bytes: 0 }, 4)).toMatchObject({ outboxMaxBytes: 0, inboxMaxBytes: 0 });
  expect(workerLimits({ ...store, outbox_max_bytes: 3 }, 8).outboxMaxBytes).toBe(1); // never rounds down to "no limit"
});

test("free space is read from the real filesystem", () => {
  expect(freeBytesOf("/tmp")).toBeGreaterThan(0);
});

test("outbox: refused past its byte limit or under the free-space floor; one warning per state change, cleared under the watermark", () => {
  const log = memoryLogger("info");
  let free = 10_000;
  let now = 0;
  const reads: number[] = [];
  const l = new DiskLimits(settings({ outboxMaxBytes: 100, minFreeBytes: 1000 }), "/data", log, () => (reads.push(now), free), () => now);
  expect(l.outboxRefusal(0, 100)).toBeNull();
  expect(l.outboxRefusal(50, 51)).toBe("outbox_max_bytes");
  expect(l.outboxRefusal(60, 51)).toBe("outbox_max_bytes");
  expect(l.reached("outbox_max_bytes")).toBe(true);
  // Back under the limit but above the 90% watermark: still reached, and a message that would
  // fit is refused too (it would overtake the refused one), with no log flapping.
  expect(l.outboxRefusal(95, 1)).toBe("outbox_max_bytes");
  expect(l.reached("outbox_max_bytes")).toBe(true);
  expect(l.outboxRefusal(10, 1)).toBeNull();
  expect(l.reached("outbox_max_bytes")).toBe(false);
  const lines = log.lines.filter((x) => x.limit === "outbox_max_bytes");
  expect(lines.map((x) => x.level)).toEqual(["warn", "info"]);
  expect(lines[0]).toMatchObject({ outbox_bytes: 50, outbox_max_bytes: 100 });
  expect(String(lines[0]!.msg)).toContain("raise store.outbox_max_bytes");
  // Free space is read at most once a second, however many messages ask.
  expect(reads).toEqual([0]);
  free = 500;
  expect(l.outboxRefusal(0, 1)).toBeNull(); // the cached reading
  now = 1000;
  expect(l.outboxRefusal(0, 1)).toBe("min_free_bytes");
  expect(reads).toEqual([0, 1000]);
  const floor = log.lines.filter((x) => x.limit === "min_free_bytes");
  expect(floor).toHaveLength(1);
  expect(floor[0]).toMatchObject({ level: "warn", free_bytes: 500, min_free_bytes: 1000 });
  expect(String(floor[0]!.msg)).toContain("free space");
});

test("an unreadable free space lifts the floor (logged once) instead of stopping the store", () => {
  const log = memoryLogger("info");
  let now = 0;
  const l = new DiskLimits(settings({ minFreeBytes: 1000 }), "/gone", log, () => { throw new Error("ENOENT"); }, () => now);
  expect(l.underFloor()).toBe(false);
  now = 5000;
  expect(l.underFloor()).toBe(false);
  expect(log.lines.filter((x) => String(x.msg).startsWith("Cannot read free space"))).toHaveLength(1);
});

test("inbox: how many bytes must go before a command fits; Infinity when it never can; 0 without a limit", () => {
  const log = memoryLogger("info");
  const l = new DiskLimits(settings({ inboxMaxBytes: 100 }), "/data", log, () => 1e12);
  expect(l.inboxExcess(90, 10)).toBe(0);
  expect(l.inboxExcess(90, 30)).toBe(20);
  expect(l.inboxExcess(0, 101)).toBe(Number.POSITIVE_INFINITY);
  expect(new DiskLimits(settings(), "/data", log, () => 1e12).inboxExcess(1e15, 1e9)).toBe(0);
});
