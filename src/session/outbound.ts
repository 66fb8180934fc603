/**
 * Per-connection output queue. Bun's `socket.write` does not buffer: it returns how many
 * bytes the kernel took. The rest is kept here, in order, and written from the `drain`
 * handler. The queue is bounded: past `maxBytes` the caller closes the device as a slow consumer.
 */

/** The part of a socket the queue needs. */
export interface WritableLike {
  write(data: Uint8Array): number;
}

/** Ordered, bounded output buffer for one socket. */
export class Outbound {
  /** Bytes not yet taken by the socket, in order; null while empty (most connections, most of the time). */
  private chunks: Uint8Array[] | null = null;
  private queuedBytes = 0;

  constructor(
    private readonly socket: WritableLike,
    private readonly maxBytes: number,
  ) {}

  /** Bytes waiting for the socket. */
  get queued(): number {
    return this.queuedBytes;
  }

  /**
   * Writes `data` now or queues it. Returns false when the queue would exceed `maxBytes`
   * (nothing is queued then; the caller should close the connection).
   */
  write(data: Uint8Array): boolean {
    if (this.chunks !== null) return this.enqueue(data);
    const n = this.socket.write(data);
    if (n >= data.length) return true;
    return this.enqueue(n > 0 ? data.subarray(n) : data);
  }

  /** Writes as much of the queue as the socket takes; returns true when it is empty. */
  flush(): boolean {
    const chunks = this.chunks;
    while (chunks !== null && chunks.length > 0) {
      const head = chunks[0]!;
      const n = this.socket.write(head);
      if (n <= 0) return false;
      this.queuedBytes -= Math.min(n, head.length);
      if (n < head.length) {
        chunks[0] = head.subarray(n);
        return false;
      }
      chunks.shift();
    }
    this.chunks = null;
    return true;
  }

  private enqueue(data: Uint8Array): boolean {
    if (this.queuedBytes + data.length > this.maxBytes) return false;
    (this.chunks ??= []).push(data);
    this.queuedBytes += data.length;
    return true;
  }
}
