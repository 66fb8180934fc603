/**
 * One device connection: the line-protocol state machine from accept to close.
 * hello -> open -> closing -> closed. All socket I/O goes through a bounded {@link Outbound}.
 */
import { LineDecoder } from "../protocol/line-decoder.ts";
import { encodeFrame, errorFrame, parseFrame, type DeviceFrame, type GatewayFrame, type HelloFrame, type PubFrame } from "../protocol/frames.ts";
import { connectionId, deviceUuid, freshDeviceUuid } from "../identity/identity.ts";
import { authenticateHello } from "../auth/hello-auth.ts";
import type { Command } from "../store/inbox.ts";
import { Outbound } from "./outbound.ts";
import type { SessionContext } from "./context.ts";
import type { CloseReason } from "./close-reasons.ts";
import { presenceMessage, upMessage, type Sender } from "./messages.ts";
import { UnpublishableError } from "../bridge/publisher.ts";

/** The part of a Bun socket a session uses. */
export interface SocketLike {
  write(data: Uint8Array): number;
  end(): void;
  terminate(): void;
  readonly remoteAddress: string;
}

/** Connection lifecycle. */
export type ConnState = "hello" | "open" | "closing" | "closed";

/** Time a closing connection gets to flush its last frame before it is cut, in ms. */
export const CLOSE_FLUSH_MS = 2000;

/** Retry hint sent with `server_busy`/`rate_limited`, in ms. */
export const RETRY_AFTER_MS = 1000;

/** Milliseconds since the epoch with sub-millisecond resolution; comparable across processes. */
export function wallClock(): number {
  return performance.timeOrigin + performance.now();
}

/** Text of the error frame sent to a connection replaced by a newer one of the same device. */
export const TAKEN_OVER_MESSAGE = "Another connection presented the same device identity; this one is closed";

/** A device connection. */
export class DeviceConnection {
  state: ConnState = "hello";
  readonly connId = connectionId();
  deviceId: string | null = null;
  hardwareId: string | null = null;
  readonly acceptedAt = Date.now();
  lastActivity = Date.now();
  closeReason: CloseReason | null = null;
  closingSince = 0;
  /** False until a TLS handshake completes (always true on plain TCP). */
  handshaken = true;
  /** Names of the verified TLS client certificate (CN, SANs); null without one. */
  certNames: string[] | null = null;
  /** When `welcome` was sent (high-resolution wall clock, comparable across workers). */
  welcomedAt = 0;
  /** Command ids written on this connection and not yet acked (to avoid re-sending them). */
  readonly sentCommands = new Set<string>();
  private pendingPubs = 0;
  private helloInProgress = false;
  private readonly decoder: LineDecoder;
  private readonly out: Outbound;

  constructor(
    private readonly socket: SocketLike,
    private readonly ctx: SessionContext,
  ) {
    this.decoder = new LineDecoder(ctx.limits.maxFrameBytes);
    this.out = new Outbound(socket, ctx.limits.maxOutboundBytes);
  }

  /** Whether the connection is closing or closed (re-read after calls that may close it). */
  get done(): boolean {
    return this.state === "closing" || this.state === "closed";
  }

  /** Bytes queued for this device. */
  get queuedBytes(): number {
    return this.out.queued;
  }

  /** Feeds bytes read from the socket. */
  onData(chunk: Uint8Array): void {
    if (this.state === "closing" && (this.closeReason === "frame_too_large" || this.closeReason === "bad_frame")) {
      // It keeps streaming after its error frame: stop reading at once (a 100 MB line must not
      // keep the worker busy with buffers it will drop anyway).
      this.socket.terminate();
      return;
    }
    if (this.state === "closing" || this.state === "closed") return;
    this.lastActivity = Date.now();
    for (const r of this.decoder.push(chunk)) {
      if (this.done) return;
      if (r.kind === "error") {
        this.fail(r.code, r.message);
        return;
      }
      const parsed = parseFrame(r.text);
      if (!parsed.ok) {
        if (parsed.close) this.fail(parsed.code as "bad_frame", parsed.message);
        else this.send({ op: "error", code: parsed.code, message: parsed.message, ...(parsed.ref ? { ref: parsed.ref } : {}) } as GatewayFrame);
        continue;
      }
      try {
        this.handle(parsed.frame);
      } catch (e) {
        // Hostile input must never take the worker down (e.g. a body too deep to serialise).
        this.ctx.metrics.inc("owsla_frame_errors_total");
        this.send(errorFrame("bad_frame", `Cannot process ${parsed.frame.op} frame: ${(e as Error).message}`));
      }
    }
  }

  /** The socket can take more output. */
  onDrain(): void {
    if (this.out.flush() && this.state === "closing") this.socket.end();
  }

