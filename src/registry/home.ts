/**
 * The home shard: every device id has one home worker (a hash of the id), which knows where
 * the device is connected now and which workers keep stored commands for it. Holders tell
 * the home when they welcome or lose a device; origins ask the home where to send a command.
 * So a welcome costs one message to one worker (none when the home is the holder), never a
 * broadcast, and a command takes at most two hops.
 *
 * This is pure state: no I/O. The {@link CommandRouter} does the messaging.
 */
/** The home worker of `deviceId` among `count` workers. */
export function homeOf(deviceId: string, count: number): number {
  if (count <= 1) return 0;
  // UUIDs end in 12 random (v4/v7) or hash (v5) hex digits: the last 8 spread evenly.
  const n = Number.parseInt(deviceId.slice(-8), 16);
  return Number.isFinite(n) ? n % count : 0;
}

/** Where a device is held: the worker and when it was welcomed there (ms since the epoch, with microseconds). */
export interface Location {
  worker: number;
  at: number;
}

/** What a claim asks the caller to do. */
export interface ClaimOutcome {
  /** A worker whose connection of the device is older and must close (`taken_over`). */
  takeover?: Location;
  /** Workers that keep stored commands for the device: ask each to send them to the holder. */
  flushFrom: number[];
}

/** Live locations and stored-command owners of the devices whose home is this worker. */
export class HomeShard {
  /**
   * Device id -> where it is held. `at` has microseconds (two welcomes of one device on two
   * workers can fall within one millisecond), too many digits to pack with the worker into one
   * number; a small object per held device costs about 40 bytes.
   */
  private readonly live = new Map<string, Location>();
  /** Device id -> workers that keep stored commands for it. */
  private readonly stored = new Map<string, number[]>();

  /** Devices held (on any worker) whose home this is. */
  get size(): number {
    return this.live.size;
  }

  /** Where `deviceId` is held, if anywhere. */
  locate(deviceId: string): Location | undefined {
    return this.live.get(deviceId);
  }

  /**
   * `worker` welcomed `deviceId` at `at`. The newest welcome wins: an older holder elsewhere
   * is taken over; a claim older than the current holder's is itself taken over.
   */
  claim(deviceId: string, worker: number, at: number): ClaimOutcome {
    const prev = this.locate(deviceId);
    let takeover: Location | undefined;
    if (prev && prev.worker !== worker) {
      if (prev.at > at) return { takeover: { worker, at: prev.at }, flushFrom: [] };
      takeover = { worker: prev.worker, at };
    }
    this.live.set(deviceId, { worker, at });
    return { takeover, flushFrom: this.stored.get(deviceId) ?? [] };
  }

  /** `worker` lost the connection of `deviceId` welcomed at `at` (ignored if a newer one holds it). */
  release(deviceId: string, worker: number, at: number): void {
    const v = this.live.get(deviceId);
    if (v !== undefined && v.worker === worker && v.at === at) this.live.delete(deviceId);
  }

  /** Forgets every device held by `worker` (its process is gone); returns how many. */
  dropWorker(worker: number): number {
    let n = 0;
    for (const [d, v] of this.live) {
      if (v.worker === worker) {
        this.live.delete(d);
        n++;
      }
    }
    return n;
  }

  /** `worker` keeps stored commands for `deviceId`; returns where the device is held now. */
  addStored(deviceId: string, worker: number): Location | undefined {
    const list = this.stored.get(deviceId);
    if (!list) this.stored.set(deviceId, [worker]);
    else if (!list.includes(worker)) list.push(worker);
    return this.locate(deviceId);
  }

  /** `worker` keeps no more stored commands for `deviceId`. */
  clearStored(deviceId: string, worker: number): void {
    const list = this.stored.get(deviceId);
    if (!list) return;
    const rest = list.filter((w) => w !== worker);
    if (rest.length === 0) this.stored.delete(deviceId);
    else this.stored.set(deviceId, rest);
  }
}
