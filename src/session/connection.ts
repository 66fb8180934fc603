/**
 * One device connection: the line-protocol state machine from accept to close.
 * hello -> open -> closing -> closed. All socket I/O goes through a bounded {@link Outbound};
 * authentication and identity are decided by `hello.ts`.
 *
 * Kept small on purpose (there are hundreds of thousands): the command map is created on the
 * first command, and the connection is the socket's `data`.
 */
import { LineDecoder } from "../protocol/line-decoder.ts";
import { encodeCommandFrame, encodeFrame, errorFrame, parseFrame, type DeviceFrame, type GatewayFrame, type HelloFrame, type PubFrame } from "../protocol/frames.ts";
import { StoreLimitError, UnpublishableError, type AckRoute, type Command } from "../protocol/gateway-messages.ts";
import type { SessionContext } from "./context.ts";
import type { CloseReason } from "./close-reasons.ts";
import { presenceMessage, upMessage, type Sender } from "./messages.ts";
import { authenticate, RETRY_AFTER_MS } from "./hello.ts";

export { RETRY_AFTER_MS };

export type { SocketLike } from "./socket-session.ts";

import type { DeviceSession } from "./device-session.ts";
import { SocketSession, type SocketLike } from "./socket-session.ts";
import { welcomeClock } from "./welcome-clock.ts";
import { refusalDetail } from "../log/address-log.ts";

export type { ConnState } from "./device-session.ts";

/** Time a closing connection gets to flush its last frame before it is cut, in ms. */
export const CLOSE_FLUSH_MS = 2000;

/** Frames a device may send behind its hello before the welcome. */
export const HELD_LINES_MAX = 64;

/** Text of the error frame sent to a connection replaced by a newer one of the same device. */
export const TAKEN_OVER_MESSAGE = "Another connection presented the same device identity; this one is closed";

/** A device connection. */
export class DeviceConnection extends SocketSession implements DeviceSession {
  /** Commands written on this connection and not yet acked -> where their ack goes (created on first use). */
  private sent: Map<string, AckRoute> | null = null;
  private pendingPubs = 0;
  private helloInProgress = false;
  /** The peer half-closed: finish what it sent, then close. */
  private inputEnded = false;
  /** Lines that arrived while the hello was being decided; handled right after it. */
  private held: string[] | null = null;
  private readonly decoder: LineDecoder;

  constructor(socket: SocketLike, ctx: SessionContext) {
    super(socket, ctx);
    this.decoder = new LineDecoder(ctx.limits.maxFrameBytes);
  }

  /** Whether command `id` was written on this connection and not acked yet. */
  hasSent(id: string): boolean {
    return this.sent?.has(id) ?? false;
  }

  /** Feeds bytes read from the socket. */
  onData(chunk: Uint8Array): void {
    if (!this.takesInput()) return;
    for (const r of this.decoder.push(chunk)) {
      if (this.done) return;
      if (r.kind === "error") {
        this.fail(r.code, r.message);
        return;
      }
      if (this.helloInProgress) {
        // Frames sent right behind the hello (one packet from `nc`) wait for its outcome.
        if ((this.held ??= []).length >= HELD_LINES_MAX) return this.fail("bad_frame", `More than ${HELD_LINES_MAX} frames before the welcome: wait for it`);
        this.held.push(r.text);
        continue;
      }
      this.line(r.text);
    }
  }

  private line(text: string): void {
    {
      const parsed = parseFrame(text);
      if (!parsed.ok) {
        if (parsed.close) return this.fail(parsed.code as "bad_frame", parsed.message);
        this.noteBadFrame(parsed.code, parsed.message);
        this.send({ op: "error", code: parsed.code, message: parsed.message, ...(parsed.ref ? { ref: parsed.ref } : {}) } as GatewayFrame);
        return;
      }
      try {
        this.handle(parsed.frame, text);
      } catch (e) {
        // Hostile input must never take the worker down.
        this.ctx.metrics.inc("owsla_frame_errors_total");
        const message = `Cannot process ${parsed.frame.op} frame: ${(e as Error).message}`;
        this.noteBadFrame("bad_frame", message);
        this.send(errorFrame("bad_frame", message));
      }
    }
  }

  /**
   * The peer half-closed its side (`nc -q1`, `shutdown(SHUT_WR)`): it still reads. Answer
   * the frames it already sent (acks wait for the broker or the outbox), then close.
   */
  onEnd(): void {
    if (this.done) return;
    this.inputEnded = true;
    this.closeIfFinished();
  }

  private closeIfFinished(): void {
    if (this.inputEnded && this.pendingPubs === 0 && !this.helloInProgress && !this.done) this.close("peer_closed");
  }

