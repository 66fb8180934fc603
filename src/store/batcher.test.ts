import { expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { Batcher, FAIL_FAST_MS } from "./batcher.ts";

function db(): Database {
  const d = new Database(":memory:");
  d.exec("CREATE TABLE t (v INTEGER NOT NULL)");
  return d;
}

test("many queued writes commit in one transaction and all resolve", async () => {
  const d = db();
  let commits = 0;
  const b = new Batcher(d, { delayMs: 1, maxOps: 1000, onCommit: () => commits++ });
  const ins = d.query("INSERT INTO t VALUES (?)");
  await Promise.all(Array.from({ length: 300 }, (_, i) => b.run(() => ins.run(i))));
  expect(commits).toBe(1);
  expect((d.query("SELECT COUNT(*) AS n FROM t").get() as { n: number }).n).toBe(300);
});

test("a failing transaction rejects every write in it and stores none of them", async () => {
  const d = db();
  const b = new Batcher(d, { delayMs: 1 });
  const ins = d.query("INSERT INTO t VALUES (?)");
  const results = await Promise.allSettled([b.run(() => ins.run(1)), b.run(() => ins.run(null as unknown as number)), b.run(() => ins.run(3))]);
  expect(results.map((r) => r.status)).toEqual(["rejected", "rejected", "rejected"]);
  expect((d.query("SELECT COUNT(*) AS n FROM t").get() as { n: number }).n).toBe(0);
  expect(b.lastError).not.toBeNull();
  // Right after a failure, writes fail fast (no database work) ...
  expect(b.run(() => ins.run(4))).rejects.toThrow();
  // ... and once the pause is over they are tried again, and success clears the error.
  await Bun.sleep(FAIL_FAST_MS + 20);
  await b.run(() => ins.run(5));
  expect(b.lastError).toBeNull();
  expect((d.query("SELECT v FROM t").all() as { v: number }[]).map((r) => r.v)).toEqual([5]);
});

test("reaching maxOps flushes at once without waiting for the delay", async () => {
  const d = db();
  const b = new Batcher(d, { delayMs: 60_000, maxOps: 10 });
  const ins = d.query("INSERT INTO t VALUES (?)");
  await Promise.all(Array.from({ length: 10 }, (_, i) => b.run(() => ins.run(i))));
  expect(b.pending).toBe(0);
});
