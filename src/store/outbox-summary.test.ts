import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase } from "./db.ts";
import { summarizeOutbox } from "./outbox-summary.ts";

test("the outbox summary counts rows, body bytes and the oldest row, in total and per device, most rows first", () => {
  const dir = mkdtempSync(join(tmpdir(), "owsla-obsum-"));
  try {
    const db = openDatabase(dir);
    const add = (owner: number, dev: string, body: string, created: number) =>
      db.query("INSERT INTO outbox (owner, device_id, message_id, routing_key, props, body, created) VALUES (?, ?, 'm', 'k', '{}', ?, ?)").run(owner, dev, Buffer.from(body), created);
    expect(summarizeOutbox([db], 10, 10_000)).toEqual({ rows: 0, bytes: 0, oldest: null, oldest_age_s: null, devices_total: 0, devices: [] });
    add(0, "a", "xx", 5000);
    add(1, "b", "yyy", 3000);
    add(0, "b", "zzzz", 4000);
    const s = summarizeOutbox([db], 1, 10_000);
    expect(s).toEqual({
      rows: 3,
      bytes: 9,
      oldest: new Date(3000).toISOString(),
      oldest_age_s: 7,
      devices_total: 2,
      devices: [{ device_id: "b", rows: 2, bytes: 7, oldest: new Date(3000).toISOString() }],
    });
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
