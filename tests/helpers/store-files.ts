/**
 * Read-only looks into a gateway's data directory for tests: the site database (`owsla.db`)
 * and every worker's own database (`worker-<id>.db`).
 */
import { Database } from "bun:sqlite";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

/** Paths of the site database and every worker database in `dir`. */
export function databaseFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f === "owsla.db" || /^worker-\d+\.db$/.test(f))
    .map((f) => join(dir, f));
}

/** Runs `fn` on each worker database of `dir` (read-only) and sums the results. */
function sumWorkers(dir: string, fn: (db: Database) => number): number {
  let n = 0;
  for (const path of databaseFiles(dir).filter((p) => !p.endsWith("owsla.db"))) {
    const db = new Database(path, { readonly: true });
    try {
      db.exec("PRAGMA busy_timeout = 5000");
      n += fn(db);
    } finally {
      db.close();
    }
  }
  return n;
}

/** Commands stored for `deviceId` (or in total) over every worker's database. */
export function storedCommands(dir: string, deviceId?: string): number {
  return sumWorkers(dir, (db) =>
    deviceId
      ? (db.query("SELECT COUNT(*) AS n FROM inbox WHERE device_id = ?").get(deviceId) as { n: number }).n
      : (db.query("SELECT COUNT(*) AS n FROM inbox").get() as { n: number }).n,
  );
}

/** Rows in every worker's outbox. */
export function outboxRows(dir: string): number {
  return sumWorkers(dir, (db) => (db.query("SELECT COUNT(*) AS n FROM outbox").get() as { n: number }).n);
}

/** `PRAGMA integrity_check` of every database in `dir`: "ok" when all are healthy, else the first problem. */
export function integrity(dir: string): string {
  for (const path of databaseFiles(dir)) {
    const db = new Database(path);
    try {
      db.exec("PRAGMA busy_timeout = 5000");
      const r = db.query("PRAGMA integrity_check").get() as Record<string, string>;
      const v = Object.values(r)[0] ?? "unknown";
      if (v !== "ok") return `${path}: ${v}`;
    } finally {
      db.close();
    }
  }
  return "ok";
}
