/**
 * The storage interfaces the rest of the gateway depends on. Each has a SQLite implementation
 * (the worker's own database) and an in-memory one; both pass the same contract tests
 * (`contract.test.ts`).
 */
import type { Command, UpMessage, UpProps } from "../protocol/gateway-messages.ts";

/** Commands a worker took responsibility for while their device was offline or slow to ack. */
export interface CommandStore {
  /** Stores `c` (a duplicate id for the same device is ignored); resolves once durable. */
  add(c: Command): Promise<void>;
  /** Unexpired commands for any of `deviceIds`, oldest first. */
  pendingFor(deviceIds: string[]): Command[];
  /** Deletes a command; resolves with whether a row was deleted. */
  remove(deviceId: string, id: string): Promise<boolean>;
  /** Devices with stored commands. */
  devices(): string[];
  /** Commands stored in total, or for one device. */
  count(deviceId?: string): number;
  /** Deletes expired commands; returns how many. */
  expire(now?: number): number;
  /**
   * Sets a command aside for good: it made the worker throw, so it is never sent again (kept
   * for inspection with `reason`). Resolves once durable.
   */
  quarantine(c: Command, reason: string): Promise<void>;
  /** Commands set aside so far. */
  quarantined(): number;
  /** Bytes of stored command bodies (a running total, cheap to read; see {@link commandBytes}). */
  bytes(): number;
  /** Up to `limit` stored commands, the oldest stored first, expired ones included, with when each was stored (ms). */
  oldest(limit: number): StoredCommand[];
  /** Up to `limit` stored commands whose expiry is at or before `now`, the oldest stored first. */
  expired(now: number, limit: number): StoredCommand[];
}

/** A stored command and when it was stored. */
export interface StoredCommand extends Command {
  storedAt: number;
}

/** Bytes a command counts for in `bytes()` and against `store.inbox_max_bytes`: its body's length. */
export function commandBytes(c: Command): number {
  return c.body.length;
}

/** A stored upstream message with its position in the outbox. */
export interface OutboxRow extends UpMessage {
  seq: number;
}

export type { UpMessage, UpProps };

/** Upstream messages kept while the broker cannot take them, drained in order. */
export interface OutboxStore {
  /** Appends `m`; resolves once durable. */
  add(m: UpMessage): Promise<void>;
  /** Up to `limit` rows after `afterSeq`, in order. */
  peek(limit: number, afterSeq?: number): OutboxRow[];
  /** Deletes rows once the broker confirmed them. */
  remove(seqs: number[]): Promise<void>;
  /** Rows held. */
  count(): number;
  /** Rows held per device. */
  countsByDevice(): Map<string, number>;
}
