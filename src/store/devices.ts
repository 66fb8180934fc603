/** The device table: identity, first/last seen, connection state and last close reason. */
import type { Database } from "bun:sqlite";
import type { Batcher } from "./batcher.ts";

/** One row of the device table. */
export interface DeviceRow {
  id: string;
  hardware_id: string | null;
  first_seen: number;
  last_seen: number;
  connected: number;
  worker: number | null;
  conn_id: string | null;
  close_reason: string | null;
  meta: string | null;
  revoked: number;
}

/** Reads and writes device rows; writes go through the shared {@link Batcher}. */
export class DeviceStore {
  private readonly getStmt;
  private readonly knownStmt;
  private readonly upsertStmt;
  private readonly closeStmt;
  private readonly resetStmt;

  constructor(
    private readonly db: Database,
    private readonly batcher: Batcher,
  ) {
    this.getStmt = db.query<DeviceRow, [string]>("SELECT * FROM devices WHERE id = ?");
    this.knownStmt = db.query<{ one: number }, [string]>("SELECT 1 AS one FROM devices WHERE id = ?");
    this.upsertStmt = db.query(
      `INSERT INTO devices (id, hardware_id, first_seen, last_seen, connected, worker, conn_id, close_reason)
       VALUES ($id, $hw, $now, $now, 1, $worker, $conn, NULL)
       ON CONFLICT(id) DO UPDATE SET last_seen = $now, connected = 1, worker = $worker, conn_id = $conn,
         hardware_id = COALESCE(devices.hardware_id, $hw)`,
    );
    this.closeStmt = db.query(
      `UPDATE devices SET connected = 0, close_reason = $reason, last_seen = $now
       WHERE id = $id AND conn_id = $conn`,
    );
    this.resetStmt = db.query(
      "UPDATE devices SET connected = 0, close_reason = $reason WHERE connected = 1 AND worker = $worker",
    );
  }

  /** The row for `id`, or null. */
  get(id: string): DeviceRow | null {
    return this.getStmt.get(id);
  }

  /** Whether the gateway has ever seen device `id` (committed rows only). */
  known(id: string): boolean {
    return this.knownStmt.get(id) !== null;
  }

  /** Records a welcomed connection; resolves once committed. */
  connected(id: string, hardwareId: string | null, worker: number, connId: string): Promise<void> {
    const now = Date.now();
    return this.batcher.run(() => {
      this.upsertStmt.run({ id, hw: hardwareId, now, worker, conn: connId });
    });
  }

  /** Records that connection `connId` of device `id` closed (ignored if a newer connection took over). */
  disconnected(id: string, connId: string, reason: string): Promise<void> {
    const now = Date.now();
    return this.batcher.run(() => {
      this.closeStmt.run({ id, conn: connId, reason, now });
    });
  }

  /** Marks every device of `worker` disconnected (at worker start: the previous incarnation's rows are stale). */
  resetWorker(worker: number, reason: string): void {
    this.db.transaction(() => this.resetStmt.run({ worker, reason })).immediate();
  }
}
