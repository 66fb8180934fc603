/**
 * Per-device order across the direct path and the outbox: a real Outbox on SQLite, and a
 * broker channel whose confirms the test settles by hand.
 */
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openWorkerDatabase } from "../store/db.ts";
import { Batcher } from "../store/batcher.ts";
import { Outbox, type UpMessage } from "../store/outbox.ts";
import { Metrics } from "../metrics/metrics.ts";
import { createLogger, memoryLogger, type Logger } from "../log/logger.ts";
import { outboxBytesOf, Publisher } from "./publisher.ts";
import { DiskLimits } from "../store/disk-limits.ts";
import { StoreLimitError } from "../protocol/gateway-messages.ts";
import type { BrokerLink } from "./link.ts";

interface Sent {
  id: string;
  confirm(): void;
  reject(): void;
}

/** A link that is up, with a channel recording every publish and leaving it unconfirmed. */
function fakeLink() {
  const sent: Sent[] = [];
  const down: (() => void)[] = [];
  const link = {
    up: true,
    blocked: null as string | null,
    pub: {
      basicPublish(_ex: string, _key: string, _body: Uint8Array, props: { messageId: string }) {
        return new Promise<number>((resolve, reject) => sent.push({ id: props.messageId, confirm: () => resolve(1), reject: () => reject(new Error("channel closed")) }));
      },
    },
    corkTick() {},
    failures: [] as unknown[],
    publishFailed(err: unknown) {
      link.failures.push(err);
    },
    onUp() {},
    onUnblocked() {},
    onDown(fn: () => void) {
      down.push(fn);
    },
    goDown() {
      link.up = false;
      for (const fn of down) fn();
    },
  };
  return { link, sent };
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function setup(window = 100, confirmTimeoutMs = 60_000, drainRatePerS = 0, o: { metrics?: Metrics; log?: Logger; drainProgressEveryMs?: number; limits?: DiskLimits } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "owsla-pub-"));
  const db = openWorkerDatabase(dir, 0);
  const batcher = new Batcher(db, { delayMs: 1 });
  const outbox = new Outbox(db, batcher, 0);
  const { link, sent } = fakeLink();
  const publisher = new Publisher(
    link as unknown as BrokerLink,
    outbox,
    { exchange: "owsla.up", window, confirmTimeoutMs, drainRatePerS, drainProgressEveryMs: o.drainProgressEveryMs, limits: o.limits },
    o.metrics ?? new Metrics(),
    o.log ?? createLogger({ level: "error" }),
  );
  cleanups.push(() => {
    publisher.stop();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const outboxIds = () => outbox.peek(1000).map((r) => r.messageId);
  return { publisher, link, sent, outboxIds };
}

function msg(device: string, n: number): UpMessage {
  return { deviceId: device, messageId: `${device}#${n}`, routingKey: "r", props: { timestamp: 0, replyTo: "", correlationId: "", headers: {} }, body: new Uint8Array([n]) };
}

test("window full: a device's unconfirmed publishes go to the outbox ahead of its next message", async () => {
  const { publisher, sent, outboxIds } = setup(3);
  const done = [1, 2, 3].map((n) => publisher.publish(msg("a", n)));
  expect(sent.map((s) => s.id)).toEqual(["a#1", "a#2", "a#3"]);
  const fourth = publisher.publish(msg("a", 4)); // the window is full
  await Promise.all([...done, fourth]);
  expect(outboxIds()).toEqual(["a#1", "a#2", "a#3", "a#4"]);
  // A confirm arriving afterwards changes nothing (the row stays; the back-end may see a duplicate).
  sent[0]!.confirm();
  await Bun.sleep(5);
  expect(outboxIds()).toEqual(["a#1", "a#2", "a#3", "a#4"]);
});

test("window full: other devices' unconfirmed publishes stay on the direct path", async () => {
  const { publisher, sent, outboxIds } = setup(2);
  const b1 = publisher.publish(msg("b", 1));
  publisher.publish(msg("c", 1));
  await publisher.publish(msg("b", 2));
  await b1;
  expect(outboxIds()).toEqual(["b#1", "b#2"]);
  sent[1]!.confirm(); // c#1 is still in flight and is confirmed directly
  await Bun.sleep(5);
  expect(outboxIds()).toEqual(["b#1", "b#2"]);
});

test("a rejected publish takes the device's later unconfirmed ones to the outbox, in order", async () => {
  const { publisher, sent, outboxIds, link } = setup();
  const all = [1, 2, 3].map((n) => publisher.publish(msg("d", n)));
  sent[0]!.reject();
  await Promise.all(all);
  expect(outboxIds()).toEqual(["d#1", "d#2", "d#3"]);
  // The link hears about it (a broker nack makes it re-connect: see link-parts.test.ts).
  expect(link.failures.length).toBe(1);
  // d#2 confirmed late: already in the outbox, nothing changes.
  sent[1]!.confirm();
  await Bun.sleep(5);
  expect(outboxIds()).toEqual(["d#1", "d#2", "d#3"]);
});

test("a confirm timeout moves the device's unconfirmed publishes in order", async () => {
  const { publisher, outboxIds } = setup(100, 20);
  await Promise.all([1, 2, 3].map((n) => publisher.publish(msg("e", n))));
  expect(outboxIds()).toEqual(["e#1", "e#2", "e#3"]);
});

test("link down: unconfirmed publishes reach the outbox before the messages that follow", async () => {
  const { publisher, link, outboxIds } = setup();
  const early = [1, 2].map((n) => publisher.publish(msg("f", n)));
  publisher.publish(msg("g", 1));
  link.goDown();
  await Promise.all([...early, publisher.publish(msg("f", 3))]);
  const ids = outboxIds();
  expect(ids.filter((i) => i.startsWith("f"))).toEqual(["f#1", "f#2", "f#3"]);
  expect(ids).toContain("g#1");
});

/** Puts `n` messages of device `dev` in the outbox while the link is down, then brings it up. */
async function backlog(p: ReturnType<typeof setup>, dev: string, n: number): Promise<void> {
  p.link.up = false;
  await Promise.all(Array.from({ length: n }, (_, i) => p.publisher.publish(msg(dev, i))));
  p.link.up = true;
}

test("a paced drain sends the backlog in batches of a tenth of drain_rate, waiting between them", async () => {
  const p = setup(100, 60_000, 100);
  await backlog(p, "h", 50);
  expect(p.outboxIds().length).toBe(50);
  void p.publisher.drain();
  await Bun.sleep(1);
  expect(p.sent.length).toBe(10); // one batch of rate / 10
  for (const s of p.sent) s.confirm();
  await Bun.sleep(5);
  // The batch is confirmed and removed, but the next one waits for its share of the second.
  expect(p.outboxIds().length).toBe(40);
  expect(p.sent.length).toBe(10);
  for (let i = 0; i < 200 && p.sent.length < 20; i++) await Bun.sleep(5);
  expect(p.sent.map((s) => s.id).slice(10, 20)).toEqual(Array.from({ length: 10 }, (_, i) => `h#${i + 10}`));
});

test("a drain reports its progress in the log (start, progress with sent/left, end) and in owsla_outbox_drained_total", async () => {
  const log = memoryLogger("info");
  const metrics = new Metrics();
  // 200/s: batches of 20; a progress line after every batch.
  const p = setup(100, 60_000, 200, { log, metrics, drainProgressEveryMs: 0 });
  await backlog(p, "q", 60);
  const drained = p.publisher.drain();
  for (let confirmed = 0; confirmed < 60; confirmed = p.sent.length) {
    await Bun.sleep(1);
    for (const s of p.sent.slice(confirmed)) s.confirm();
  }
  await drained;
  const lines = log.lines.filter((l) => String(l.msg).includes("utbox"));
  expect(lines[0]).toMatchObject({ msg: "Draining the outbox to the broker", messages: 60, rate_per_s: 200 });
  const progress = lines.filter((l) => l.msg === "Outbox drain progress");
  expect(progress.map((l) => [l.sent, l.left])).toEqual([[20, 40], [40, 20], [60, 0]]);
  for (const l of progress) expect(l.rate_per_s).toBeGreaterThan(0);
  expect(lines.at(-1)).toMatchObject({ msg: "Outbox drained", messages: 60 });
  expect(metrics.get("owsla_outbox_drained_total")).toBe(60);
  expect(p.outboxIds()).toEqual([]);
});

test("an unpaced drain sends the whole backlog at once", async () => {
  const p = setup(100, 60_000, 0);
  await backlog(p, "k", 50);
  void p.publisher.drain();
  await Bun.sleep(1);
  expect(p.sent.length).toBe(50);
});

test("outbox limit: a message that would take the outbox past outbox_max_bytes is refused, not stored; accepted again once the outbox drained", async () => {
  const log = memoryLogger("info");
  const metrics = new Metrics();
  const size = outboxBytesOf(msg("z", 0));
  const limits = new DiskLimits({ outboxMaxBytes: 3 * size, inboxMaxBytes: 0, inboxMaxAgeMs: 0, minFreeBytes: 0 }, "/data", log, () => 1e12);
  const p = setup(100, 60_000, 0, { log, metrics, limits });
  await backlog(p, "z", 3);
  p.link.up = false;
  for (const n of [3, 4]) {
    const err = await p.publisher.publish(msg("z", n)).then(() => null, (e: Error) => e);
    expect(err).toBeInstanceOf(StoreLimitError);
    expect((err as StoreLimitError).limit).toBe("outbox_max_bytes");
  }
  expect(p.outboxIds()).toEqual(["z#0", "z#1", "z#2"]);
  expect(p.publisher.heldBytes).toBe(3 * size);
  expect(metrics.get("owsla_pubs_refused_total", { reason: "outbox_max_bytes" })).toBe(2);
  expect(log.lines.filter((l) => l.limit === "outbox_max_bytes").map((l) => l.level)).toEqual(["warn"]);
  // The broker takes the backlog: the limit clears and new messages are accepted again.
  p.link.up = true;
  const drained = p.publisher.drain();
  for (let i = 0; i < 100 && p.sent.length < 3; i++) await Bun.sleep(1);
  for (const s of p.sent) s.confirm();
  await drained;
  expect(p.outboxIds()).toEqual([]);
  expect(p.publisher.heldBytes).toBe(0);
  expect(log.lines.filter((l) => l.limit === "outbox_max_bytes").map((l) => l.level)).toEqual(["warn", "info"]);
  p.link.up = false;
  await p.publisher.publish(msg("z", 3));
  expect(p.outboxIds()).toEqual(["z#3"]);
});

test("free-space floor: a message that needs the outbox is refused while free space is under min_free_bytes", async () => {
  const metrics = new Metrics();
  const limits = new DiskLimits({ outboxMaxBytes: 0, inboxMaxBytes: 0, inboxMaxAgeMs: 0, minFreeBytes: 1000 }, "/data", memoryLogger("info"), () => 999);
  const p = setup(100, 60_000, 0, { metrics, limits });
  p.link.up = false;
  const err = await p.publisher.publish(msg("y", 1)).then(() => null, (e: Error) => e);
  expect((err as StoreLimitError).limit).toBe("min_free_bytes");
  expect(err!.message).toContain("send it again later");
  expect(p.outboxIds()).toEqual([]);
  expect(metrics.get("owsla_pubs_refused_total", { reason: "min_free_bytes" })).toBe(1);
});
