/**
 * `owsla backup <dir>`: a consistent copy of the gateway's state while it runs, without the
 * `sqlite3` program. Each `*.db` file of the data directory is copied with SQLite's
 * `VACUUM INTO` (one read transaction: a consistent snapshot of that file, taken while the
 * gateway keeps writing), checked with `PRAGMA integrity_check`; the site secret and the API
 * token are copied beside them; `MANIFEST.json` lists every file with its size and SHA-256.
 * The backup directory is 0700, its files 0600.
 *
 * Each database file is consistent on its own; files are copied one after the other, so a
 * message may be in one worker's outbox copy and already gone from another's (at most a
 * duplicate after a restore, never a loss of what the snapshot of a file holds).
 */
import { Database } from "bun:sqlite";
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { PROCESS_IO, loadCommandConfig, type CommandIo } from "./command-config.ts";
import type { Config } from "../config/types.ts";
import { BUSY_TIMEOUT_MS, integrityCheck } from "../store/db.ts";
import { databaseFiles } from "../store/db-files.ts";
import { PRIVATE_FILE_MODE, makePrivateDbFile, makePrivateDir } from "../store/private-files.ts";
import { VERSION } from "../version.ts";
import { secretPath } from "./commands.ts";

/** Usage of `owsla backup`. */
export const BACKUP_USAGE = `Usage: owsla backup <dir> [--data DIR] [--config FILE]
Copies the gateway's state into <dir> (created 0700; it must not exist or be empty), also while
the gateway runs: every *.db file of the data directory through SQLite's VACUUM INTO (a
consistent snapshot per file), checked with PRAGMA integrity_check; the site secret and the API
token; and MANIFEST.json (files, sizes, SHA-256). Restore: stop the gateway, copy the files of
<dir> except MANIFEST.json into an empty data directory (mode 0700), start the gateway.
Exit codes: 0 done, 1 failed (nothing to back up, target not empty, copy failed), 2 usage.`;

/** One file of a backup. */
export interface BackupFile {
  name: string;
  bytes: number;
  sha256: string;
  /** `PRAGMA integrity_check` of a database copy ("ok"); absent for other files. */
  integrity?: string;
}

/** What {@link backup} wrote. */
export interface BackupManifest {
  created_at: string;
  owsla_version: string;
  data_dir: string;
  files: BackupFile[];
}

function fileEntry(path: string, integrity?: string): BackupFile {
  const sha256 = createHash("sha256").update(readFileSync(path)).digest("hex");
  return { name: basename(path), bytes: statSync(path).size, sha256, ...(integrity !== undefined ? { integrity } : {}) };
}

/** Copies `source` (a live SQLite database) to `target` with VACUUM INTO; returns the copy's integrity check. */
export function snapshotDatabase(source: string, target: string): string {
  const db = new Database(source, { readonly: true });
  try {
    db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    makePrivateDbFile(target);
    db.query("VACUUM INTO ?").run(target);
  } finally {
    db.close();
  }
  const copy = new Database(target, { readonly: true });
  try {
    return integrityCheck(copy);
  } finally {
    copy.close();
  }
}

/** Backs up the data directory of `config` into `target`; throws with what went wrong. */
export function backup(config: Config, target: string): BackupManifest {
  const dbs = databaseFiles(config.store.dir);
  if (!dbs.length) throw new Error(`No database (*.db) in ${config.store.dir}: point --data at the gateway's data directory`);
  if (existsSync(target) && readdirSync(target).length > 0) throw new Error(`Backup directory ${target} is not empty: give a new or empty directory`);
  makePrivateDir(target);
  const files: BackupFile[] = [];
  for (const source of dbs) {
    const copy = join(target, basename(source));
    const integrity = snapshotDatabase(source, copy);
    if (integrity !== "ok") throw new Error(`The copy of ${source} fails its integrity check (${integrity}); the backup in ${target} is not usable`);
    files.push(fileEntry(copy, integrity));
  }
  for (const source of [secretPath(config), join(config.store.dir, "api.token")]) {
    if (!existsSync(source)) continue;
    const copy = join(target, basename(source));
    copyFileSync(source, copy);
    chmodSync(copy, PRIVATE_FILE_MODE);
    files.push(fileEntry(copy));
  }
  const manifest: BackupManifest = { created_at: new Date().toISOString(), owsla_version: VERSION, data_dir: config.store.dir, files };
  writeFileSync(join(target, "MANIFEST.json"), JSON.stringify(manifest, null, 2) + "\n", { mode: PRIVATE_FILE_MODE });
  return manifest;
}

/** Runs `owsla backup` with its arguments; returns the exit code. */
export function backupMain(argv: string[], { out, err }: CommandIo = PROCESS_IO): number {
  const loaded = loadCommandConfig(argv, BACKUP_USAGE, 1, { out, err });
  if (typeof loaded === "number") return loaded;
  const target = loaded.positionals[0]!;
  try {
    const m = backup(loaded.config, target);
    for (const f of m.files) out(`${f.name}  ${f.bytes} bytes  sha256 ${f.sha256}${f.integrity ? `  integrity ${f.integrity}` : ""}\n`);
    out(`Backup of ${loaded.config.store.dir} written to ${target} (MANIFEST.json lists the files)\n`);
    return 0;
  } catch (e) {
    err(`Backup failed: ${(e as Error).message}\n`);
    return 1;
  }
}
