/** One contract for each storage interface, run against every implementation. */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openWorkerDatabase } from "./db.ts";
import { Batcher } from "./batcher.ts";
import { Inbox } from "./inbox.ts";
import { Outbox } from "./outbox.ts";
import { MemoryCommandStore, MemoryOutbox } from "./memory.ts";
import type { CommandStore, OutboxStore, UpMessage } from "./interfaces.ts";
import type { Command } from "../protocol/gateway-messages.ts";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function sqlite<T>(make: (db: ReturnType<typeof openWorkerDatabase>, b: Batcher) => T): () => T {
  return () => {
    const dir = mkdtempSync(join(tmpdir(), "owsla-contract-"));
    dirs.push(dir);
    const db = openWorkerDatabase(dir, 0);
    return make(db, new Batcher(db, { delayMs: 1 }));
  };
}

const commandStores: [string, () => CommandStore][] = [
  ["sqlite", sqlite((db, b) => new Inbox(db, b))],
  ["memory", () => new MemoryCommandStore()],
];
const outboxes: [string, () => OutboxStore][] = [
  ["sqlite", sqlite((db, b) => new Outbox(db, b, 0))],
  ["memory", () => new MemoryOutbox()],
];

const cmd = (deviceId: string, id: string, ttlMs = 60_000, body = '{"n":1}'): Command => ({ id, deviceId, topic: "cmd", body, corr: null, expiresAt: Date.now() + ttlMs });

for (const [name, make] of commandStores) {
  describe(`CommandStore (${name})`, () => {
    test("keeps commands per device in the order they were added, once per id", async () => {
      const s = make();
      await s.add(cmd("d1", "a"));
      await Bun.sleep(2);
      await s.add(cmd("d1", "b"));
      await s.add(cmd("d1", "a")); // duplicate id: ignored
      await s.add(cmd("d2", "c"));
      expect(s.pendingFor(["d1"]).map((c) => c.id)).toEqual(["a", "b"]);
      expect(s.pendingFor(["d1", "d2"]).length).toBe(3);
      expect(s.count()).toBe(3);
      expect(s.count("d1")).toBe(2);
      expect(s.devices().sort()).toEqual(["d1", "d2"]);
    });

    test("counts the bytes of stored bodies through add, duplicate, remove, quarantine and expiry, and lists the oldest first", async () => {
      const s = make();
      expect(s.bytes()).toBe(0);
      expect(s.oldest(10)).toEqual([]);
      await s.add(cmd("d1", "a", 60_000, '"aaaa"'));
      await Bun.sleep(2);
      await s.add(cmd("d2", "b", 60_000, '"bb"'));
      await s.add(cmd("d1", "a", 60_000, '"ignored duplicate"'));
      await Bun.sleep(2);
      await s.add(cmd("d1", "c", 1, '"c"'));
      expect(s.bytes()).toBe(6 + 4 + 3);
      const old = s.oldest(2);
      expect(old.map((c) => c.id)).toEqual(["a", "b"]);
      expect(old[0]!.storedAt).toBeLessThanOrEqual(old[1]!.storedAt);
      expect(old[0]!.body).toBe('"aaaa"');
      expect(await s.remove("d1", "a")).toBe(true);
      expect(s.bytes()).toBe(4 + 3);
      await s.quarantine(old[1]!, "test");
      expect(s.bytes()).toBe(3);
      expect(s.expire(Date.now() + 10)).toBe(1);
      expect(s.bytes()).toBe(0);
    });

    test("lists the expired commands, oldest stored first, without the unexpired ones", async () => {
      const s = make();
      const now = Date.now();
      await s.add(cmd("d1", "live", 60_000, "1"));
      await Bun.sleep(2);
      await s.add(cmd("d1", "gone-1", 1, "2"));
      await Bun.sleep(2);
      await s.add(cmd("d2", "gone-2", 1, "3"));
      expect(s.expired(now - 60_000, 10)).toEqual([]);
      const later = Date.now() + 10;
      expect(s.expired(later, 10).map((c) => c.id)).toEqual(["gone-1", "gone-2"]);
      expect(s.expired(later, 1).map((c) => [c.deviceId, c.id, c.body])).toEqual([["d1", "gone-1", "2"]]);
    });

    test("keeps the body text exactly", async () => {
      const s = make();
      const body = '{"big":12345678901234567890123,"e":1e999999,"deep":[[[[]]]]}';
      await s.add(cmd("d1", "x", 60_000, body));
      expect(s.pendingFor(["d1"])[0]!.body).toBe(body);
    });

    test("remove says whether a row was deleted", async () => {
      const s = make();
      await s.add(cmd("d1", "a"));
      expect(await s.remove("d1", "a")).toBe(true);
      expect(await s.remove("d1", "a")).toBe(false);
      expect(s.count()).toBe(0);
      expect(s.devices()).toEqual([]);
    });

    test("a quarantined command is gone from the pending ones for good, and counted", async () => {
      const s = make();
      await s.add(cmd("d1", "bad"));
      await s.add(cmd("d1", "good"));
      await s.quarantine(cmd("d1", "bad"), "RangeError: boom");
      expect(s.pendingFor(["d1"]).map((c) => c.id)).toEqual(["good"]);
      expect(s.quarantined()).toBe(1);
      await s.add(cmd("d1", "bad")); // a redelivery of the same id is stored again, as a new command
      expect(s.count("d1")).toBe(2);
    });

    test("expired commands are not pending and expire() deletes them", async () => {
      const s = make();
      await s.add(cmd("d1", "old", -1));
      await s.add(cmd("d1", "new"));
      expect(s.pendingFor(["d1"]).map((c) => c.id)).toEqual(["new"]);
      expect(s.expire()).toBe(1);
      expect(s.count()).toBe(1);
    });
  });
}

const up = (deviceId: string, n: number): UpMessage => ({
  deviceId,
  messageId: `m-${n}`,
  routingKey: `gw.${deviceId}.t`,
  props: { timestamp: n, replyTo: "q", correlationId: `${deviceId}:${n}`, headers: { device_id: deviceId } },
  body: new TextEncoder().encode(`{"n":${n}}`),
});

for (const [name, make] of outboxes) {
  describe(`OutboxStore (${name})`, () => {
    test("returns rows in the order added, pages after a seq, and removes by seq", async () => {
      const o = make();
      for (let i = 0; i < 5; i++) await o.add(up(i % 2 ? "b" : "a", i));
      const rows = o.peek(3);
      expect(rows.map((r) => r.messageId)).toEqual(["m-0", "m-1", "m-2"]);
      expect(o.peek(10, rows[2]!.seq).map((r) => r.messageId)).toEqual(["m-3", "m-4"]);
      expect(Object.fromEntries(o.countsByDevice())).toEqual({ a: 3, b: 2 });
      await o.remove([rows[0]!.seq, rows[1]!.seq]);
      expect(o.count()).toBe(3);
      const first = o.peek(1)[0]!;
      expect(first.messageId).toBe("m-2");
      expect(first.props).toEqual(up("a", 2).props);
      expect(new TextDecoder().decode(first.body)).toBe('{"n":2}');
    });
  });
}
