/**
 * A worker's messages to the supervisor about site-wide records, which the supervisor alone
 * writes (one writer for the site database):
 *
 * - `seen`: sightings (welcomes and closes), batched every {@link SIGHTINGS_EVERY_MS}; the
 *   supervisor records first/last seen and where each device is connected. Never awaited: a
 *   welcome does not wait for a disk write.
 * - `anon`: a new anonymous identity, awaited (it must survive a crash before the device
 *   learns it; rare).
 * - `authfail`: a failed hello's ban keys. The supervisor relays them to the other workers,
 *   then answers `relayed`; the sender answers the device only then, so the next attempt,
 *   whichever worker it reaches, finds the count already there. The supervisor counts bans.
 */
import { Waiters } from "../supervisor/waiters.ts";
import type { Sighting } from "../store/devices.ts";

/** How often sightings go to the supervisor, in ms. */
export const SIGHTINGS_EVERY_MS = 100;
/** Longest wait for the supervisor's `relayed` before answering a failed hello anyway, in ms. */
export const RELAY_WAIT_MS = 250;
/** Longest wait for the supervisor to record an anonymous identity, in ms. */
export const ANON_WAIT_MS = 5000;

/** Envelope the supervisor relays: to one worker, or to all but the sender when `to` is absent. */
export interface Forward {
  t: "fwd";
  to?: number;
  payload: { t: "authfail"; keys: string[]; seq: number };
}

/** Worker -> supervisor messages of this module. */
export type SiteMessage =
  | Forward
  | { t: "seen"; items: Sighting[] }
  | { t: "anon"; d: string; seq: number };

/** Whether `m` is a relayed failed-hello notice (the supervisor counts bans from them). */
export function isAuthFailure(m: unknown): m is Forward {
  const f = m as Forward;
  return typeof m === "object" && m !== null && f.t === "fwd" && typeof f.payload === "object" && f.payload?.t === "authfail" && Array.isArray(f.payload.keys) && typeof f.payload.seq === "number";
}

/** The worker's side. */
export class SiteLink {
  private items: Sighting[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private seq = 0;
  private readonly relays = new Waiters<number>();
  private readonly anons = new Waiters<number>();
  private readonly anonResults = new Map<number, boolean>();

  /**
   * `send` reaches the supervisor; `direct`, when there is no supervisor (a worker run alone),
   * records sightings and identities itself.
   */
  constructor(
    private readonly workerId: number,
    private readonly send: (m: SiteMessage) => void,
    private readonly direct: { apply(items: Sighting[]): void; createIdentity(id: string): void } | null,
  ) {}

  /** `deviceId` was welcomed on connection `connId` at `at`. */
  connected(deviceId: string, hardwareId: string | null, connId: string, at: number): void {
    this.push([deviceId, hardwareId, connId, this.workerId, at, null]);
  }

  /** Connection `connId` of `deviceId` closed for `reason`; its last traffic was at `lastSeen`. */
  disconnected(deviceId: string, connId: string, reason: string, lastSeen: number): void {
    this.push([deviceId, null, connId, this.workerId, lastSeen, reason]);
  }

  private lastFlush = 0;

  private push(s: Sighting): void {
    this.items.push(s);
    if (this.timer) return;
    // Quiet: at the end of this event-loop turn. Busy: at most every SIGHTINGS_EVERY_MS.
    const wait = this.lastFlush + SIGHTINGS_EVERY_MS - Date.now();
    this.timer = wait > 0 ? setTimeout(() => this.flush(), wait) : (setImmediate(() => this.flush()) as unknown as ReturnType<typeof setTimeout>);
  }

  /** Sends the sightings collected so far. */
  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      clearImmediate(this.timer as unknown as ReturnType<typeof setImmediate>);
    }
    this.timer = null;
    this.lastFlush = Date.now();
    if (this.items.length === 0) return;
    const items = this.items;
    this.items = [];
    if (this.direct) this.direct.apply(items);
    else this.send({ t: "seen", items });
  }

  /** Records a new anonymous identity; resolves once the supervisor committed it. */
  async createAnonymous(id: string): Promise<void> {
    if (this.direct) return this.direct.createIdentity(id);
    const seq = ++this.seq;
    const done = this.anons.wait(seq, ANON_WAIT_MS);
    this.send({ t: "anon", d: id, seq });
    if (!(await done) || !this.anonResults.get(seq)) {
      this.anonResults.delete(seq);
      throw new Error("the supervisor did not record the identity (see its log)");
    }
    this.anonResults.delete(seq);
  }

  /** The supervisor answered an `anon` request. */
  anonDone(seq: number, ok: boolean): void {
    this.anonResults.set(seq, ok);
    this.anons.signal(seq);
  }

  /**
   * Tells the other workers about a failed hello. Resolves once the supervisor relayed it (at
   * most {@link RELAY_WAIT_MS}), with whether it did (it then counts the bans).
   */
  announceAuthFailure(keys: string[]): Promise<boolean> {
    if (this.direct) return Promise.resolve(false);
    const seq = ++this.seq;
    const relayed = this.relays.wait(seq, RELAY_WAIT_MS);
    this.send({ t: "fwd", payload: { t: "authfail", keys, seq } });
    return relayed;
  }

  /** The supervisor relayed failed-hello notice `seq`. */
  relayed(seq: number): void {
    this.relays.signal(seq);
  }
}
