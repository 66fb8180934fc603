import { expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DB_FILE, integrityCheck, openSiteDatabase } from "./db.ts";

test("opening an older database adds the columns introduced since, keeping its rows", () => {
  const dir = mkdtempSync(join(tmpdir(), "owsla-db-"));
  try {
    const old = new Database(join(dir, DB_FILE), { create: true });
    old.exec(`CREATE TABLE devices (id TEXT PRIMARY KEY, hardware_id TEXT UNIQUE, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,
      connected INTEGER NOT NULL DEFAULT 0, worker INTEGER, conn_id TEXT, close_reason TEXT, meta TEXT, revoked INTEGER NOT NULL DEFAULT 0)`);
    old.exec("INSERT INTO devices (id, hardware_id, first_seen, last_seen) VALUES ('d1', 'hw1', 1, 2)");
    old.close();
    const db = openSiteDatabase(dir);
    const row = db.query("SELECT id, hardware_id, token_gen FROM devices").get() as Record<string, unknown>;
    expect(row).toEqual({ id: "d1", hardware_id: "hw1", token_gen: 0 });
    expect(integrityCheck(db)).toBe("ok");
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("several processes can open the same new database at once", async () => {
  const dir = mkdtempSync(join(tmpdir(), "owsla-db-"));
  try {
    const script = `import { openSiteDatabase } from ${JSON.stringify(join(import.meta.dir, "db.ts"))}; openSiteDatabase(${JSON.stringify(dir)}).close();`;
    const procs = Array.from({ length: 6 }, () => Bun.spawn([process.execPath, "-e", script], { stderr: "pipe" }));
    const codes = await Promise.all(procs.map((p) => p.exited));
    expect(codes).toEqual([0, 0, 0, 0, 0, 0]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
