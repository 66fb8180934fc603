/**
 * Worker-to-worker links on one box: every worker listens on a unix socket of its own and
 * holds one connection to every other worker (the lower id connects, the higher accepts), so
 * a command for a device held by another worker, or a takeover, never goes through the
 * supervisor or the remote broker.
 *
 * Messages are JSON objects, one per line. Messages for a peer are collected during one turn
 * of the event loop and written together (one syscall per peer per turn). A peer that is not
 * connected (starting, restarting) drops what is sent to it: `send` returns false and the
 * caller takes its fallback (store the command, resync on reconnect).
 */
import { mkdirSync, rmSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Socket, UnixSocketListener } from "bun";
import { LineDecoder } from "../protocol/line-decoder.ts";
import type { Logger } from "../log/logger.ts";

/** Longest mesh line, in bytes (a command body is at most a device frame). */
export const MESH_MAX_LINE = 8 * 1024 * 1024;
/** Delay before reconnecting to a peer that is not there (yet), in ms; doubles up to the max. */
export const MESH_RETRY_MIN_MS = 50;
export const MESH_RETRY_MAX_MS = 1000;
/** Bytes queued for one peer before the link is considered stuck and dropped. */
export const MESH_MAX_QUEUED = 64 * 1024 * 1024;

/**
 * The directory holding the workers' sockets for the gateway whose data lives in `dataDir`.
 * Unix socket paths are limited to 107 bytes, so it is a short, stable path under the system's
 * temporary directory derived from the data directory.
 */
export function meshDir(dataDir: string, gatewayId: string): string {
  const h = createHash("sha256").update(`${resolve(dataDir)}\0${gatewayId}`).digest("hex").slice(0, 16);
  return join(tmpdir(), `owsla-${h}`);
}

/** Socket path of worker `id`. */
export function meshSocketPath(dir: string, id: number): string {
  return join(dir, `w${id}.sock`);
}

/** Options for {@link Mesh}. */
export interface MeshOptions {
  /** This worker's id. */
  self: number;
  /** Number of workers (ids 0..count-1). */
  count: number;
  /** Directory of the sockets (see {@link meshDir}). */
  dir: string;
  log: Logger;
  /** A message from worker `from`. */
  onMessage(from: number, msg: Record<string, unknown>): void;
  /** A link to `peer` is up (after a (re)connect): resend what that peer must know. */
  onPeerUp(peer: number): void;
  /** The link to `peer` went down. */
  onPeerDown(peer: number): void;
}

type Side = { peer: number; decoder: LineDecoder };
type PeerSocket = Socket<Side>;

interface Peer {
  id: number;
  socket: PeerSocket | null;
  /** Lines waiting for the end of this turn. */
  lines: string[];
  /** Bytes the kernel did not take yet, in order. */
  backlog: Uint8Array[];
  backlogBytes: number;
  retryMs: number;
  timer: ReturnType<typeof setTimeout> | null;
}

const encoder = new TextEncoder();

/** One worker's links to all the others. */
export class Mesh {
  private readonly peers: Peer[];
  private server: UnixSocketListener<Side> | null = null;
  private flushScheduled = false;
  private closed = false;

  constructor(private readonly o: MeshOptions) {
    this.peers = Array.from({ length: o.count }, (_, id) => ({
      id,
      socket: null,
      lines: [],
      backlog: [],
      backlogBytes: 0,
      retryMs: MESH_RETRY_MIN_MS,
      timer: null,
    }));
  }

  /** Listens on this worker's socket and connects to the lower-numbered workers. */
  start(): void {
    const { o } = this;
    mkdirSync(o.dir, { recursive: true, mode: 0o700 });
    const path = meshSocketPath(o.dir, o.self);
    rmSync(path, { force: true });
    this.server = Bun.listen<Side>({
      unix: path,
      socket: this.handlers(null),
    });
    for (let id = 0; id < o.self; id++) this.connect(this.peers[id]!);
  }

  /** Whether the link to `peer` is up. */
  up(peer: number): boolean {
    return peer === this.o.self || this.peers[peer]?.socket != null;
  }

  /** Queues `msg` for `peer`; false when the link is down (the message is dropped). */
  send(peer: number, msg: object): boolean {
    const p = this.peers[peer];
    if (!p?.socket) return false;
    p.lines.push(JSON.stringify(msg));
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    return true;
  }

  /** Closes every link and the listening socket. */
  close(): void {
    this.closed = true;
    for (const p of this.peers) {
      if (p.timer) clearTimeout(p.timer);
      p.socket?.end();
    }
    this.server?.stop(true);
    rmSync(meshSocketPath(this.o.dir, this.o.self), { force: true });
  }

