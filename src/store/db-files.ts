/**
 * The SQLite database files of a data directory: every `*.db` in it (one file today; one per
 * worker plus the site database once the store is split). Used by `owsla backup` and by
 * `owsla outbox` when the gateway is not running.
 */
import type { Database } from "bun:sqlite";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

/** Paths of the `*.db` files directly in `dir`, sorted; none when `dir` does not exist. */
export function databaseFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".db"))
    .map((e) => join(dir, e.name))
    .sort();
}

/** Whether `db` has an outbox table. */
export function hasOutbox(db: Database): boolean {
  return db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox'").get() !== null;
}