  /** Sends a frame; closes the connection as a slow consumer when its queue is full. */
  send(frame: GatewayFrame): boolean {
    if (this.state === "closed") return false;
    if (this.out.write(encodeFrame(frame))) return true;
    this.ctx.metrics.inc("owsla_slow_consumers_total");
    this.closeReason ??= "slow_consumer";
    this.state = "closing";
    this.socket.terminate();
    return false;
  }

  /** Writes a command to the device (it stays in the inbox until the device acks it). */
  sendCommand(c: Command): boolean {
    if (this.state !== "open") return false;
    // A command can reach a connection twice (live forward and the welcome's inbox lookup):
    // write it once per connection; it is sent again only on a new connection.
    if (this.sentCommands.has(c.id)) return true;
    let body: unknown;
    try {
      body = JSON.parse(c.body);
    } catch {
      body = c.body;
    }
    const ok = this.send({ op: "cmd", id: c.id, topic: c.topic, body, corr: c.corr });
    if (ok) {
      this.sentCommands.add(c.id);
      this.ctx.metrics.inc("owsla_messages_down_total");
    }
    return ok;
  }

  /** Sends an error frame, then closes gracefully (after flushing) with `reason`. */
  close(reason: CloseReason, code?: string, message?: string, retryAfterMs?: number): void {
    if (this.state === "closing" || this.state === "closed") return;
    this.closeReason ??= reason;
    if (code) this.send(errorFrame(code as never, message ?? code, retryAfterMs));
    if (this.done) return;
    this.state = "closing";
    this.closingSince = Date.now();
    if (this.out.queued === 0) this.socket.end();
  }

  private fail(code: "bad_frame" | "frame_too_large", message: string): void {
    this.close(code, code, message);
  }

  /** Cuts the connection without flushing. */
  terminate(): void {
    this.socket.terminate();
  }

  /** The socket closed (by either side). Releases the device and records why. */
  onClosed(): void {
    if (this.state === "closed") return;
    const wasOpen = this.deviceId !== null && (this.state === "open" || this.state === "closing");
    this.state = "closed";
    const reason = this.closeReason ?? "peer_closed";
    this.closeReason = reason;
    const { ctx } = this;
    ctx.metrics.inc("owsla_closes_total", { reason });
    if (!wasOpen || !this.deviceId) return;
    const id = this.deviceId;
    ctx.registry.release(id, this);
    ctx.devices.disconnected(id, this.connId, reason).catch((err: Error) =>
      ctx.log.warn("Cannot record disconnect in the device table", { device: id, err }),
    );
    ctx.publisher.publish(presenceMessage(this.sender(), "disconnected", reason)).catch(() => {});
    if (ctx.log.enabled("debug")) ctx.log.debug("Device disconnected", { device: id, conn: this.connId, reason });
  }

  private sender(): Sender {
    return {
      gatewayId: this.ctx.gatewayId,
      deviceId: this.deviceId!,
      connId: this.connId,
      hardwareId: this.hardwareId,
      replyTo: this.ctx.replyTo,
    };
  }

  private handle(f: DeviceFrame): void {
    switch (f.op) {
      case "hello":
        this.hello(f).catch((err: Error) => {
          // Never leave a device hanging (or a rejection unhandled) on unexpected input.
          this.ctx.log.warn("Hello failed unexpectedly; closing the connection", { err, remote: this.socket.remoteAddress });
          this.close("bad_frame", "bad_frame", `Cannot process hello: ${err.message}`);
        });
        return;
      case "pub":
        return this.pub(f);
      case "ack":
        if (this.state !== "open") return this.notReady("ack");
        if (this.ctx.ackWatch.delete(`${this.deviceId}/${f.ref}`)) this.ctx.notify({ t: "acked", deviceId: this.deviceId, cmdId: f.ref });
        this.ctx.inbox.remove(this.deviceId!, f.ref).then(
          // Forget the id only once its row is gone, so the catch-up sweep does not re-send it.
          () => this.sentCommands.delete(f.ref),
          (err: Error) => this.ctx.log.warn("Cannot remove acked command; it may be sent again", { device: this.deviceId, err }),
        );
        this.ctx.metrics.inc("owsla_device_acks_total");
        return;
      case "ping":
        this.send({ op: "pong" });
        return;
      case "bye":
        this.close("bye");
        return;
    }
  }

  /**
   * Counts a failed hello against the source address (bans brute force; never against the
   * hardware id, so nobody can lock a device out without its credentials).
   * Resolves once the other workers have been told, so the device's next attempt is counted
   * with this one wherever it lands.
   */
  private async recordAuthFailure(hardwareId: string | undefined): Promise<void> {
    const { bans } = this.ctx.auth;
    const before = bans.bansTotal;
    const keys = [`ip:${this.socket.remoteAddress}`];
    for (const k of keys) bans.fail(k);
    const relay = this.ctx.cluster.announceAuthFailure(keys);
    const banned = bans.bansTotal - before;
    if (banned > 0) this.ctx.log.warn("Banned after repeated failed logins", { remote: this.socket.remoteAddress, hardware_id: hardwareId });
    if (!(await relay) && banned > 0) this.ctx.metrics.inc("owsla_auth_bans_total", undefined, banned);
  }