  private flush(): void {
    this.flushScheduled = false;
    for (const p of this.peers) {
      if (p.lines.length === 0) continue;
      const data = encoder.encode(p.lines.join("\n") + "\n");
      p.lines = [];
      if (!p.socket) continue;
      if (p.backlog.length > 0) this.enqueue(p, data);
      else {
        const n = p.socket.write(data);
        if (n < data.length) this.enqueue(p, data.subarray(Math.max(0, n)));
      }
    }
  }

  private enqueue(p: Peer, data: Uint8Array): void {
    p.backlog.push(data);
    p.backlogBytes += data.length;
    if (p.backlogBytes > MESH_MAX_QUEUED) {
      this.o.log.error("Worker link stuck: the peer does not read; dropping the link (it reconnects)", { peer: p.id, queued: p.backlogBytes });
      p.socket?.terminate();
    }
  }

  private drain(p: Peer): void {
    while (p.socket && p.backlog.length > 0) {
      const head = p.backlog[0]!;
      const n = p.socket.write(head);
      if (n <= 0) return;
      p.backlogBytes -= Math.min(n, head.length);
      if (n < head.length) {
        p.backlog[0] = head.subarray(n);
        return;
      }
      p.backlog.shift();
    }
  }

  private attach(p: Peer, socket: PeerSocket): void {
    if (p.socket && p.socket !== socket) p.socket.terminate();
    p.socket = socket;
    p.retryMs = MESH_RETRY_MIN_MS;
    p.lines = [];
    p.backlog = [];
    p.backlogBytes = 0;
    this.guard("onPeerUp", () => this.o.onPeerUp(p.id));
  }

  private detach(p: Peer, socket: PeerSocket): void {
    if (p.socket !== socket) return;
    p.socket = null;
    p.lines = [];
    p.backlog = [];
    p.backlogBytes = 0;
    this.guard("onPeerDown", () => this.o.onPeerDown(p.id));
    if (p.id < this.o.self) this.scheduleConnect(p);
  }

  private connect(p: Peer): void {
    if (this.closed) return;
    Bun.connect<Side>({
      unix: meshSocketPath(this.o.dir, p.id),
      socket: this.handlers(p.id),
    }).then(
      (socket) => {
        socket.write(encoder.encode(JSON.stringify({ t: "hi", from: this.o.self }) + "\n"));
        this.attach(p, socket);
      },
      () => this.scheduleConnect(p),
    );
  }

  private scheduleConnect(p: Peer): void {
    if (this.closed || p.timer) return;
    p.timer = setTimeout(() => {
      p.timer = null;
      this.connect(p);
    }, p.retryMs);
    p.retryMs = Math.min(MESH_RETRY_MAX_MS, p.retryMs * 2);
  }

  private handlers(peer: number | null) {
    return {
      open: (socket: PeerSocket) => {
        socket.data = { peer: peer ?? -1, decoder: new LineDecoder(MESH_MAX_LINE) };
      },
      data: (socket: PeerSocket, chunk: Buffer) => {
        const side = socket.data;
        for (const r of side.decoder.push(chunk)) {
          if (r.kind !== "line") {
            this.o.log.error("Worker link sent a malformed line; dropping the link", { peer: side.peer, detail: r.message });
            socket.terminate();
            return;
          }
          let msg: Record<string, unknown>;
          try {
            msg = JSON.parse(r.text) as Record<string, unknown>;
          } catch {
            this.o.log.error("Worker link sent invalid JSON; dropping the link", { peer: side.peer });
            socket.terminate();
            return;
          }
          if (side.peer < 0) {
            // Accepted side: the first line names the peer.
            const from = msg.t === "hi" ? Number(msg.from) : NaN;
            const p = Number.isInteger(from) ? this.peers[from] : undefined;
            if (!p || from <= this.o.self) {
              this.o.log.error("Unexpected connection on the worker socket; closing it", { from: String(msg.from) });
              socket.terminate();
              return;
            }
            side.peer = from;
            this.attach(p, socket);
            continue;
          }
          this.guard("onMessage", () => this.o.onMessage(side.peer, msg));
        }
      },
      drain: (socket: PeerSocket) => {
        const p = this.peers[socket.data?.peer ?? -1];
        if (p && p.socket === socket) this.drain(p);
      },
      close: (socket: PeerSocket) => {
        const p = this.peers[socket.data?.peer ?? -1];
        if (p) this.detach(p, socket);
      },
      error: (socket: PeerSocket, err: Error) => {
        this.o.log.debug("Worker link error", { peer: socket.data?.peer, err });
      },
      connectError: () => {},
    };
  }

  /** Runs a callback; an exception is logged, never thrown into the socket machinery. */
  private guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.o.log.error(`Worker link handler ${what} failed`, { err: err as Error });
    }
  }
}
