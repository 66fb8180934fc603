/**
 * A raw TCP client for hostile scenarios: writes arbitrary bytes (with backpressure, see
 * raw-socket.ts), keeps what the gateway sends, parses it as NDJSON.
 */
import { RawSocket, type RawSocketOptions } from "./raw-socket.ts";
import { ERROR_CODES as PROTOCOL_ERROR_CODES } from "../../../src/protocol/frames.ts";

/** Options for {@link RawConn.connect}. */
export interface RawOptions extends RawSocketOptions {
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

/** One raw connection speaking the line protocol. */
export class RawConn extends RawSocket {
  /** Parsed frames received. */
  readonly frames: Record<string, any>[] = [];
  /** Lines that were not valid UTF-8 JSON objects with a known `op` (protocol violations by the gateway). */
  readonly badLines: string[] = [];
  /** Error codes received, in order. */
  readonly errors: string[] = [];
  /** When the first error frame arrived. */
  firstErrorAt = 0;
  private tail = new Uint8Array(0);
  private frameWaiters: { pred: (f: Record<string, any>) => boolean; resolve: (f: Record<string, any> | null) => void }[] = [];
  private constructor(private readonly opts: RawOptions) {
    super();
  }

  /** Opens a connection; rejects when the connect fails. */
  static connect(opts: RawOptions): Promise<RawConn> {
    return RawSocket.open(new RawConn(opts), opts);
  }

  protected onBytes(d: Uint8Array): void {
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

  protected onClosed(): void {
    for (const w of this.frameWaiters.splice(0)) w.resolve(null);
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
}
