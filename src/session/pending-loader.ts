/**
 * Sends stored commands to devices that were just welcomed. Looking them up one device at a
 * time costs a query per welcome during a reconnect stampede; this collects the welcomes of a
 * few milliseconds and reads the inbox once for all of them.
 */
import type { Logger } from "../log/logger.ts";
import type { Command, Inbox } from "../store/inbox.ts";

/** What the loader needs from a connection. */
export interface PendingTarget {
  readonly deviceId: string | null;
  readonly state: string;
  sendCommand(c: Command): boolean;
}

/** Devices per inbox query. */
export const PENDING_BATCH = 500;

/** Batches pending-command lookups for newly welcomed connections. */
export class PendingLoader {
  private waiting: PendingTarget[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly inbox: Inbox,
    private readonly log: Logger,
    private readonly delayMs = 2,
  ) {}

  /** Queues `conn` for delivery of its stored commands. */
  request(conn: PendingTarget): void {
    this.waiting.push(conn);
    this.timer ??= setTimeout(() => this.flush(), this.delayMs);
  }

  /** Looks up and sends now. */
  flush(): void {
    this.timer = null;
    const all = this.waiting;
    this.waiting = [];
    for (let i = 0; i < all.length; i += PENDING_BATCH) {
      const chunk = all.slice(i, i + PENDING_BATCH).filter((c) => c.state === "open" && c.deviceId);
      if (chunk.length === 0) continue;
      let rows: Command[];
      try {
        rows = this.inbox.pendingFor([...new Set(chunk.map((c) => c.deviceId!))]);
      } catch (err) {
        this.log.warn("Cannot read pending commands; they are sent by the catch-up sweep or on the next reconnect", { err: err as Error });
        continue;
      }
      if (rows.length === 0) continue;
      const byDevice = new Map<string, PendingTarget>();
      for (const c of chunk) byDevice.set(c.deviceId!, c);
      for (const r of rows) {
        const conn = byDevice.get(r.deviceId);
        if (conn && conn.state === "open") conn.sendCommand(r);
      }
    }
  }
}
