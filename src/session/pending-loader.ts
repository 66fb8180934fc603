/**
 * Sends stored commands to devices that were just welcomed. Looking them up one device at a
 * time costs a query per welcome during a reconnect stampede; this collects the welcomes of a
 * few milliseconds and reads the inbox once for all of them.
 *
 * Each welcomed connection is looked up again {@link RECHECK_MS} later: a command consumed by
 * another worker while this device was mid-hello (or moving between workers) is committed a
 * moment after the first lookup, and its live forward found no holder. Commands already sent
 * on the connection are not sent twice.
 */
import type { Logger } from "../log/logger.ts";
import type { Command, Inbox } from "../store/inbox.ts";

/** What the loader needs from a connection. */
export interface PendingTarget {
  readonly deviceId: string | null;
  readonly state: string;
  readonly sentCommands: Set<string>;
  sendCommand(c: Command): boolean;
}

/** Devices per inbox query. */
export const PENDING_BATCH = 500;

/** Delays after a welcome at which the inbox is read for the device, in ms. */
export const RECHECK_MS = [2, 500, 2500];

/** Batches pending-command lookups for newly welcomed connections. */
export class PendingLoader {
  private readonly queues: PendingTarget[][] = RECHECK_MS.map(() => []);
  private readonly timers: (ReturnType<typeof setTimeout> | null)[] = RECHECK_MS.map(() => null);
  /** Commands sent by a re-check (they were missed by the first lookup). */
  caughtUp = 0;

  constructor(
    private readonly inbox: Inbox,
    private readonly log: Logger,
  ) {}

  /** Queues `conn` for delivery of its stored commands. */
  request(conn: PendingTarget, phase = 0): void {
    this.queues[phase]!.push(conn);
    this.timers[phase] ??= setTimeout(() => this.flush(phase), phase === 0 ? RECHECK_MS[0] : 50);
  }

  /** Looks up and sends the connections queued for `phase`, then schedules their next phase. */
  flush(phase = 0): void {
    this.timers[phase] = null;
    const all = this.queues[phase]!.splice(0);
    for (let i = 0; i < all.length; i += PENDING_BATCH) {
      const chunk = all.slice(i, i + PENDING_BATCH).filter((c) => c.state === "open" && c.deviceId);
      if (chunk.length === 0) continue;
      let rows: Command[] = [];
      try {
        rows = this.inbox.pendingFor([...new Set(chunk.map((c) => c.deviceId!))]);
      } catch (err) {
        this.log.warn("Cannot read pending commands; they are sent on the next look or the next reconnect", { err: err as Error });
      }
      const byDevice = new Map<string, PendingTarget>();
      for (const c of chunk) byDevice.set(c.deviceId!, c);
      for (const r of rows) {
        const conn = byDevice.get(r.deviceId);
        if (conn && conn.state === "open" && !conn.sentCommands.has(r.id) && conn.sendCommand(r) && phase > 0) this.caughtUp++;
      }
    }
    const next = phase + 1;
    if (next < RECHECK_MS.length) {
      const wait = RECHECK_MS[next]! - RECHECK_MS[phase]!;
      const survivors = all.filter((c) => c.state === "open");
      if (survivors.length > 0) setTimeout(() => survivors.forEach((c) => this.request(c, next)), wait);
    }
  }
}
