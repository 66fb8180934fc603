/**
 * What every device connection keeps of its socket, whatever protocol it speaks: lifecycle
 * state, identity once granted, activity timestamps for the sweep, and the bounded output
 * queue that closes a device which stops reading. The line protocol's `DeviceConnection` and
 * MQTT's `MqttConnection` extend it.
 */
import { connectionId } from "../identity/identity.ts";
import { Outbound } from "./outbound.ts";
import type { CloseReason } from "./close-reasons.ts";
import type { SessionContext } from "./context.ts";
import type { ConnState } from "./device-session.ts";

/** The part of a Bun socket a session uses. */
export interface SocketLike {
  write(data: Uint8Array): number;
  end(): void;
  terminate(): void;
  readonly remoteAddress: string;
}

/** Socket state shared by the protocols' connections. */
export abstract class SocketSession {
  state: ConnState = "hello";
  readonly connId = connectionId();
  deviceId: string | null = null;
  hardwareId: string | null = null;
  readonly acceptedAt = Date.now();
  lastActivity = this.acceptedAt;
  closeReason: CloseReason | null = null;
  closingSince = 0;
  /** False until a TLS handshake completes (always true on plain TCP). */
  handshaken = true;
  /** Names of the verified TLS client certificate (CN, SANs); null without one. */
  certNames: string[] | null = null;
  /** When the identity was granted (high-resolution wall clock, comparable across workers). */
  welcomedAt = 0;
  protected readonly out: Outbound;

  constructor(
    protected readonly socket: SocketLike,
    readonly ctx: SessionContext,
  ) {
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

  /**
   * Whether bytes just read should be handled (and notes the activity). A peer that keeps
   * streaming after a framing error is cut at once: a 100 MB line or packet must not keep the
   * worker busy with buffers it will drop anyway.
   */
  protected takesInput(): boolean {
    if (this.state === "closing" && (this.closeReason === "frame_too_large" || this.closeReason === "bad_frame")) {
      this.socket.terminate();
      return false;
    }
    if (this.done) return false;
    this.lastActivity = Date.now();
    return true;
  }

  /** Writes bytes; closes the connection as a slow consumer when its queue is full. */
  write(bytes: Uint8Array): boolean {
    if (this.state === "closed") return false;
    if (this.out.write(bytes)) return true;
    this.ctx.metrics.inc("owsla_slow_consumers_total");
    this.closeReason ??= "slow_consumer";
    this.state = "closing";
    this.socket.terminate();
    return false;
  }

  /** The socket can take more output. */
  onDrain(): void {
    if (this.out.flush() && this.state === "closing") this.socket.end();
  }

  /** Cuts the connection without flushing. */
  terminate(): void {
    this.socket.terminate();
  }
}
