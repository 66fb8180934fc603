/**
 * A simulated device of the load tool and the byte-level I/O of its connection: newline-framed
 * input split into lines across chunks, and output the kernel did not take yet kept in order
 * until the socket drains. Used by {@link Fleet} (pacing, retries, timing) and by the device
 * protocols (`line-protocol.ts`, `mqtt-protocol.ts`), which hold the wire logic.
 */
import type { Socket } from "bun";

export type DevState = "idle" | "queued" | "connecting" | "open" | "waiting" | "stopped";

/** One connection attempt of a device; stale attempts are recognised by identity. */
export interface Attempt {
  d: Dev;
  /** The gateway sent an error frame explaining the close (counted already). */
  explained: boolean;
  retryAfter: number | undefined;
  /** Per-connection state of the device protocol (the MQTT decoder and packet ids), or null. */
  codec: unknown;
}

export interface Dev {
  n: number;
  hw: string;
  /** The opening bytes (hello line, MQTT CONNECT), built once. */
  hello: string | Buffer | null;
  state: DevState;
  attempt: Attempt | null;
  socket: Socket<Attempt> | null;
  /** Consecutive failed attempts. */
  failures: number;
  firstStartedAt: number;
  attemptStartedAt: number;
  everWelcomed: boolean;
  keepaliveMs: number;
  lastSentAt: number;
  /** Unacked pubs of the closed loop. */
  inflight: number;
  /** Unterminated input (bytes after the last newline). */
  rest: Buffer | null;
  /** Output the kernel did not take yet. */
  out: Buffer | null;
}

/** Device number `n` with hardware id `hw`, not connected yet. */
export function newDev(n: number, hw: string): Dev {
  return {
    n,
    hw,
    hello: null,
    state: "idle",
    attempt: null,
    socket: null,
    failures: 0,
    firstStartedAt: 0,
    attemptStartedAt: 0,
    everWelcomed: false,
    keepaliveMs: 60_000,
    lastSentAt: 0,
    inflight: 0,
    rest: null,
    out: null,
  };
}

/** Forgets the device's socket and closes it (it may be closed already). */
export function dropSocket(d: Dev): void {
  const s = d.socket;
  d.socket = null;
  try {
    s?.end();
  } catch {
    // already closed
  }
}

/** Writes `data` to the device's socket, behind any output still waiting for a drain. */
export function writeOut(d: Dev, data: string | Buffer): void {
  const s = d.socket;
  if (!s) return;
  if (d.out) {
    d.out = Buffer.concat([d.out, typeof data === "string" ? Buffer.from(data) : data]);
    return;
  }
  const n = s.write(data);
  if (n < data.length) {
    const bytes = typeof data === "string" ? Buffer.from(data) : data;
    if (n < bytes.length) d.out = Buffer.from(bytes.subarray(Math.max(0, n)));
  }
}

/** The socket can take more: writes what was waiting. */
export function drainOut(d: Dev, s: Socket<Attempt>): void {
  if (!d.out) return;
  const n = s.write(d.out);
  d.out = n >= d.out.length ? null : d.out.subarray(Math.max(0, n));
}

/** The complete lines of `chunk` (after what was left over before); keeps the unterminated rest. */
export function takeLines(d: Dev, chunk: Buffer): string[] {
  let data = chunk;
  if (d.rest) {
    data = Buffer.concat([d.rest, chunk]);
    d.rest = null;
  }
  const last = data.lastIndexOf(10);
  if (last < 0) {
    d.rest = Buffer.from(data);
    return [];
  }
  if (last < data.length - 1) d.rest = Buffer.from(data.subarray(last + 1));
  return data.toString("utf8", 0, last).split("\n");
}