  /** Sends a frame; closes the connection as a slow consumer when its queue is full. */
  send(frame: GatewayFrame): boolean {
    return this.write(encodeFrame(frame));
  }

  /**
   * Writes a command to the device; its ack goes back along `route`. A command already
   * written on this connection is not written again (only its route is updated).
   */
  deliver(c: Command, route: AckRoute): boolean {
    if (this.state !== "open") return false;
    const sent = (this.sent ??= new Map());
    if (sent.has(c.id)) {
      sent.set(c.id, route);
      return true;
    }
    if (!this.write(encodeCommandFrame(c.id, c.topic, c.body, c.corr))) return false;
    sent.set(c.id, route);
    this.ctx.metrics.inc("owsla_messages_down_total");
    return true;
  }

  /** A newer connection of the same device was welcomed: this one closes with `taken_over`. */
  takeOver(): void {
    this.close("taken_over", "taken_over", TAKEN_OVER_MESSAGE);
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
    this.noteBadFrame(code, message);
    this.close(code, code, message);
  }

  /** Logs a refused frame (rate-limited per address). */
  private noteBadFrame(code: string, message: string): void {
    this.ctx.refusals.note("frame", this.socket.remoteAddress, "Bad frame from a device", { code, detail: refusalDetail(message), ...(this.deviceId ? { device: this.deviceId } : {}) });
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
    ctx.directory.released(this, id, reason, this.lastActivity, this.sent?.values() ?? []);
    this.sent = null;
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

  private handle(f: DeviceFrame, text: string): void {
    switch (f.op) {
      case "hello":
        this.hello(f).catch((err: Error) => {
          // Never leave a device hanging (or a rejection unhandled) on unexpected input.
          this.helloInProgress = false;
          this.ctx.log.warn("Hello failed unexpectedly; closing the connection", { err, remote: this.socket.remoteAddress });
          this.close("bad_frame", "bad_frame", `Cannot process hello: ${err.message}`);
        });
        return;
      case "pub":
        return this.pub(f, text);
      case "ack": {
        if (this.state !== "open") return this.notReady("ack");
        this.ctx.metrics.inc("owsla_device_acks_total");
        const route = this.sent?.get(f.ref);
        if (route === undefined) return;
        this.sent!.delete(f.ref);
        this.ctx.directory.acked(this.deviceId!, f.ref, route);
        return;
      }
      case "ping":
        this.send({ op: "pong" });
        return;
      case "bye":
        this.close("bye");
        return;
    }
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
    const outcome = await authenticate(f, this.socket.remoteAddress, ctx, this.certNames);
    this.helloInProgress = false;
    const held = this.held;
    this.held = null;
    if (!outcome.ok) {
      this.close(outcome.reason, outcome.code, outcome.message, outcome.retryAfterMs);
      return;
    }
    if (this.state !== "hello") return; // closed meanwhile
    this.deviceId = outcome.deviceId;
    this.hardwareId = outcome.hardwareId;
    this.state = "open";
    this.welcomedAt = welcomeClock();
    this.send({ op: "welcome", id: outcome.deviceId, conn: this.connId, gateway: ctx.gatewayId, keepalive: ctx.limits.keepaliveS });
    ctx.metrics.inc("owsla_welcomes_total");
    ctx.metrics.observe("owsla_welcome_ms", Date.now() - this.acceptedAt);
    ctx.directory.welcomed(this, outcome.deviceId, outcome.hardwareId);
    ctx.publisher.publish(presenceMessage(this.sender(), "connected", null)).catch(() => {});
    if (ctx.log.enabled("debug")) ctx.log.debug("Device connected", { device: outcome.deviceId, conn: this.connId, hardware_id: this.hardwareId });
    if (held) for (const text of held) if (!this.done) this.line(text);
    this.closeIfFinished();
  }

  private pub(f: PubFrame, text: string): void {
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
    const settled = () => {
      this.pendingPubs--;
      this.closeIfFinished();
    };
    ctx.publisher.publish(upMessage(this.sender(), f.topic, f.body, ref, text)).then(
      () => {
        if (ref !== undefined) this.send({ op: "ack", ref });
        settled();
      },
      (err: Error) => {
        if (err instanceof UnpublishableError) {
          this.send({ op: "error", code: "bad_frame", message: err.message, ...(ref ? { ref } : {}) } as GatewayFrame);
        } else {
          this.send({
            op: "error",
            code: "server_busy",
            message: err instanceof StoreLimitError ? err.message : "Gateway could not store this message (broker unreachable and outbox unavailable); send it again later",
            retry_after: RETRY_AFTER_MS,
            ...(ref ? { ref } : {}),
          } as GatewayFrame);
        }
        settled();
      },
    );
  }
}
