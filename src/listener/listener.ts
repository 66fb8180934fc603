/**
 * The device listener: accepts TCP connections (SO_REUSEPORT, so several worker processes
 * share the port), enforces the connection limit, and hands each socket to a connection made by
 * its {@link ConnectionFactory} (the line protocol's {@link DeviceConnection} by default; MQTT
 * has its own). A one-second sweep closes connections past their hello or keepalive deadline
 * (own timestamps; Bun socket timeouts are not relied upon).
 */
import type { Socket, TCPSocketListener } from "bun";
import { DeviceConnection, CLOSE_FLUSH_MS, RETRY_AFTER_MS, type SocketLike } from "../session/connection.ts";
import type { DeviceSession } from "../session/device-session.ts";
import type { SessionContext } from "../session/context.ts";
import { encodeFrame, errorFrame } from "../protocol/frames.ts";
import { AcceptLimiter } from "./accept-limiter.ts";
import { fdLimit } from "./fd-limit.ts";
import { JunkCollector } from "./junk-gc.ts";
import { BurstCollector, shrinkHeap } from "./burst-gc.ts";
import { floodGuard } from "./flood-wiring.ts";
import { readdirSync } from "node:fs";
import { bunTlsOptions, type TlsFiles } from "./tls-config.ts";
import { certificateNames } from "../auth/cert-identity.ts";

export type { TlsFiles } from "./tls-config.ts";

/** Connections closed per slice when many expire at once. */
export const CLOSE_SLICE = 256;
/** Descriptors kept free before accepting pauses. */
export const FD_HEADROOM = 32;
/** How long accepting pauses when descriptors run out, in ms. */
export const EMFILE_PAUSE_MS = 250;

/**
 * Descriptors open in this process. Reading /proc itself needs a descriptor: when that fails,
 * the process is out of them.
 */
export function openDescriptors(): number {
  try {
    return readdirSync("/proc/self/fd").length;
  } catch {
    return Number.MAX_SAFE_INTEGER;
  }
}

/** Options for {@link startListener}. */
export interface ListenerOptions {
  host: string;
  port: number;
  /** Connections this process accepts at most; more get `server_busy`. */
  maxConnections: number;
  /** New connections per second per source address; 0 = unlimited. */
  acceptRatePerIp: number;
  /** New connections per second in this process; 0 = unlimited. */
  acceptRateTotal: number;
  /**
   * Per-address refusals within one second (in this process) after which the kernel drops
   * that address's new connections for `floodBlockMs`; 0 = never. Needs `acceptRatePerIp`.
   */
  floodThreshold: number;
  floodBlockMs: number;
  /** Serve TLS with these PEM contents instead of plain TCP. */
  tls?: TlsFiles;
  /** Prefix of this listener's own metrics (`<prefix>connections`, `<prefix>accepts_total`). Default `owsla_`. */
  metricPrefix?: string;
  /** The config key of the port, named when it cannot be bound. Default `device.port`. */
  portKey?: string;
}

/** Why a socket was refused at accept. */
export type RefusalReason = "max_connections" | "banned_address" | "accept_rate_per_ip" | "accept_rate_total";

/** Makes the connections of one protocol, and says "no" in that protocol at accept time. */
export interface ConnectionFactory<C extends DeviceSession> {
  create(socket: SocketLike, ctx: SessionContext): C;
  /**
   * Refuses a just-accepted socket (limit, ban, rate; `reason` as counted in metrics). Either
   * ends it and returns null, or returns a connection (never counted among the listener's) that
   * says no in the protocol's words once the peer has spoken, then closes.
   */
  refuse(socket: SocketLike & { end(): void }, code: "server_busy" | "rate_limited", message: string, retryAfterMs: number, reason: RefusalReason): C | null;
}

/** The line protocol's connections: an error frame says why a socket is refused. */
export const LINE_PROTOCOL: ConnectionFactory<DeviceConnection> = {
  create: (socket, ctx) => new DeviceConnection(socket, ctx),
  refuse(socket, code, message, retryAfterMs) {
    socket.write(encodeFrame(errorFrame(code, message, retryAfterMs)));
    socket.end();
    return null;
  },
};

/** A running device listener. */
export interface DeviceListener<C extends DeviceSession = DeviceConnection> {
  /** The bound port (useful with port 0). */
  readonly port: number;
  /** Open connections (any state). */
  readonly connections: Set<C>;
  /** Stops accepting new connections (existing ones stay). */
  stopAccepting(): void;
  /**
   * Applies reloaded settings: the connection limit, and new TLS files (when TLS is on), with a
   * new listening socket on the same port that replaces the old one; open connections stay.
   * Throws (keeping the old socket) when the new one cannot be opened, e.g. a bad certificate.
   */
  reload(o: { maxConnections: number; tls?: TlsFiles }): void;
  /** Closes everything now. */
  close(): void;
}

