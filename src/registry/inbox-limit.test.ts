import { expect, test } from "bun:test";
import { memoryLogger } from "../log/logger.ts";
import { Metrics } from "../metrics/metrics.ts";
import { MemoryCommandStore } from "../store/memory.ts";
import { DiskLimits, type DiskLimitSettings, type LimitReason } from "../store/disk-limits.ts";
import type { StoredCommand } from "../store/interfaces.ts";
import type { Command } from "../protocol/gateway-messages.ts";
import { InboxLimiter, type DropReason } from "./inbox-limit.ts";

/** A command whose body is `size` bytes. */
const cmd = (id: string, size = 10, deviceId = "d1"): Command => ({ id, deviceId, topic: "cmd", body: `"${"x".repeat(size - 2)}"`, corr: null, expiresAt: Date.now() + 60_000 });

function setup(o: Partial<DiskLimitSettings> = {}, free = 1e12, now?: () => number) {
  const store = new MemoryCommandStore();
  const log = memoryLogger("info");
  const metrics = new Metrics();
  const dead: { id: string; reason: DropReason }[] = [];
  const broker = { up: true };
  const limits = new DiskLimits({ outboxMaxBytes: 0, inboxMaxBytes: 0, inboxMaxAgeMs: 0, minFreeBytes: 0, ...o }, "/data", log, () => free);
  const limiter = new InboxLimiter({
    store,
    limits,
    metrics,
    log,
    now,
    deadLetter: async (c: StoredCommand, reason) => {
      if (!broker.up) throw new Error("broker link down");
      dead.push({ id: c.id, reason });
    },
  });
  /** Stores commands one after the other (each stored a little later than the last). */
  const storeAll = async (cs: Command[]) => {
    const out: (LimitReason | null)[] = [];
    for (const c of cs) {
      out.push(await limiter.store(c));
      await Bun.sleep(2);
    }
    return out;
  };
  return { store, log, metrics, dead, broker, limiter, storeAll };
}

test("over inbox_max_bytes the oldest stored commands are dead-lettered to make room for the new one", async () => {
  const s = setup({ inboxMaxBytes: 30 });
  expect(await s.storeAll([cmd("a"), cmd("b"), cmd("c")])).toEqual([null, null, null]);
  expect(s.dead).toEqual([]);
  expect(await s.storeAll([cmd("d"), cmd("e", 20)])).toEqual([null, null]);
  expect(s.dead).toEqual([
    { id: "a", reason: "inbox_max_bytes" },
    { id: "b", reason: "inbox_max_bytes" },
    { id: "c", reason: "inbox_max_bytes" },
  ]);
  expect(s.store.oldest(10).map((c) => c.id)).toEqual(["d", "e"]);
  expect(s.store.bytes()).toBe(30);
  expect(s.metrics.get("owsla_commands_dropped_total", { reason: "inbox_max_bytes" })).toBe(3);
  const warn = s.log.lines.filter((l) => l.limit === "inbox_max_bytes");
  expect(warn).toHaveLength(1);
  expect(warn[0]).toMatchObject({ level: "warn", inbox_max_bytes: 30 });
  expect(s.log.lines.some((l) => String(l.msg).startsWith("Dead-lettered stored commands"))).toBe(true);
});

test("a command larger than the whole limit is refused and nothing stored is dropped for it", async () => {
  const s = setup({ inboxMaxBytes: 30 });
  await s.storeAll([cmd("a")]);
  expect(await s.limiter.store(cmd("huge", 31))).toBe("inbox_max_bytes");
  expect(s.store.oldest(10).map((c) => c.id)).toEqual(["a"]);
  expect(s.dead).toEqual([]);
  expect(s.metrics.get("owsla_commands_dropped_total", { reason: "inbox_max_bytes" })).toBe(1);
});

test("while the broker cannot take the dead-letter copies nothing stored is dropped and the new command is refused", async () => {
  const s = setup({ inboxMaxBytes: 20 });
  await s.storeAll([cmd("a"), cmd("b")]);
  s.broker.up = false;
  expect(await s.limiter.store(cmd("c"))).toBe("inbox_max_bytes");
  expect(s.store.oldest(10).map((c) => c.id)).toEqual(["a", "b"]);
  expect(s.log.lines.some((l) => String(l.msg).startsWith("Cannot dead-letter stored commands"))).toBe(true);
  s.broker.up = true;
  expect(await s.limiter.store(cmd("c"))).toBeNull();
  expect(s.store.oldest(10).map((c) => c.id)).toEqual(["b", "c"]);
});

