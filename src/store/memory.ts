/**
 * In-memory implementations of the storage interfaces: for unit tests of code that needs a
 * store, and as the reference the SQLite implementations are checked against (the same
 * contract tests run on both). Nothing here survives a restart.
 */
import type { Command } from "../protocol/gateway-messages.ts";
import { commandBytes, type CommandStore, type OutboxRow, type OutboxStore, type StoredCommand, type UpMessage } from "./interfaces.ts";

/** {@link CommandStore} in memory. */
export class MemoryCommandStore implements CommandStore {
  private readonly rows = new Map<string, { c: Command; created: number; n: number }>();
  private n = 0;

  private key(deviceId: string, id: string): string {
    return `${deviceId}\u0000${id}`;
  }

  async add(c: Command): Promise<void> {
    const k = this.key(c.deviceId, c.id);
    if (!this.rows.has(k)) this.rows.set(k, { c: { ...c }, created: Date.now(), n: this.n++ });
  }

  pendingFor(deviceIds: string[]): Command[] {
    const want = new Set(deviceIds);
    const now = Date.now();
    return [...this.rows.values()]
      .filter((r) => want.has(r.c.deviceId) && r.c.expiresAt > now)
      .sort((a, b) => a.created - b.created || (a.c.id < b.c.id ? -1 : a.c.id > b.c.id ? 1 : 0))
      .map((r) => ({ ...r.c }));
  }

  async remove(deviceId: string, id: string): Promise<boolean> {
    return this.rows.delete(this.key(deviceId, id));
  }

  devices(): string[] {
    return [...new Set([...this.rows.values()].map((r) => r.c.deviceId))];
  }

  count(deviceId?: string): number {
    if (deviceId === undefined) return this.rows.size;
    let n = 0;
    for (const r of this.rows.values()) if (r.c.deviceId === deviceId) n++;
    return n;
  }

  private readonly setAside: { c: Command; reason: string }[] = [];

  async quarantine(c: Command, reason: string): Promise<void> {
    this.rows.delete(this.key(c.deviceId, c.id));
    this.setAside.push({ c: { ...c }, reason });
  }

  quarantined(): number {
    return this.setAside.length;
  }

  bytes(): number {
    let n = 0;
    for (const r of this.rows.values()) n += commandBytes(r.c);
    return n;
  }

  oldest(limit: number): StoredCommand[] {
    return this.sorted([...this.rows.values()]).slice(0, limit);
  }

  expired(now: number, limit: number): StoredCommand[] {
    return this.sorted([...this.rows.values()].filter((r) => r.c.expiresAt <= now)).slice(0, limit);
  }

  private sorted(rows: { c: Command; created: number }[]): StoredCommand[] {
    return rows.sort((a, b) => a.created - b.created || (a.c.id < b.c.id ? -1 : a.c.id > b.c.id ? 1 : 0)).map((r) => ({ ...r.c, storedAt: r.created }));
  }

  expire(now = Date.now()): number {
    let n = 0;
    for (const [k, r] of this.rows) {
      if (r.c.expiresAt <= now) {
        this.rows.delete(k);
        n++;
      }
    }
    return n;
  }
}

/** {@link OutboxStore} in memory. */
export class MemoryOutbox implements OutboxStore {
  private rows: OutboxRow[] = [];
  private seq = 0;

  async add(m: UpMessage): Promise<void> {
    this.rows.push({ ...m, seq: ++this.seq });
  }

  peek(limit: number, afterSeq = 0): OutboxRow[] {
    return this.rows.filter((r) => r.seq > afterSeq).slice(0, limit);
  }

  async remove(seqs: number[]): Promise<void> {
    const gone = new Set(seqs);
    this.rows = this.rows.filter((r) => !gone.has(r.seq));
  }

  count(): number {
    return this.rows.length;
  }

  countsByDevice(): Map<string, number> {
    const m = new Map<string, number>();
    for (const r of this.rows) m.set(r.deviceId, (m.get(r.deviceId) ?? 0) + 1);
    return m;
  }
}
