/** A device speaking the line protocol over a real TCP socket; for tests and examples. */
import type { Socket } from "bun";

/** A frame received from the gateway. */
export type Frame = Record<string, any>;

/** A test device connection. */
export class TestDevice {
  readonly frames: Frame[] = [];
  closed = false;
  /** Called with every frame received (after it is recorded in `frames`). */
  onFrame?: (f: Frame) => void;
  private buf = "";
  private waiters: { pred: (f: Frame) => boolean; resolve: (f: Frame) => void; reject: (e: Error) => void; timer: Timer }[] = [];
  private closeWaiters: (() => void)[] = [];
  private socket!: Socket<undefined>;
  private pending: Uint8Array[] = [];
  private seen = 0;

  /** Connects to the gateway at `port` (from `localAddress` when given, an IP literal). */
  static async connect(port: number, host = "127.0.0.1", tls?: Record<string, unknown> | boolean, localAddress?: string): Promise<TestDevice> {
    const d = new TestDevice();
    d.socket = await Bun.connect({
      hostname: host,
      port,
      ...(tls ? { tls } : {}),
      // Source address (IP literal); missing from Bun's public types.
      ...(localAddress ? ({ localAddress } as object) : {}),
      socket: {
        data: (_s, data) => d.onData(data),
        drain: () => d.flush(),
        handshake: () => d.flush(),
        close: () => d.onClose(),
        error: () => d.onClose(),
      },
    });
    return d;
  }

  private onData(data: Buffer): void {
    this.buf += data.toString("utf8");
    let i: number;
    while ((i = this.buf.indexOf("\n")) >= 0) {
      const line = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 1);
      const f = JSON.parse(line) as Frame;
      this.frames.push(f);
      this.onFrame?.(f);
      const w = this.waiters.findIndex((w) => w.pred(f));
      if (w >= 0) {
        const [waiter] = this.waiters.splice(w, 1);
        clearTimeout(waiter!.timer);
        waiter!.resolve(f);
      }
    }
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.closeWaiters.splice(0)) w();
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new Error(`Connection closed while waiting for a frame; got ${JSON.stringify(this.frames.slice(-3))}`));
    }
  }

  /** Sends an object as one JSON line, or a raw string/bytes as is (queued while the socket is busy). */
  send(frame: object | string | Uint8Array): void {
    const text = typeof frame === "string" || frame instanceof Uint8Array ? frame : JSON.stringify(frame) + "\n";
    const data = typeof text === "string" ? new TextEncoder().encode(text) : text;
    this.pending.push(data);
    this.flush();
  }

  private flush(): void {
    while (this.pending.length > 0 && !this.closed) {
      const head = this.pending[0]!;
      const n = this.socket.write(head);
      if (n >= head.length) this.pending.shift();
      else {
        if (n > 0) this.pending[0] = head.subarray(n);
        return;
      }
    }
  }

  /** The next frame (not yet returned by `next`) matching `pred`, waiting up to `timeoutMs`. */
  next(pred: (f: Frame) => boolean = () => true, timeoutMs = 5000): Promise<Frame> {
    const found = this.frames.find((f) => pred(f));
    if (found) {
      this.frames.splice(this.frames.indexOf(found), 1);
      return Promise.resolve(found);
    }
    if (this.closed) return Promise.reject(new Error(`Connection closed; last frames ${JSON.stringify(this.frames.slice(-3))}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.timer !== timer);
        reject(new Error(`No matching frame within ${timeoutMs} ms; unclaimed frames: ${JSON.stringify(this.frames.slice(-5))}`));
      }, timeoutMs);
      this.waiters.push({
        pred,
        resolve: (f) => {
          this.frames.splice(this.frames.indexOf(f), 1);
          resolve(f);
        },
        reject,
        timer,
      });
    });
  }

  /** Next frame with `op`. */
  op(op: string, timeoutMs = 5000): Promise<Frame> {
    return this.next((f) => f.op === op, timeoutMs);
  }

  /** Resolves when the gateway closed the connection (rejects after `timeoutMs`). */
  waitClosed(timeoutMs = 5000): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`Connection still open after ${timeoutMs} ms`)), timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Sends hello and returns the welcome frame (throws on an error frame). */
  async hello(fields: Record<string, unknown>): Promise<Frame> {
    this.send({ op: "hello", v: 1, ...fields });
    const f = await this.next((f) => f.op === "welcome" || f.op === "error");
    if (f.op === "error") throw new Error(`hello refused: ${f.code}: ${f.message}`);
    return f;
  }

  /** Closes the socket. */
  close(): void {
    this.socket.end();
  }
}
