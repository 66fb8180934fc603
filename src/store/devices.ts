/**
 * The device table in the site database: identity, credentials (token generation, revoked),
 * first/last seen, connection state and last close reason. One writer: the supervisor, which
 * applies the workers' sightings in batches; workers only read it.
 */
import type { Database } from "bun:sqlite";

/**
 * What a worker saw: `[deviceId, hardwareId, connId, workerId, at, reason]`. A connect has
 * `reason` null; a disconnect has the close reason and `at` = the last traffic on the connection.
 */
export type Sighting = [deviceId: string, hardwareId: string | null, connId: string, worker: number, at: number, reason: string | null];

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
  token_gen: number;
}

/** Filters for {@link DeviceStore.list}. */
export interface DeviceQuery {
  /** Return devices with id greater than this (the previous page's last id). */
  after?: string;
  limit: number;
  hardwareId?: string;
  /** Substring of the hardware id, id or metadata. */
  search?: string;
}

/** Reads and writes device rows. */
export class DeviceStore {
  private readonly getStmt;
  private readonly knownStmt;
  private readonly firstSeenStmt;
  private readonly closeStmt;

  constructor(private readonly db: Database) {
    this.getStmt = db.query<DeviceRow, [string]>("SELECT * FROM devices WHERE id = ?");
    this.knownStmt = db.query<{ one: number }, [string]>("SELECT 1 AS one FROM devices WHERE id = ?");
    // A known device costs an index lookup, no write; a pre-registered one gets its hardware id.
    this.firstSeenStmt = db.query(
      `INSERT INTO devices (id, hardware_id, first_seen, last_seen, connected)
       VALUES ($id, $hw, $now, $now, 0)
       ON CONFLICT(id) DO UPDATE SET hardware_id = $hw WHERE devices.hardware_id IS NULL AND $hw IS NOT NULL`,
    );
    this.closeStmt = db.query("UPDATE devices SET close_reason = $reason, last_seen = MAX(last_seen, $now) WHERE id = $id");
  }

  /** The row for `id`, or null. */
  get(id: string): DeviceRow | null {
    return this.getStmt.get(id);
  }

  /** Whether the gateway has ever seen device `id` (committed rows only). */
  known(id: string): boolean {
    return this.knownStmt.get(id) !== null;
  }

  /**
   * Records workers' sightings in one transaction: a device seen for the first time gets its
   * row (first seen, hardware id); a close records the last traffic and the close reason.
   * Where a device is connected is not stored: that is live state in the workers' memory.
   * Several sightings of one device in a batch cost one write each at most.
   */
  applySightings(items: Sighting[]): void {
    const firsts = new Map<string, Sighting>();
    const closes = new Map<string, Sighting>();
    for (const s of items) {
      if (s[5] === null) {
        if (!firsts.has(s[0])) firsts.set(s[0], s);
      } else closes.set(s[0], s);
    }
    this.db.transaction(() => {
      for (const [id, hw, , , at] of firsts.values()) this.firstSeenStmt.run({ id, hw, now: at });
      for (const [id, , , , at, reason] of closes.values()) this.closeStmt.run({ id, reason, now: at });
    }).immediate();
  }

  /** The rows of `ids` that exist, ordered by id. */
  getMany(ids: string[]): DeviceRow[] {
    if (ids.length === 0) return [];
    return this.db.query<DeviceRow, [string]>("SELECT * FROM devices WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id").all(JSON.stringify(ids));
  }

  /** A page of devices ordered by id. */
  list(q: DeviceQuery): DeviceRow[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (q.after) {
      where.push("id > ?");
      args.push(q.after);
    }
    if (q.hardwareId !== undefined) {
      where.push("hardware_id = ?");
      args.push(q.hardwareId);
    }
    if (q.search) {
      where.push("(instr(id, ?) > 0 OR instr(COALESCE(hardware_id, ''), ?) > 0 OR instr(COALESCE(meta, ''), ?) > 0)");
      args.push(q.search, q.search, q.search);
    }
    const sql = `SELECT * FROM devices ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY id LIMIT ?`;
    return this.db.query<DeviceRow, (string | number)[]>(sql).all(...args, q.limit);
  }

  /** Number of devices known. */
  count(): number {
    return (this.db.query<{ n: number }, []>("SELECT COUNT(*) AS n FROM devices").get()?.n) ?? 0;
  }

  /** Creates a device row ahead of its first connection (pre-registration); returns whether it is new. */
  register(id: string, hardwareId: string, meta: Record<string, unknown>): boolean {
    const now = Date.now();
    return this.db.transaction(() => {
      const existing = this.get(id);
      if (existing) {
        const merged = { ...(existing.meta ? JSON.parse(existing.meta) : {}), ...meta };
        this.db.query("UPDATE devices SET meta = ? WHERE id = ?").run(JSON.stringify(merged), id);
        return false;
      }
      this.db
        .query("INSERT INTO devices (id, hardware_id, first_seen, last_seen, connected, meta) VALUES (?, ?, ?, ?, 0, ?)")
        .run(id, hardwareId, now, now, JSON.stringify(meta));
      return true;
    }).immediate();
  }

  /** Merges `meta` into the device's metadata; false when the device is unknown. */
  updateMeta(id: string, meta: Record<string, unknown>): boolean {
    return this.db.transaction(() => {
      const existing = this.get(id);
      if (!existing) return false;
      const merged = { ...(existing.meta ? JSON.parse(existing.meta) : {}), ...meta };
      this.db.query("UPDATE devices SET meta = ? WHERE id = ?").run(JSON.stringify(merged), id);
      return true;
    }).immediate();
  }

  /** Revokes the device's tokens: raises its token generation; returns the new one, or null. */
  revoke(id: string): number | null {
    return this.db.transaction(() => {
      const r = this.db.query("UPDATE devices SET revoked = 1, token_gen = token_gen + 1 WHERE id = ?").run(id);
      return r.changes ? (this.get(id)?.token_gen ?? null) : null;
    }).immediate();
  }

  /** Clears the revoked mark and returns the generation a re-issued token must carry, or null. */
  reissue(id: string): number | null {
    return this.db.transaction(() => {
      const r = this.db.query("UPDATE devices SET revoked = 0 WHERE id = ?").run(id);
      return r.changes ? (this.get(id)?.token_gen ?? 0) : null;
    }).immediate();
  }

  /** Token generation floors of every device that has one (loaded by workers at start). */
  tokenFloors(): Map<string, number> {
    const rows = this.db.query<{ id: string; token_gen: number }, []>("SELECT id, token_gen FROM devices WHERE token_gen > 0").all();
    return new Map(rows.map((r) => [r.id, r.token_gen]));
  }

  /** Clears the connection columns of older versions (connection state now lives in memory). */
  clearLegacyConnectionState(): void {
    this.db.transaction(() => this.db.query("UPDATE devices SET connected = 0, worker = NULL, conn_id = NULL WHERE connected = 1").run()).immediate();
  }

  /** Creates the row of a device identity that must exist before its device is welcomed (anonymous devices). */
  createIdentity(id: string): void {
    const now = Date.now();
    this.db.query("INSERT OR IGNORE INTO devices (id, hardware_id, first_seen, last_seen, connected) VALUES (?, NULL, ?, ?, 0)").run(id, now, now);
  }
}
