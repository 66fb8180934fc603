/**
 * Opens the gateway's SQLite databases (WAL) and creates their schemas. One writer per file:
 * the site database (`owsla.db`: device identity, credentials, sightings) is written only by
 * the supervisor; each worker writes only its own `worker-<id>.db` (its outbox and the
 * commands it stores). Other processes may read a file (WAL readers never wait for the writer).
 *
 * `busy_timeout` is set before switching to WAL (a reader opening a file at the same moment
 * would otherwise fail with SQLITE_BUSY on the journal-mode switch).
 */
import { Database } from "bun:sqlite";
import { makePrivateDbFile, makePrivateDir } from "./private-files.ts";
import { join } from "node:path";

/** File name of the site database (device identity, credentials, sightings) inside the data directory. */
export const DB_FILE = "owsla.db";

/** File name of worker `id`'s own database (its outbox and the commands it stores). */
export function workerDbFile(id: number): string {
  return `worker-${id}.db`;
}

/**
 * How long a writer waits for the write lock before failing, in ms. Every file has one writer
 * process, so this only covers readers checkpointing and start-up races.
 */
export const BUSY_TIMEOUT_MS = 1000;

/** The site database: written only by the supervisor; workers read it. */
const SITE_SCHEMA = `
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
CREATE TABLE IF NOT EXISTS probe (worker INTEGER PRIMARY KEY, at INTEGER NOT NULL);
`;

/** A worker's database: written only by that worker. */
export const WORKER_SCHEMA = `
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
CREATE INDEX IF NOT EXISTS inbox_created ON inbox(created);
CREATE TABLE IF NOT EXISTS quarantine (
  kind      TEXT NOT NULL,
  device_id TEXT NOT NULL,
  id        TEXT NOT NULL,
  item      TEXT NOT NULL,
  reason    TEXT NOT NULL,
  at        INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS probe (worker INTEGER PRIMARY KEY, at INTEGER NOT NULL);
`;

/** Opens the site database in `dir` (see {@link SITE_SCHEMA}). */
export function openSiteDatabase(dir: string): Database {
  return openFile(dir, DB_FILE, SITE_SCHEMA, "NORMAL");
}

/**
 * Opens worker `id`'s database in `dir`. Its rows were acknowledged to someone (outbox rows to
 * devices, stored commands to the broker): FULL sync, so a power cut cannot take them back.
 */
export function openWorkerDatabase(dir: string, id: number): Database {
  return openFile(dir, workerDbFile(id), WORKER_SCHEMA, "FULL");
}

function openFile(dir: string, file: string, schema: string, synchronous: "NORMAL" | "FULL"): Database {
  try {
    makePrivateDir(dir);
  } catch (e) {
    throw new Error(`Cannot create data directory ${dir}: ${(e as Error).message}; check the path and its permissions (store.dir)`);
  }
  const path = join(dir, file);
  let db: Database;
  try {
    makePrivateDbFile(path);
    db = new Database(path, { create: true, strict: true });
  } catch (e) {
    throw new Error(`Cannot open database ${path}: ${(e as Error).message}; check store.dir and its permissions`);
  }
  db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
  db.exec("PRAGMA journal_mode = WAL");
  db.exec(`PRAGMA synchronous = ${synchronous}`);
  db.exec("PRAGMA foreign_keys = OFF");
  db.transaction(() => {
    db.exec(schema);
    migrate(db);
  }).immediate();
  return db;
}

/** Columns added after the first release; added in place to older databases. */
const ADDED_COLUMNS: [table: string, column: string, decl: string][] = [["devices", "token_gen", "INTEGER NOT NULL DEFAULT 0"]];

function migrate(db: Database): void {
  for (const [table, column, decl] of ADDED_COLUMNS) {
    if (!db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table)) continue;
    const cols = db.query<{ name: string }, []>(`PRAGMA table_info(${table})`).all();
    if (!cols.some((c) => c.name === column)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${decl}`);
  }
}

/** Runs `PRAGMA integrity_check` and returns its first line ("ok" when healthy). */
export function integrityCheck(db: Database): string {
  const row = db.query("PRAGMA integrity_check").get() as Record<string, string>;
  return Object.values(row)[0] ?? "unknown";
}
