import { expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { Batcher } from "./batcher.ts";

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
  await b.run(() => ins.run(4));
  expect(b.lastError).toBeNull();
});

test("reaching maxOps flushes at once without waiting for the delay", async () => {
  const d = db();
  const b = new Batcher(d, { delayMs: 60_000, maxOps: 10 });
  const ins = d.query("INSERT INTO t VALUES (?)");
  await Promise.all(Array.from({ length: 10 }, (_, i) => b.run(() => ins.run(i))));
  expect(b.pending).toBe(0);
});
