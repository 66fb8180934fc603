/**
 * Read-only views of the workers' databases, for the supervisor's control API (how many
 * commands are stored for a device). Reading another process's WAL file never waits for it.
 */
import { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { workerDbFile } from "./db.ts";
import { hasOutbox } from "./db-files.ts";
import { summarizeOutbox, type OutboxSummary } from "./outbox-summary.ts";

/** The workers' files of one data directory, opened on first use. */
export class WorkerFiles {
  private readonly open = new Map<number, Database>();

  constructor(
    private readonly dir: string,
    private readonly count: number,
  ) {}

  private db(id: number): Database | null {
    let db = this.open.get(id);
    if (db) return db;
    const path = join(this.dir, workerDbFile(id));
    if (!existsSync(path)) return null;
    db = new Database(path, { readonly: true });
    db.exec("PRAGMA busy_timeout = 200");
    this.open.set(id, db);
    return db;
  }

  /** Commands stored for `deviceId` (or in total) over every worker's file; unreadable files count 0. */
  storedCommands(deviceId?: string): number {
    let n = 0;
    for (let id = 0; id < this.count; id++) {
      try {
        const db = this.db(id);
        if (!db) continue;
        const row = deviceId
          ? db.query<{ n: number }, [string]>("SELECT COUNT(*) AS n FROM inbox WHERE device_id = ?").get(deviceId)
          : db.query<{ n: number }, []>("SELECT COUNT(*) AS n FROM inbox").get();
        n += row?.n ?? 0;
      } catch {
        // A worker creating its file right now: counted at the next look.
      }
    }
    return n;
  }

  /** How full the workers' outboxes are, together (see {@link summarizeOutbox}); unreadable files are left out. */
  outbox(limit: number): OutboxSummary {
    const dbs: Database[] = [];
    for (let id = 0; id < this.count; id++) {
      try {
        const db = this.db(id);
        if (db && hasOutbox(db)) dbs.push(db);
      } catch {
        // A worker creating its file right now: counted at the next look.
      }
    }
    return summarizeOutbox(dbs, limit);
  }

  /** Closes every open file. */
  close(): void {
    for (const db of this.open.values()) db.close();
    this.open.clear();
  }
}
