/**
 * Opens the gateway's SQLite database (WAL) and creates its schema.
 *
 * Several worker processes open the same file, so `busy_timeout` is set before switching
 * to WAL (otherwise concurrent openers fail with SQLITE_BUSY on the journal-mode switch).
 * WAL with `synchronous=NORMAL` survives process crashes (not power loss).
 */
import { Database } from "bun:sqlite";
import { makePrivateDbFile, makePrivateDir } from "./private-files.ts";
import { join } from "node:path";

/** File name of the database inside the data directory. */
export const DB_FILE = "owsla.db";

/**
 * How long a writer waits for another process's write lock before failing, in ms. The wait
 * blocks the event loop, so it stays well under the supervisor's hang timeout.
 */
export const BUSY_TIMEOUT_MS = 1000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS devices (
  id           TEXT PRIMARY KEY,
  hardware_id  TEXT UNIQUE,
  first_seen   INTEGER NOT NULL,
  last_seen    INTEGER NOT NULL,
  connected    INTEGER NOT NULL DEFAULT 0,
  worker       INTEGER,
  conn_id      TEXT,
  close_reason TEXT,
  meta         TEXT,
  revoked      INTEGER NOT NULL DEFAULT 0,
  token_gen    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS outbox (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  owner       INTEGER NOT NULL,
  device_id   TEXT NOT NULL,
  message_id  TEXT NOT NULL,
  routing_key TEXT NOT NULL,
  props       TEXT NOT NULL,
  body        BLOB NOT NULL,
  created     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_owner ON outbox(owner, seq);
CREATE TABLE IF NOT EXISTS inbox (
  device_id  TEXT NOT NULL,
  id         TEXT NOT NULL,
  topic      TEXT NOT NULL,
  body       TEXT NOT NULL,
  corr       TEXT,
  expires_at INTEGER NOT NULL,
  created    INTEGER NOT NULL,
  PRIMARY KEY (device_id, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS inbox_expiry ON inbox(expires_at);
CREATE TABLE IF NOT EXISTS probe (worker INTEGER PRIMARY KEY, at INTEGER NOT NULL);
`;

/**
 * Opens (creating if needed) the database in `dir`, ready for use by several processes.
 * `synchronous` NORMAL (default) survives process crashes; FULL also fsyncs every commit, for
 * what the gateway has acknowledged to someone (outbox rows acked to devices, inbox rows acked
 * to the broker), so a power cut or a failing filesystem cannot take them back.
 */
export function openDatabase(dir: string, opts: { synchronous?: "NORMAL" | "FULL" } = {}): Database {
  try {
    makePrivateDir(dir);
  } catch (e) {
    throw new Error(`Cannot create data directory ${dir}: ${(e as Error).message}; check the path and its permissions (store.dir)`);
  }
  const path = join(dir, DB_FILE);
  let db: Database;
  try {
    makePrivateDbFile(path);
    db = new Database(path, { create: true, strict: true });
  } catch (e) {
    throw new Error(`Cannot open database ${path}: ${(e as Error).message}; check store.dir and its permissions`);
  }
  db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
  db.exec("PRAGMA journal_mode = WAL");
  db.exec(`PRAGMA synchronous = ${opts.synchronous ?? "NORMAL"}`);
  db.exec("PRAGMA foreign_keys = OFF");
  // Schema creation from several processes at once: take the write lock first.
  db.transaction(() => {
    db.exec(SCHEMA);
    migrate(db);
  }).immediate();
  return db;
}

/** Columns added after the first release; added in place to older databases. */
const ADDED_COLUMNS: [table: string, column: string, decl: string][] = [["devices", "token_gen", "INTEGER NOT NULL DEFAULT 0"]];

function migrate(db: Database): void {
  for (const [table, column, decl] of ADDED_COLUMNS) {
    const cols = db.query<{ name: string }, []>(`PRAGMA table_info(${table})`).all();
    if (!cols.some((c) => c.name === column)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${decl}`);
  }
}

/** Runs `PRAGMA integrity_check` and returns its first line ("ok" when healthy). */
export function integrityCheck(db: Database): string {
  const row = db.query("PRAGMA integrity_check").get() as Record<string, string>;
  return Object.values(row)[0] ?? "unknown";
}
