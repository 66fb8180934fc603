/**
 * The data directory's files and their upgrades, run by the supervisor before any worker starts
 * (so nothing else writes them meanwhile):
 *
 * - A site database from before the per-worker files (one shared `owsla.db` with `outbox` and
 *   `inbox` tables) has those rows moved into the workers' files: outbox rows to the worker
 *   that owned them (worker 0 when it no longer exists), stored commands to worker 0.
 * - Files of workers that no longer exist (the worker count shrank) are merged into worker 0's.
 */
import { existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Database } from "bun:sqlite";
import { openWorkerDatabase, workerDbFile } from "./db.ts";

const OUTBOX_COLS = "device_id, message_id, routing_key, props, body, created";
const INBOX_COLS = "device_id, id, topic, body, corr, expires_at, created";

function hasTable(db: Database, schema: string, name: string): boolean {
  return db.query(`SELECT 1 FROM ${schema}.sqlite_master WHERE type = 'table' AND name = ?`).get(name) !== null;
}

/** Worker ids that have a database file in `dir`. */
export function workerFiles(dir: string): number[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((f) => /^worker-(\d+)\.db$/.exec(f)?.[1])
    .filter((x): x is string => x !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

/** Result of {@link upgradeLayout}: rows moved, by what. */
export interface LayoutChanges {
  legacyOutbox: number;
  legacyCommands: number;
  orphanRows: number;
  orphanFiles: number[];
}

/** Brings the data directory to one database per worker for `count` workers (see the module doc). */
export function upgradeLayout(site: Database, dir: string, count: number): LayoutChanges {
  const out: LayoutChanges = { legacyOutbox: 0, legacyCommands: 0, orphanRows: 0, orphanFiles: [] };
  if (hasTable(site, "main", "outbox") || hasTable(site, "main", "inbox")) {
    const owners = hasTable(site, "main", "outbox")
      ? site.query<{ owner: number }, []>("SELECT DISTINCT owner FROM outbox").all().map((r) => r.owner)
      : [];
    const targets = new Set(owners.map((o) => (o < count ? o : 0)));
    if (hasTable(site, "main", "inbox")) targets.add(0);
    for (const w of targets) openWorkerDatabase(dir, w).close();
    for (const w of targets) {
      site.exec(`ATTACH DATABASE '${join(dir, workerDbFile(w)).replaceAll("'", "''")}' AS w`);
      try {
        site.transaction(() => {
          for (const o of owners) {
            if ((o < count ? o : 0) !== w) continue;
            out.legacyOutbox += site.run(`INSERT INTO w.outbox (owner, ${OUTBOX_COLS}) SELECT ${w}, ${OUTBOX_COLS} FROM main.outbox WHERE owner = ? ORDER BY seq`, [o]).changes;
          }
          if (w === 0 && hasTable(site, "main", "inbox")) {
            out.legacyCommands += site.run(`INSERT OR IGNORE INTO w.inbox (${INBOX_COLS}) SELECT ${INBOX_COLS} FROM main.inbox`).changes;
          }
        }).immediate();
      } finally {
        site.exec("DETACH DATABASE w");
      }
    }
    site.exec("DROP TABLE IF EXISTS outbox; DROP TABLE IF EXISTS inbox");
  }
  const orphans = workerFiles(dir).filter((k) => k >= count);
  if (orphans.length > 0) {
    const w0 = openWorkerDatabase(dir, 0);
    try {
      for (const k of orphans) {
        const path = join(dir, workerDbFile(k));
        w0.exec(`ATTACH DATABASE '${path.replaceAll("'", "''")}' AS o`);
        try {
          w0.transaction(() => {
            if (hasTable(w0, "o", "outbox")) out.orphanRows += w0.run(`INSERT INTO main.outbox (owner, ${OUTBOX_COLS}) SELECT 0, ${OUTBOX_COLS} FROM o.outbox ORDER BY seq`).changes;
            if (hasTable(w0, "o", "inbox")) out.orphanRows += w0.run(`INSERT OR IGNORE INTO main.inbox (${INBOX_COLS}) SELECT ${INBOX_COLS} FROM o.inbox`).changes;
          }).immediate();
        } finally {
          w0.exec("DETACH DATABASE o");
        }
        for (const suffix of ["", "-wal", "-shm"]) rmSync(path + suffix, { force: true });
        out.orphanFiles.push(k);
      }
    } finally {
      w0.close();
    }
  }
  return out;
}
