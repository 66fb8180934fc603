import { expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openSiteDatabase, openWorkerDatabase } from "./db.ts";
import { loadOrCreateApiToken, loadOrCreateSecret } from "../auth/token.ts";

const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);

/** Runs `fn` with a permissive umask (as when run by hand with umask 000), restoring it after. */
function withUmask(mask: number, fn: () => void): void {
  const old = process.umask(mask);
  try {
    fn();
  } finally {
    process.umask(old);
  }
}

test("a new data directory is 0700 and the database, its WAL, the secret and the API token are 0600, whatever the umask", () => {
  const root = mkdtempSync(join(tmpdir(), "owsla-perm-"));
  try {
    withUmask(0o000, () => {
      const dir = join(root, "a", "data");
      loadOrCreateSecret(join(dir, "site.secret"));
      loadOrCreateApiToken(join(dir, "api.token"));
      const dbs = [openSiteDatabase(dir), openWorkerDatabase(dir, 0)];
      for (const db of dbs) db.exec("INSERT INTO probe (worker, at) VALUES (1, 1)");
      expect(mode(dir)).toBe("700");
      for (const f of readdirSync(dir)) expect([f, mode(join(dir, f))]).toEqual([f, "600"]);
      expect(readdirSync(dir).sort()).toEqual(
        ["api.token", "owsla.db", "owsla.db-shm", "owsla.db-wal", "site.secret", "worker-0.db", "worker-0.db-shm", "worker-0.db-wal"],
      );
      for (const db of dbs) db.close();
    });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("a data directory and database made looser by an older version are tightened on open", () => {
  const root = mkdtempSync(join(tmpdir(), "owsla-perm-"));
  try {
    const dir = join(root, "data");
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, "owsla.db"), "");
    chmodSync(join(dir, "owsla.db"), 0o644);
    openSiteDatabase(dir).close();
    expect(mode(dir)).toBe("700");
    expect(mode(join(dir, "owsla.db"))).toBe("600");
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
