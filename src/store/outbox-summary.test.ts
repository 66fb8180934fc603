import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openWorkerDatabase } from "./db.ts";
import { summarizeOutbox } from "./outbox-summary.ts";

test("the outbox summary counts rows, body bytes and the oldest row, in total and per device, most rows first", () => {
  const dir = mkdtempSync(join(tmpdir(), "owsla-obsum-"));
  try {
    // Two workers' files: the summary adds them up.
    const dbs = [openWorkerDatabase(dir, 0), openWorkerDatabase(dir, 1)];
    const add = (worker: number, dev: string, body: string, created: number) =>
      dbs[worker]!.query("INSERT INTO outbox (owner, device_id, message_id, routing_key, props, body, created) VALUES (?, ?, 'm', 'k', '{}', ?, ?)").run(worker, dev, Buffer.from(body), created);
    expect(summarizeOutbox(dbs, 10, 10_000)).toEqual({ rows: 0, bytes: 0, oldest: null, oldest_age_s: null, devices_total: 0, devices: [] });
    add(0, "a", "xx", 5000);
    add(1, "b", "yyy", 3000);
    add(0, "b", "zzzz", 4000);
    const s = summarizeOutbox(dbs, 1, 10_000);
    expect(s).toEqual({
      rows: 3,
      bytes: 9,
      oldest: new Date(3000).toISOString(),
      oldest_age_s: 7,
      devices_total: 2,
      devices: [{ device_id: "b", rows: 2, bytes: 7, oldest: new Date(3000).toISOString() }],
    });
    for (const db of dbs) db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
