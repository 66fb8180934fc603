/**
 * The inbox: commands for devices, kept until the device acks them or they expire.
 * A command is stored before its broker delivery is acknowledged, so a gateway crash
 * loses nothing; un-acked commands are sent again when the device reconnects.
 */
import type { Database } from "bun:sqlite";
import type { Batcher } from "./batcher.ts";

/** A command for a device. */
export interface Command {
  id: string;
  deviceId: string;
  topic: string;
  /** The body as JSON text. */
  body: string;
  corr: string | null;
  expiresAt: number;
}

interface RawRow {
  device_id: string;
  id: string;
  topic: string;
  body: string;
  corr: string | null;
  expires_at: number;
}

function toCommand(r: RawRow): Command {
  return { id: r.id, deviceId: r.device_id, topic: r.topic, body: r.body, corr: r.corr, expiresAt: r.expires_at };
}

/** Durable per-device command store. */
export class Inbox {
  private readonly insertStmt;
  private readonly pendingStmt;
  private readonly deleteStmt;
  private readonly expireStmt;
  private readonly countStmt;
  private readonly countDeviceStmt;
  private readonly pendingForStmt;

  constructor(
    private readonly db: Database,
    private readonly batcher: Batcher,
  ) {
    this.insertStmt = db.query(
      `INSERT OR IGNORE INTO inbox (device_id, id, topic, body, corr, expires_at, created)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    this.pendingStmt = db.query<RawRow, [string, number]>(
      "SELECT * FROM inbox WHERE device_id = ? AND expires_at > ? ORDER BY created, id",
    );
    this.deleteStmt = db.query("DELETE FROM inbox WHERE device_id = ? AND id = ?");
    this.expireStmt = db.query("DELETE FROM inbox WHERE expires_at <= ?");
    this.countStmt = db.query<{ n: number }, []>("SELECT COUNT(*) AS n FROM inbox");
    this.pendingForStmt = db.query<RawRow, [string, number]>(
      "SELECT * FROM inbox WHERE device_id IN (SELECT value FROM json_each(?)) AND expires_at > ? ORDER BY created, id",
    );
    this.countDeviceStmt = db.query<{ n: number }, [string]>("SELECT COUNT(*) AS n FROM inbox WHERE device_id = ?");
  }

  /** Stores `c` (a duplicate id for the same device is ignored); resolves once durable. */
  add(c: Command): Promise<void> {
    const now = Date.now();
    return this.batcher.run(() => {
      this.insertStmt.run(c.deviceId, c.id, c.topic, c.body, c.corr, c.expiresAt, now);
    });
  }

  /** Unexpired commands for any of `deviceIds` (one query for many devices), oldest first. */
  pendingFor(deviceIds: string[]): Command[] {
    return this.pendingForStmt.all(JSON.stringify(deviceIds), Date.now()).map(toCommand);
  }

  /** Unexpired commands for `deviceId`, oldest first. */
  pending(deviceId: string): Command[] {
    return this.pendingStmt.all(deviceId, Date.now()).map(toCommand);
  }

  /**
   * Removes a command the device acked; resolves with whether a row was deleted. The row may
   * not be committed yet when another worker consumed the command (it forwards before its
   * commit), so a miss is retried a few times before giving up.
   */
  async remove(deviceId: string, id: string, retryDelaysMs: number[] = [20, 100, 500, 2000]): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      let deleted = 0;
      await this.batcher.run(() => {
        deleted = this.deleteStmt.run(deviceId, id).changes;
      });
      if (deleted > 0) return true;
      const wait = retryDelaysMs[attempt];
      if (wait === undefined) return false;
      await Bun.sleep(wait);
    }
  }

  /** Deletes expired commands; returns how many. */
  expire(now = Date.now()): number {
    return this.db.transaction(() => this.expireStmt.run(now).changes).immediate();
  }

  /** Commands held in total, or for one device. */
  count(deviceId?: string): number {
    return (deviceId ? this.countDeviceStmt.get(deviceId) : this.countStmt.get())?.n ?? 0;
  }
}
