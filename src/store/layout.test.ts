import { afterEach, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DB_FILE, openSiteDatabase, openWorkerDatabase, workerDbFile } from "./db.ts";
import { upgradeLayout, workerFiles } from "./layout.ts";
import { DeviceStore } from "./devices.ts";

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "owsla-layout-"));
  dirs.push(d);
  return d;
};

test("a shared database from before the per-worker files has its outbox and stored commands moved, nothing lost", () => {
  const dir = tempDir();
  // The old single file: devices, outbox (owned by workers 0, 1 and 5) and inbox in owsla.db.
  const old = new Database(join(dir, DB_FILE), { create: true });
  old.exec(`CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, owner INTEGER NOT NULL, device_id TEXT NOT NULL, message_id TEXT NOT NULL,
    routing_key TEXT NOT NULL, props TEXT NOT NULL, body BLOB NOT NULL, created INTEGER NOT NULL)`);
  old.exec(`CREATE TABLE inbox (device_id TEXT NOT NULL, id TEXT NOT NULL, topic TEXT NOT NULL, body TEXT NOT NULL, corr TEXT,
    expires_at INTEGER NOT NULL, created INTEGER NOT NULL, PRIMARY KEY (device_id, id)) WITHOUT ROWID`);
  const ins = old.query("INSERT INTO outbox (owner, device_id, message_id, routing_key, props, body, created) VALUES (?, ?, ?, 'rk', '{}', x'7b7d', ?)");
  for (let i = 0; i < 6; i++) ins.run([0, 1, 5][i % 3]!, `d${i % 3}`, `m${i}`, i);
  old.query("INSERT INTO inbox VALUES ('d9', 'c1', 'cmd', '{}', NULL, 9999999999999, 1)").run();
  old.close();

  const site = openSiteDatabase(dir);
  const changes = upgradeLayout(site, dir, 2);
  expect(changes).toMatchObject({ legacyOutbox: 6, legacyCommands: 1 });
  expect(site.query("SELECT name FROM sqlite_master WHERE name IN ('outbox', 'inbox')").all()).toEqual([]);
  site.close();
  const rows = (w: number) => {
    const db = openWorkerDatabase(dir, w);
    try {
      return {
        outbox: db.query("SELECT message_id FROM outbox ORDER BY seq").all().map((r: any) => r.message_id),
        inbox: db.query("SELECT id FROM inbox").all().map((r: any) => r.id),
      };
    } finally {
      db.close();
    }
  };
  // Worker 5 no longer exists (2 workers): its rows go to worker 0, after worker 0's own.
  expect(rows(0)).toEqual({ outbox: ["m0", "m3", "m2", "m5"], inbox: ["c1"] });
  expect(rows(1)).toEqual({ outbox: ["m1", "m4"], inbox: [] });
});

test("files of workers that no longer exist are merged into worker 0's and removed", () => {
  const dir = tempDir();
  for (const w of [0, 3]) {
    const db = openWorkerDatabase(dir, w);
    db.query("INSERT INTO outbox (owner, device_id, message_id, routing_key, props, body, created) VALUES (?, 'd', ?, 'rk', '{}', x'00', 1)").run(w, `from-${w}`);
    db.query("INSERT INTO inbox VALUES ('d', ?, 'cmd', '{}', NULL, 9999999999999, 1)").run(`cmd-${w}`);
    db.close();
  }
  const site = openSiteDatabase(dir);
  const changes = upgradeLayout(site, dir, 2);
  site.close();
  expect(changes).toMatchObject({ orphanRows: 2, orphanFiles: [3] });
  expect(workerFiles(dir)).toEqual([0]);
  expect(existsSync(join(dir, workerDbFile(3)))).toBe(false);
  const db = openWorkerDatabase(dir, 0);
  expect(db.query("SELECT message_id FROM outbox ORDER BY seq").all().map((r: any) => r.message_id)).toEqual(["from-0", "from-3"]);
  expect(db.query("SELECT id FROM inbox ORDER BY id").all().map((r: any) => r.id)).toEqual(["cmd-0", "cmd-3"]);
  db.close();
});

test("sightings: a first sighting creates the row, a known device is not rewritten, a close records last traffic and reason", () => {
  const dir = tempDir();
  const db = openSiteDatabase(dir);
  const devices = new DeviceStore(db);
  devices.applySightings([["d1", "hw-1", "c1", 0, 1000, null]]);
  expect(devices.get("d1")).toMatchObject({ hardware_id: "hw-1", first_seen: 1000, last_seen: 1000, close_reason: null });
  devices.applySightings([["d1", "hw-1", "c2", 1, 2000, null]]); // reconnect: nothing to write
  expect(devices.get("d1")).toMatchObject({ first_seen: 1000, last_seen: 1000 });
  devices.applySightings([
    ["d1", null, "c2", 1, 5000, "bye"],
    ["d2", null, "c3", 0, 6000, null],
  ]);
  expect(devices.get("d1")).toMatchObject({ last_seen: 5000, close_reason: "bye" });
  expect(devices.get("d2")).toMatchObject({ hardware_id: null, first_seen: 6000 });
  db.close();
});
