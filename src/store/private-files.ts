/**
 * The data directory and its database files hold device identities, command and message
 * bodies: they are created (and tightened when found looser, e.g. made by an older version or
 * by hand) as directory 0700 and files 0600, whatever the process umask.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from "node:fs";

/** Mode of the data directory. */
export const PRIVATE_DIR_MODE = 0o700;
/** Mode of files in it. */
export const PRIVATE_FILE_MODE = 0o600;

/** Sets `mode` on `path` if it differs and the process owns it (someone else's file is left alone). */
function tighten(path: string, mode: number): void {
  const st = statSync(path);
  if ((st.mode & 0o777) === mode || (process.getuid && st.uid !== process.getuid())) return;
  chmodSync(path, mode);
}

/**
 * Creates `dir` (and missing parents) as 0700. An existing `dir` is made 0700 too unless
 * `tightenExisting` is false (for a directory the operator chose for a file, e.g. auth.secret_file's).
 */
export function makePrivateDir(dir: string, tightenExisting = true): void {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  if (tightenExisting) tighten(dir, PRIVATE_DIR_MODE);
}

/**
 * Makes `path` an existing 0600 file (created empty when missing) before SQLite opens it;
 * SQLite gives its `-wal` and `-shm` files the database's mode. Existing `-wal`/`-shm` files
 * are tightened as well.
 */
export function makePrivateDbFile(path: string): void {
  closeSync(openSync(path, "a", PRIVATE_FILE_MODE));
  for (const p of [path, `${path}-wal`, `${path}-shm`]) {
    if (!existsSync(p)) continue;
    try {
      tighten(p, PRIVATE_FILE_MODE);
    } catch (e) {
      // Another process closing the database removes its -wal/-shm between the check and the
      // stat (seen with six processes opening a new database at once): nothing left to tighten.
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
  }
}