  private notReady(op: string): void {
    this.send(errorFrame("not_ready", `Cannot accept ${op} before welcome: send hello first`));
  }

  private async hello(f: HelloFrame): Promise<void> {
    const { ctx } = this;
    if (this.state !== "hello" || this.helloInProgress) {
      this.send(errorFrame("bad_frame", "Duplicate hello: this connection already has an identity"));
      return;
    }
    this.helloInProgress = true;
    let id: string;
    let mustPersist = false;
    const verdict = authenticateHello(ctx.auth, ctx.siteNamespace, f, this.certNames);
    if (!verdict.ok) {
      ctx.metrics.inc("owsla_auth_failures_total");
      ctx.log.debug("Device refused", { hardware_id: f.device, remote: this.socket.remoteAddress, why: verdict.message });
      await this.recordAuthFailure(f.device);
      this.close("unauthorized", "unauthorized", verdict.message);
      return;
    }
    if (f.device) {
      this.hardwareId = f.device;
      id = deviceUuid(ctx.siteNamespace, f.device);
    } else if (f.resume) {
      // Anonymous identities are random (v4); any other UUID is a hardware device's (v5) and
      // must be claimed with `device`, whether or not this gateway has committed it yet.
      const row = f.resume[14] === "4" ? ctx.devices.get(f.resume) : null;
      if (f.resume[14] !== "4" || row?.hardware_id) {
        ctx.metrics.inc("owsla_auth_failures_total");
        await this.recordAuthFailure(undefined);
        this.close("unauthorized", "unauthorized", `Unauthorized: ${f.resume} belongs to a device with a hardware id; send hello with \`device\` instead of \`resume\``);
        return;
      }
      id = f.resume;
      mustPersist = !row;
    } else {
      id = freshDeviceUuid();
      mustPersist = true;
    }
    this.deviceId = id;
    const stored = ctx.devices.connected(id, this.hardwareId, ctx.workerId, this.connId);
    if (mustPersist) {
      // An anonymous identity must survive a crash before the device learns it.
      try {
        await stored;
      } catch (err) {
        ctx.log.error("Cannot store new device identity; refusing the device. Check store.dir", { err: err as Error });
        this.close("server_busy", "server_busy", "Gateway cannot store device identity; retry later", RETRY_AFTER_MS);
        return;
      }
      if (this.state !== "hello") return;
    } else {
      stored.catch((err: Error) => ctx.log.warn("Cannot record device connection in the device table", { device: id, err }));
    }
    const old = ctx.registry.claim(id, this);
    if (old) old.close("taken_over", "taken_over", TAKEN_OVER_MESSAGE);
    this.state = "open";
    this.welcomedAt = wallClock();
    ctx.cluster.announceClaim(id, this.connId, this.welcomedAt);
    this.send({ op: "welcome", id, conn: this.connId, gateway: ctx.gatewayId, keepalive: ctx.limits.keepaliveS });
    ctx.metrics.inc("owsla_welcomes_total");
    ctx.publisher.publish(presenceMessage(this.sender(), "connected", null)).catch(() => {});
    if (ctx.log.enabled("debug")) ctx.log.debug("Device connected", { device: id, conn: this.connId, hardware_id: this.hardwareId });
    ctx.pending.request(this);
  }

  private pub(f: PubFrame): void {
    if (this.state !== "open") return this.notReady("pub");
    const { ctx } = this;
    if (this.pendingPubs >= ctx.limits.maxPendingPubs) {
      ctx.metrics.inc("owsla_rate_limited_total");
      this.send({
        op: "error",
        code: "rate_limited",
        message: `Too many messages awaiting the broker (${this.pendingPubs}); this one was not accepted, send it again later`,
        retry_after: RETRY_AFTER_MS,
        ...(f.ref ? { ref: f.ref } : {}),
      } as GatewayFrame);
      return;
    }
    this.pendingPubs++;
    ctx.metrics.inc("owsla_pubs_received_total");
    const ref = f.ref;
    ctx.publisher.publish(upMessage(this.sender(), f.topic, f.body, ref)).then(
      () => {
        this.pendingPubs--;
        if (ref !== undefined) this.send({ op: "ack", ref });
      },
      (err: Error) => {
        this.pendingPubs--;
        if (err instanceof UnpublishableError) {
          this.send({ op: "error", code: "bad_frame", message: err.message, ...(ref ? { ref } : {}) } as GatewayFrame);
          return;
        }
        this.send({
          op: "error",
          code: "server_busy",
          message: "Gateway could not store this message (broker unreachable and outbox unavailable); send it again later",
          retry_after: RETRY_AFTER_MS,
          ...(ref ? { ref } : {}),
        } as GatewayFrame);
      },
    );
  }
}
