/**
 * A raw TCP client for hostile scenarios: writes arbitrary bytes (with backpressure), keeps
 * what the gateway sends, parses it as NDJSON and records when and how the connection ended.
 */
import type { Socket } from "bun";
import { ERROR_CODES as PROTOCOL_ERROR_CODES } from "../../../src/protocol/frames.ts";

/** Options for {@link RawConn.connect}. */
export interface RawOptions {
  host?: string;
  port: number;
  /** Source address (an IP literal in 127.0.0.0/8), so the gateway sees a distinct client. */
  localAddress?: string;
  /** Keep at most this many received bytes (the rest is counted, not kept). Default 64 KiB. */
  keepBytes?: number;
  /** Called for each complete line received. */
  onLine?: (line: string, conn: RawConn) => void;
}

/** Error codes the device protocol defines (`error` frames must carry one of these). */
export const ERROR_CODES: ReadonlySet<string> = new Set(PROTOCOL_ERROR_CODES);

/** Ops the gateway may send. */
export const GATEWAY_OPS = new Set(["welcome", "cmd", "ack", "pong", "error"]);

const dec = new TextDecoder("utf-8", { fatal: true });

/** One raw connection. */
export class RawConn {
  socket!: Socket<undefined>;
  readonly openedAt = performance.now();
  connectedAt = 0;
  closedAt = 0;
  closed = false;
  /** Bytes written by the kernel so far. */
  written = 0;
  /** Bytes received. */
  received = 0;
  /** Parsed frames received. */
  readonly frames: Record<string, any>[] = [];
  /** Lines that were not valid UTF-8 JSON objects with a known `op` (protocol violations by the gateway). */
  readonly badLines: string[] = [];
  /** Error codes received, in order. */
  readonly errors: string[] = [];
  /** When the first error frame arrived. */
  firstErrorAt = 0;
  private chunks: Uint8Array[] = [];
  private tail = new Uint8Array(0);
  private queue: Uint8Array[] = [];
  private queued = 0;
  private closeWaiters: (() => void)[] = [];
  private frameWaiters: { pred: (f: Record<string, any>) => boolean; resolve: (f: Record<string, any> | null) => void }[] = [];
  private drainWaiters: (() => void)[] = [];
  private constructor(private readonly opts: RawOptions) {}

  /** Opens a connection; rejects when the connect fails. */
  static async connect(opts: RawOptions): Promise<RawConn> {
    const c = new RawConn(opts);
    c.socket = await Bun.connect({
      hostname: opts.host ?? "127.0.0.1",
      port: opts.port,
      // Honoured by Bun with IP literals, missing from its public types.
      ...(opts.localAddress ? ({ localAddress: opts.localAddress } as object) : {}),
      socket: {
        data: (_s, d) => c.onData(d),
        drain: () => c.flush(),
        close: () => c.onClose(),
        error: () => c.onClose(),
        connectError: () => c.onClose(),
      },
    });
    c.connectedAt = performance.now();
    return c;
  }

  private onData(d: Uint8Array): void {
    this.received += d.length;
    let buf = d;
    if (this.tail.length > 0) {
      buf = new Uint8Array(this.tail.length + d.length);
      buf.set(this.tail);
      buf.set(d, this.tail.length);
    }
    let start = 0;
    let i: number;
    while ((i = buf.indexOf(10, start)) >= 0) {
      this.onLine(buf.subarray(start, i));
      start = i + 1;
    }
    const rest = buf.subarray(start);
    // The gateway never sends lines longer than max_frame_bytes; cap what is kept anyway.
    this.tail = rest.length > (this.opts.keepBytes ?? 65536) * 4 ? new Uint8Array(0) : new Uint8Array(rest);
  }

  private onLine(bytes: Uint8Array): void {
    let text: string;
    try {
      text = dec.decode(bytes);
    } catch {
      this.badLines.push(`<invalid UTF-8, ${bytes.length} bytes>`);
      return;
    }
    let f: any;
    try {
      f = JSON.parse(text);
    } catch {
      this.badLines.push(text.slice(0, 200));
      return;
    }
    if (typeof f !== "object" || f === null || !GATEWAY_OPS.has(f.op) || (f.op === "error" && !ERROR_CODES.has(f.code))) {
      this.badLines.push(text.slice(0, 200));
      return;
    }
    if (this.frames.length < 1000) this.frames.push(f);
    if (f.op === "error") {
      this.errors.push(f.code);
      if (!this.firstErrorAt) this.firstErrorAt = performance.now();
    }
    this.opts.onLine?.(text, this);
    for (let k = 0; k < this.frameWaiters.length; k++) {
      const w = this.frameWaiters[k]!;
      if (w.pred(f)) {
        this.frameWaiters.splice(k, 1);
        w.resolve(f);
        break;
      }
    }
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.closedAt = performance.now();
    for (const w of this.closeWaiters.splice(0)) w();
    for (const w of this.frameWaiters.splice(0)) w.resolve(null);
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

  /** The first frame (already received or future) matching `pred`, or null on timeout/close. */
  waitFrame(pred: (f: Record<string, any>) => boolean, timeoutMs: number): Promise<Record<string, any> | null> {
    const found = this.frames.find(pred);
    if (found) return Promise.resolve(found);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => {
      const w = {
        pred,
        resolve: (f: Record<string, any> | null) => {
          clearTimeout(t);
          resolve(f);
        },
      };
      const t = setTimeout(() => {
        const i = this.frameWaiters.indexOf(w);
        if (i >= 0) this.frameWaiters.splice(i, 1);
        resolve(null);
      }, timeoutMs);
      this.frameWaiters.push(w);
    });
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
