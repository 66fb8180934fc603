/**
 * Cross-worker coordination on one box. Workers never talk to each other through the remote
 * broker: messages go over the supervisor's IPC channels, which relay them.
 *
 * - `cmd`: a command one worker took from the broker for a device another worker holds.
 *   It is already in the shared inbox; the holder writes it to the socket.
 * - `claims`: devices welcomed by a worker (batched); other workers close their older
 *   connection of the same device with `taken_over`.
 * - `authfail`: a failed hello's ban keys. The supervisor relays it to the other workers, then
 *   answers the sender with `relayed`; the sender answers the device only then, so the next
 *   attempt, whichever worker it reaches, finds the count already there.
 */
import { Waiters } from "../control/waiters.ts";
import type { Command } from "../store/inbox.ts";

/** Envelope the supervisor relays: to one worker, or to all but the sender when `to` is absent. */
export interface Forward {
  t: "fwd";
  to?: number;
  payload: ClusterMessage;
}

/** Messages between workers. */
export type ClusterMessage =
  | { t: "cmd"; cmd: Command; sentAt: number }
  | { t: "claims"; items: [deviceId: string, connId: string, welcomedAt: number][] }
  | { t: "authfail"; keys: string[]; seq: number }
  | { t: "relayed"; seq: number };

/** Longest wait for the supervisor's `relayed` before answering a failed hello anyway, in ms. */
export const RELAY_WAIT_MS = 250;

/** Whether `m` is a relayed failed-hello notice (the supervisor counts bans from them). */
export function isAuthFailure(m: Forward): m is Forward & { payload: { t: "authfail"; keys: string[]; seq: number } } {
  const p = m.payload as { t?: unknown; keys?: unknown; seq?: unknown };
  return p.t === "authfail" && Array.isArray(p.keys) && typeof p.seq === "number";
}

/** Whether `m` is a relay envelope from a worker. */
export function isForward(m: unknown): m is Forward {
  return typeof m === "object" && m !== null && (m as Forward).t === "fwd" && typeof (m as Forward).payload === "object";
}

/** What a worker does with messages from other workers. */
export interface ClusterHandlers {
  /** A command for a device this worker may hold; returns whether it was written. */
  command(cmd: Command, sentAt: number): void;
  /** Another worker welcomed `deviceId` on connection `connId` at `welcomedAt`. */
  claimed(deviceId: string, connId: string, welcomedAt: number): void;
  /** Another worker saw a failed hello for these ban keys (bans count over the whole gateway). */
  authFailed(keys: string[]): void;
  /** The supervisor has relayed this worker's failed-hello notice `seq` to the others. */
  relayed(seq: number): void;
}

/** The worker's side of cross-worker messaging. */
export class Cluster {
  private pendingClaims: [string, string, number][] = [];
  private claimTimer: ReturnType<typeof setTimeout> | null = null;
  private authSeq = 0;
  private readonly awaitingRelay = new Waiters<number>();

  constructor(
    private readonly send: (m: Forward) => void,
    private readonly enabled: boolean,
  ) {}

  /**
   * Offers a command to worker `to` (the device's holder according to the device table), or to
   * all other workers when the holder is not known; `receivedAt` is when the broker handed it
   * over (wall clock, ms).
   */
  forwardCommand(cmd: Command, receivedAt: number, to?: number): void {
    if (!this.enabled) return;
    this.send({ t: "fwd", ...(to !== undefined ? { to } : {}), payload: { t: "cmd", cmd, sentAt: receivedAt } });
  }

  /** Announces that this worker now holds `deviceId` (batched every 5 ms). */
  announceClaim(deviceId: string, connId: string, welcomedAt: number): void {
    if (!this.enabled) return;
    this.pendingClaims.push([deviceId, connId, welcomedAt]);
    this.claimTimer ??= setTimeout(() => {
      this.claimTimer = null;
      const items = this.pendingClaims;
      this.pendingClaims = [];
      this.send({ t: "fwd", payload: { t: "claims", items } });
    }, 5);
  }

  /**
   * Tells the other workers about a failed hello at once (rare; the counts must agree).
   * Resolves once the supervisor has relayed it (at most {@link RELAY_WAIT_MS}), with whether
   * it went through the supervisor, which then counts the bans it leads to (one place sees
   * every failure in one order, so each ban is counted once).
   */
  announceAuthFailure(keys: string[]): Promise<boolean> {
    if (!this.enabled) return Promise.resolve(false);
    const seq = ++this.authSeq;
    const relayed = this.awaitingRelay.wait(seq, RELAY_WAIT_MS);
    this.send({ t: "fwd", payload: { t: "authfail", keys, seq } });
    return relayed.then(() => true);
  }

  /** The supervisor relayed failed-hello notice `seq`. */
  relayed(seq: number): void {
    this.awaitingRelay.signal(seq);
  }

  /** Dispatches a message relayed from another worker. */
  static dispatch(m: unknown, h: ClusterHandlers): void {
    if (typeof m !== "object" || m === null) return;
    const msg = m as ClusterMessage;
    if (msg.t === "cmd") h.command(msg.cmd, msg.sentAt);
    else if (msg.t === "claims") for (const [d, c, at] of msg.items) h.claimed(d, c, at);
    else if (msg.t === "authfail") h.authFailed(msg.keys);
    else if (msg.t === "relayed") h.relayed(msg.seq);
  }
}
