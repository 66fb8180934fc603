/**
 * The local registry: which connection holds which device in this worker. One writer (the
 * worker's event loop); the newest connection of a device wins.
 */

/** What the registry needs from a connection. */
export interface Holder {
  readonly connId: string;
}

/** Device UUID -> the connection holding it. */
export class Registry<T extends Holder> {
  private readonly byDevice = new Map<string, T>();

  /** Number of devices held. */
  get size(): number {
    return this.byDevice.size;
  }

  /** The connection holding `deviceId`, if any. */
  get(deviceId: string): T | undefined {
    return this.byDevice.get(deviceId);
  }

  /** Makes `conn` the holder of `deviceId`; returns the previous holder (to be taken over). */
  claim(deviceId: string, conn: T): T | undefined {
    const old = this.byDevice.get(deviceId);
    this.byDevice.set(deviceId, conn);
    return old === conn ? undefined : old;
  }

  /** Removes `conn` as holder of `deviceId` (no-op when a newer connection holds it). */
  release(deviceId: string, conn: T): boolean {
    if (this.byDevice.get(deviceId) !== conn) return false;
    this.byDevice.delete(deviceId);
    return true;
  }

  /** Every held device with its connection. */
  entries(): IterableIterator<[string, T]> {
    return this.byDevice.entries();
  }

  /** All held connections. */
  values(): IterableIterator<T> {
    return this.byDevice.values();
  }
}