/** Binds the port and serves the protocol of `factory` (the line protocol by default). */
export function startListener<C extends DeviceSession = DeviceConnection>(
  opts: ListenerOptions,
  ctx: SessionContext,
  held: { readonly size: number },
  factory: ConnectionFactory<C> = LINE_PROTOCOL as unknown as ConnectionFactory<C>,
): DeviceListener<C> {
  type Sock = Socket<C | null>;
  const connections = new Set<C>();
  const { metrics, log } = ctx;
  const prefix = opts.metricPrefix ?? "owsla_";
  metrics.gauge(`${prefix}connections`, () => connections.size);
  metrics.gauge("owsla_devices_held", () => held.size);
  metrics.gauge("owsla_auth_bans_active", () => ctx.auth.bans.activeBans());
  const limiter = new AcceptLimiter(opts.acceptRatePerIp, opts.acceptRateTotal);
  const junk = new JunkCollector(() => {
    Bun.gc(true);
    metrics.inc("owsla_dropped_bytes_gc_total");
  });
  const guard = floodGuard(opts, () => server, ctx);
  const burst = new BurstCollector(() => {
    shrinkHeap();
    metrics.inc("owsla_burst_gc_total");
  });
  const refuse = (socket: Sock, reason: RefusalReason, code: "server_busy" | "rate_limited", message: string, retryAfterMs = RETRY_AFTER_MS) => {
    metrics.inc(`${prefix}accepts_rejected_total`, { reason });
    socket.data = null;
    socket.data = factory.refuse(socket, code, message, retryAfterMs, reason);
  };

  const listen = (port: number): TCPSocketListener<C | null> => Bun.listen<C | null>({
    hostname: opts.host,
    port,
    // Missing from Bun's public types, supported on Linux.
    ...({ reusePort: true } as object),
    // A device that half-closes (`nc -q1`) still reads: it gets the answers to what it sent.
    allowHalfOpen: true,
    ...(opts.tls ? { tls: bunTlsOptions(opts.tls) } : {}),
    socket: {
      open(socket: Sock) {
        if (connections.size >= opts.maxConnections) {
          return refuse(socket, "max_connections", "server_busy", `Gateway worker is at max_connections ${opts.maxConnections}; retry later`);
        }
        const banned = ctx.auth.bans.remaining(`ip:${socket.remoteAddress}`);
        if (banned > 0) {
          return refuse(socket, "banned_address", "rate_limited", `Too many failed logins from this address; retry in ${Math.ceil(banned / 1000)} s`, banned);
        }
        const limited = limiter.admit(socket.remoteAddress);
        if (limited) {
          if (limited === "per_ip") guard?.refused(socket.remoteAddress);
          return refuse(socket, `accept_rate_${limited}`, "rate_limited", limited === "per_ip" ? "Too many new connections from this address; retry later" : "Too many new connections; retry later");
        }
        const conn = factory.create(socket, ctx);
        conn.handshaken = !opts.tls;
        socket.data = conn;
        connections.add(conn);
        metrics.inc(`${prefix}accepts_total`);
      },
      data(socket: Sock, data: Buffer) {
        const conn = socket.data;
        if (!conn) return;
        conn.onData(data);
        if (conn.done) junk.add(data.length);
      },
      handshake(socket: Sock, success: boolean) {
        const conn = socket.data;
        if (!conn) return;
        // With a CRL, a revoked certificate reports success but not `authorized` (Bun 1.4.5).
        if (success && opts.tls?.clientCa && !(socket as unknown as { authorized?: boolean }).authorized) success = false;
        if (success) {
          conn.handshaken = true;
          if (opts.tls?.clientCa) conn.certNames = certificateNames(socket as never);
          conn.onDrain();
        } else {
          metrics.inc("owsla_tls_handshake_failures_total");
          conn.closeReason ??= "socket_error";
          // Never serve a connection whose certificate failed verification.
          socket.terminate();
        }
      },
      end(socket: Sock) {
        const conn = socket.data;
        if (conn) conn.onEnd();
        else socket.end();
      },
      drain(socket: Sock) {
        socket.data?.onDrain();
      },
      close(socket: Sock) {
        const conn = socket.data;
        if (!conn) return;
        connections.delete(conn);
        conn.onClosed();
      },
      error(socket: Sock, err: Error) {
        const conn = socket.data;
        if (conn) conn.closeReason ??= "socket_error";
        log.debug("Device socket error", { err });
      },
    },
  });
  let server: TCPSocketListener<C | null> | null;
  try {
    server = listen(opts.port);
  } catch (e) {
    const msg = (e as Error).message;
    if (opts.tls && /PEM|SSL|X509|certificate/i.test(msg)) {
      throw new Error(`Cannot listen for devices on ${opts.host}:${opts.port} with the TLS files: ${msg}; check that device.tls_cert and device.tls_key are a matching PEM certificate and key`);
    }
    throw new Error(`Cannot listen for devices on ${opts.host}:${opts.port}: ${msg}. Another program may hold the port (or one without SO_REUSEPORT); stop it or set ${opts.portKey ?? "device.port"}`);
  }
  const boundPort = server.port;
  let accepting = true;
  let pausedUntil = 0;

  // Expired connections are closed in slices, yielding to I/O between them: closing thousands
  // at once (a slowloris wave hitting its deadline) would stall honest devices' welcomes.
  let toClose: { c: C; why: "hello_timeout" | "hello_timeout_tls" | "keepalive_timeout" | "flush_timeout" }[] = [];
  const closeSlice = () => {
    const slice = toClose.splice(0, CLOSE_SLICE);
    for (const { c, why } of slice) {
      if (why === "hello_timeout_tls") {
        // TLS handshake never finished: nothing can be written to it, cut it now.
        c.closeReason ??= "hello_timeout";
        c.terminate();
      } else if (why === "hello_timeout") {
        if (c.state === "hello") c.close("hello_timeout", "hello_timeout", `No valid hello within ${ctx.limits.helloTimeoutMs} ms of connecting`);
      } else if (why === "keepalive_timeout") {
        if (c.state === "open") c.close("keepalive_timeout", "keepalive_timeout", `Nothing received for ${ctx.limits.keepaliveS * 1.5} s (1.5 x keepalive); send ping to stay connected`);
      } else {
        c.terminate();
      }
    }
    if (toClose.length > 0) setImmediate(closeSlice);
  };
  const sweep = setInterval(() => {
    try {
      const now = Date.now();
      const helloDeadline = now - ctx.limits.helloTimeoutMs;
      const defaultIdleMs = ctx.limits.keepaliveS * 1500;
      const due: typeof toClose = [];
      for (const c of connections) {
        if (c.state === "hello" && c.acceptedAt < helloDeadline) due.push({ c, why: c.handshaken ? "hello_timeout" : "hello_timeout_tls" });
        else if (c.state === "open" && c.lastActivity < now - (c.idleTimeoutMs ?? defaultIdleMs)) due.push({ c, why: "keepalive_timeout" });
        else if (c.state === "closing" && c.closingSince && c.closingSince < now - CLOSE_FLUSH_MS) due.push({ c, why: "flush_timeout" });
      }
      const idle = toClose.length === 0;
      toClose = due;
      if (idle && due.length > 0) closeSlice();
      guard?.expire();
      burst.tick(metrics.get("owsla_welcomes_total"));
      guardDescriptors();
    } catch (e) {
      log.error("Connection sweep failed; retrying in 1 s", { err: e as Error });
    }
  }, 1000);

  /**
   * Out of descriptors, the kernel keeps the listening socket readable and every accept fails
   * (EMFILE): the event loop would spin. Stop listening (other workers keep accepting on the
   * shared port) and try again after a pause, like Ranch's acceptor sleeping on emfile.
   */
  const guardDescriptors = () => {
    // The limit can change at run time (prlimit); reading it is one small file. When even that
    // read fails, the process is out of descriptors.
    fdLimitNow = fdLimit(0);
    // Reading /proc/self/fd costs a directory walk: only near the limit.
    if (accepting && fdLimitNow > 0 && connections.size < fdLimitNow - 512) return;
    const now = Date.now();
    if (!accepting) {
      if (now < pausedUntil || stopped) return;
      if (openDescriptors() >= fdLimitNow - FD_HEADROOM) {
        pausedUntil = now + EMFILE_PAUSE_MS;
        return;
      }
      try {
        server = listen(boundPort);
        accepting = true;
        guard?.reinstall();
        log.info("Accepting devices again: descriptors are available");
      } catch (e) {
        pausedUntil = now + EMFILE_PAUSE_MS;
        log.warn("Cannot listen again yet; retrying", { err: e as Error });
      }
      return;
    }
    if (openDescriptors() >= fdLimitNow - FD_HEADROOM) {
      accepting = false;
      pausedUntil = now + EMFILE_PAUSE_MS;
      server?.stop(false);
      server = null;
      metrics.inc("owsla_accept_pauses_total");
      log.warn("Out of file descriptors: not accepting new devices on this worker for now; raise LimitNOFILE or lower device.max_connections", {
        connections: connections.size,
        fd_limit: fdLimitNow,
      });
    }
  };
  let fdLimitNow = fdLimit();
  let stopped = false;

  return {
    get port() {
      return boundPort;
    },
    connections,
    reload(o) {
      opts.maxConnections = o.maxConnections;
      if (!opts.tls || !o.tls) return;
      const previous = opts.tls;
      opts.tls = o.tls;
      if (!server) return; // paused or stopped: the next listen() uses the new files
      let next: typeof server;
      try {
        next = listen(boundPort);
      } catch (e) {
        opts.tls = previous;
        throw new Error(`Cannot listen with the reloaded TLS files: ${(e as Error).message}; still serving the previous certificate`);
      }
      server.stop(false);
      server = next;
      guard?.reinstall();
    },
    stopAccepting() {
      stopped = true;
      server?.stop(false);
      server = null;
    },
    close() {
      stopped = true;
      clearInterval(sweep);
      server?.stop(true);
      server = null;
    },
  };
}
