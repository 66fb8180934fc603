/**
 * The transport under the hostile scenarios' raw clients (NDJSON in raw.ts, MQTT in
 * mqtt-raw.ts): a Bun TCP connection that writes arbitrary bytes with backpressure (what the
 * kernel does not take goes out on drain, in order), records when and how it ended, and hands
 * what the gateway sends to the subclass's {@link RawSocket.onBytes}.
 */
import type { Socket } from "bun";

/** Where a raw connection goes. */
export interface RawSocketOptions {
  host?: string;
  port: number;
  /** Source address (an IP literal in 127.0.0.0/8), so the gateway sees a distinct client. */
  localAddress?: string;
}

/** A raw connection; subclasses parse what arrives. */
export abstract class RawSocket {
  socket!: Socket<undefined>;
  readonly openedAt = performance.now();
  connectedAt = 0;
  closedAt = 0;
  closed = false;
  /** Bytes written by the kernel so far. */
  written = 0;
  /** Bytes received. */
  received = 0;
  private queue: Uint8Array[] = [];
  private queued = 0;
  private closeWaiters: (() => void)[] = [];
  private drainWaiters: (() => void)[] = [];

  /** Connects `c` as `opts` says; rejects when the connect fails. */
  protected static async open<T extends RawSocket>(c: T, opts: RawSocketOptions): Promise<T> {
    c.socket = await Bun.connect({
      hostname: opts.host ?? "127.0.0.1",
      port: opts.port,
      // Honoured by Bun with IP literals, missing from its public types.
      ...(opts.localAddress ? ({ localAddress: opts.localAddress } as object) : {}),
      socket: {
        data: (_s, d) => {
          c.onBytes(d);
          c.received += d.length;
        },
        drain: () => c.flush(),
        close: () => c.onClose(),
        error: () => c.onClose(),
        connectError: () => c.onClose(),
      },
    });
    c.connectedAt = performance.now();
    return c;
  }

  /** What the gateway sent (`received` counts the bytes before this chunk). */
  protected abstract onBytes(d: Uint8Array): void;

  /** The connection ended (once); subclasses release their waiters here. */
  protected onClosed(): void {}

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.closedAt = performance.now();
    for (const w of this.closeWaiters.splice(0)) w();
    this.onClosed();
    for (const w of this.drainWaiters.splice(0)) w();
  }

  /** Queues bytes and writes what the kernel takes; the rest goes out on drain. */
  write(data: Uint8Array | string): void {
    if (this.closed) return;
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    if (this.queue.length === 0) {
      const n = this.socket.write(bytes);
      if (n > 0) this.written += n;
      if (n >= bytes.length) return;
      this.queue.push(bytes.subarray(Math.max(0, n)));
      this.queued += bytes.length - Math.max(0, n);
      return;
    }
    this.queue.push(bytes);
    this.queued += bytes.length;
  }

  /** Bytes waiting in this client's queue. */
  get pending(): number {
    return this.queued;
  }

  private flush(): void {
    while (this.queue.length > 0 && !this.closed) {
      const head = this.queue[0]!;
      const n = this.socket.write(head);
      if (n > 0) {
        this.written += n;
        this.queued -= n;
      }
      if (n < head.length) {
        if (n > 0) this.queue[0] = head.subarray(n);
        return;
      }
      this.queue.shift();
    }
    if (this.queue.length === 0) for (const w of this.drainWaiters.splice(0)) w();
  }

  /** Resolves when everything queued was written (or the connection closed). */
  drained(): Promise<void> {
    if (this.queue.length === 0 || this.closed) return Promise.resolve();
    return new Promise((r) => this.drainWaiters.push(r));
  }

  /** Resolves true when the connection closes within `timeoutMs`, else false. */
  waitClosed(timeoutMs: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  /**
   * Writes `chunks` in order, sleeping `pausesMs[i]` (after draining) before chunk i when set;
   * stops when the connection closes. Returns the bytes handed over.
   */
  async writeChunks(chunks: Uint8Array[], pausesMs: number[]): Promise<number> {
    let bytes = 0;
    for (let i = 0; i < chunks.length && !this.closed; i++) {
      if (pausesMs[i]) {
        await this.drained();
        await Bun.sleep(pausesMs[i]!);
      }
      this.write(chunks[i]!);
      bytes += chunks[i]!.length;
    }
    return bytes;
  }

  /** Graceful close (FIN). */
  end(): void {
    if (!this.closed) this.socket.end();
  }

  /** Abortive close. */
  terminate(): void {
    if (!this.closed) this.socket.terminate();
  }
}