test("under the free-space floor a new command is refused; stored ones are kept", async () => {
  const s = setup({ inboxMaxBytes: 1000, minFreeBytes: 1000 }, 10);
  expect(await s.limiter.store(cmd("a"))).toBe("min_free_bytes");
  expect(s.store.count()).toBe(0);
  expect(s.metrics.get("owsla_commands_dropped_total", { reason: "min_free_bytes" })).toBe(1);
});

test("many commands at once never take the inbox over its limit, and no command is dead-lettered twice", async () => {
  const s = setup({ inboxMaxBytes: 50 });
  await s.storeAll([cmd("old1"), cmd("old2")]);
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => s.limiter.store(cmd(`n${i}`))));
  expect(results.every((r) => r === null)).toBe(true);
  expect(s.store.bytes()).toBeLessThanOrEqual(50);
  const ids = s.dead.map((d) => d.id);
  expect(new Set(ids).size).toBe(ids.length);
  expect(ids.slice(0, 2)).toEqual(["old1", "old2"]);
  expect(s.store.count() + ids.length).toBe(22);
});

test("the sweep dead-letters commands stored longer than inbox_max_age_s and trims an inbox over a lowered limit", async () => {
  let at: number | null = null;
  const s = setup({ inboxMaxAgeMs: 60_000 }, 1e12, () => at ?? Date.now());
  // Commands that expire only in an hour: here the age limit, not their expiry, takes them.
  const hour = (id: string): Command => ({ ...cmd(id), expiresAt: Date.now() + 3_600_000 });
  await s.storeAll([hour("a"), hour("b")]);
  await s.limiter.sweep();
  expect(s.dead).toEqual([]);
  const t0 = Date.now();
  await s.limiter.store(hour("fresh"));
  at = t0 + 60_000; // a minute after "fresh" was stored, a little more for the others
  await s.limiter.sweep();
  expect(s.dead.map((d) => [d.id, d.reason])).toEqual([["a", "inbox_max_age"], ["b", "inbox_max_age"]]);
  expect(s.store.oldest(10).map((c) => c.id)).toEqual(["fresh"]);
  expect(s.metrics.get("owsla_commands_dropped_total", { reason: "inbox_max_age" })).toBe(2);

  const t = setup({ inboxMaxBytes: 20 });
  await t.storeAll([cmd("a"), cmd("b")]);
  // A restart with a lower limit: the sweep trims to it, oldest first.
  (t.limiter as unknown as { o: { limits: DiskLimits } }).o.limits.settings.inboxMaxBytes = 10;
  await t.limiter.sweep();
  expect(t.dead.map((d) => d.id)).toEqual(["a"]);
  expect(t.store.bytes()).toBe(10);
});

test("expired stored commands are dead-lettered by the sweep (reason expired), never while the broker is away", async () => {
  const s = setup();
  const soon = (id: string): Command => ({ ...cmd(id), expiresAt: Date.now() + 1 });
  expect(await s.storeAll([soon("x1"), cmd("live"), soon("x2")])).toEqual([null, null, null]);
  await Bun.sleep(5);
  s.broker.up = false;
  await s.limiter.sweep();
  expect(s.dead).toEqual([]);
  expect(s.store.oldest(10).map((c) => c.id)).toEqual(["x1", "live", "x2"]); // kept for the copy (never delivered: expired)
  s.broker.up = true;
  await s.limiter.sweep();
  expect(s.dead).toEqual([
    { id: "x1", reason: "expired" },
    { id: "x2", reason: "expired" },
  ]);
  expect(s.store.oldest(10).map((c) => c.id)).toEqual(["live"]);
  expect(s.metrics.get("owsla_commands_expired_total")).toBe(2);
  expect(s.metrics.get("owsla_commands_dropped_total", { reason: "expired" })).toBe(0);
});
