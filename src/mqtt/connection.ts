/**
 * One MQTT 3.1.1/5.0 device connection: CONNECT -> open -> closing -> closed, the MQTT face of
 * the same session the line protocol's `DeviceConnection` runs. Identity comes from
 * `session/hello.ts` (client id = hardware id, password = token, or the TLS certificate);
 * upstream PUBLISH is `publish-in.ts`, commands and subscriptions `commands-out.ts`. To the
 * listener, registry and router it is a {@link DeviceSession} like any other.
 */
import type { IConnectPacket, IConnackPacket, IPublishPacket } from "mqtt-packet";
import { isHardwareId } from "../protocol/hardware-id.ts";
import type { AckRoute, Command } from "../protocol/gateway-messages.ts";
import type { SessionContext } from "../session/context.ts";
import type { CloseReason } from "../session/close-reasons.ts";
import type { DeviceSession } from "../session/device-session.ts";
import { welcomeClock } from "../session/welcome-clock.ts";
import { SocketSession, type SocketLike } from "../session/socket-session.ts";
import { authenticate } from "../session/hello.ts";
import type { Sender } from "../session/messages.ts";
import { decodePacket, encodePacket, type MqttVersion, type Packet } from "./codec.ts";
import { MqttFramer } from "./framer.ts";
import { RC, connackCode311, disconnectCode } from "./reason-codes.ts";
import { InboundPublishes, type PublishPort } from "./publish-in.ts";
import { OutboundCommands, type CommandPort } from "./commands-out.ts";
import { emptySession } from "./sessions.ts";
import { willPresence } from "./will.ts";
import type { MqttDeps, MqttLimits } from "./limits.ts";
import { refusalDetail } from "../log/address-log.ts";

/** Packets a device may send behind its CONNECT before the CONNACK. */
export const HELD_PACKETS_MAX = 64;

/** Close reasons after which the will becomes the presence reason (the device did not say goodbye). */
const WILL_REASONS: ReadonlySet<CloseReason> = new Set(["peer_closed", "socket_error", "keepalive_timeout", "bad_frame", "frame_too_large", "slow_consumer"]);

/** An MQTT device connection. */
export class MqttConnection extends SocketSession implements DeviceSession, PublishPort, CommandPort {
  idleTimeoutMs: number | undefined = undefined;
  /** Set on a connection refused at accept: its CONNECT gets this CONNACK, then it closes. */
  refusal: { rc: number; message: string } | null = null;
  /** MQTT 5 Request Problem Information from CONNECT. */
  problemInfo = true;
  /** Protocol level from CONNECT (4 until then). */
  version: MqttVersion = 4;
  readonly limits: MqttLimits;
  private readonly framer: MqttFramer;
  /** Upstream publishes; made on the first PUBLISH or PUBREL (many devices only listen). */
  private inbound: InboundPublishes | null = null;
  private commands: OutboundCommands | null = null;
  private connecting = false;
  private held: Uint8Array[] | null = null;
  private inputEnded = false;
  /** The will's payload (its presence reason) while the connection has one. */
  private will: Uint8Array | null = null;
  /** Whether the session is kept after the connection (persistent), for how long (s). */
  private sessionExpiryS = 0;

  constructor(
    socket: SocketLike,
    ctx: SessionContext,
    private readonly deps: MqttDeps,
  ) {
    super(socket, ctx);
    this.limits = deps.limits;
    this.framer = new MqttFramer(deps.limits.maxPacketBytes);
  }

  hasSent(id: string): boolean {
    return this.commands?.hasSent(id) ?? false;
  }

  onData(chunk: Uint8Array): void {
    if (!this.takesInput()) return;
    for (const f of this.framer.push(chunk)) {
      if (this.done) return;
      if (f.kind === "too_large") return this.disconnect("frame_too_large", RC.packetTooLarge, `Packet of ${f.size} bytes exceeds the Maximum Packet Size ${this.limits.maxPacketBytes}`);
      if (f.kind === "malformed") return this.disconnect("bad_frame", RC.malformedPacket, f.message);
      if (this.connecting) {
        if ((this.held ??= []).length >= HELD_PACKETS_MAX) return this.disconnect("bad_frame", RC.protocolError, `More than ${HELD_PACKETS_MAX} packets before the CONNACK`);
        this.held.push(f.bytes.slice());
        continue;
      }
      this.packet(f.bytes);
    }
  }

  private packet(bytes: Uint8Array): void {
    const p = decodePacket(bytes, this.version);
    if (p instanceof Error) return this.disconnect("bad_frame", RC.malformedPacket, `Malformed packet: ${p.message}`);
    try {
      this.handle(p);
    } catch (e) {
      // Hostile input must never take the worker down.
      this.ctx.metrics.inc("owsla_frame_errors_total");
      this.disconnect("bad_frame", RC.implementationSpecificError, `Cannot process ${p.cmd}: ${(e as Error).message}`);
    }
  }

  private handle(p: Packet): void {
    if (this.state === "hello") {
      if (p.cmd !== "connect") return this.disconnect("bad_frame", RC.protocolError, `First packet must be CONNECT, got ${p.cmd}`);
      if (this.refusal) {
        this.version = p.protocolVersion === 5 ? 5 : 4;
        this.connack(this.refusal.rc, this.refusal.message);
        return this.close("server_busy");
      }
      this.connect(p).catch((err: Error) => {
        this.connecting = false;
        this.ctx.log.warn("MQTT CONNECT failed unexpectedly; closing the connection", { err, remote: this.socket.remoteAddress });
        this.connack(RC.unspecifiedError, err.message);
        this.close("bad_frame");
      });
      return;
    }
    // Packet ids are 1..65535 (a packet too short to hold one parses without it).
    const pid = (p as { messageId?: unknown }).messageId;
    const needsId = p.cmd === "puback" || p.cmd === "pubrel" || p.cmd === "subscribe" || p.cmd === "unsubscribe" || (p.cmd === "publish" && p.qos > 0);
    if (needsId && !(typeof pid === "number" && Number.isInteger(pid) && pid >= 1 && pid <= 65535)) {
      return this.disconnect("bad_frame", RC.malformedPacket, `${p.cmd} without a valid packet identifier (1 to 65535)`);
    }
    switch (p.cmd) {
      case "publish":
        return (this.inbound ??= new InboundPublishes(this)).publish(p);
      case "pubrel":
        return (this.inbound ??= new InboundPublishes(this)).pubrel(p);
      case "puback": {
        const acked = this.commands!.puback(p.messageId ?? 0);
        this.ctx.metrics.inc("owsla_device_acks_total");
        if (acked) this.ctx.directory.acked(this.deviceId!, acked.id, acked.route);
        return;
      }
      case "subscribe":
        return this.commands!.subscribe(p);
      case "unsubscribe":
        return this.commands!.unsubscribe(p);
      case "pingreq":
        this.send({ cmd: "pingresp" });
        return;
      case "disconnect": {
        // MQTT 5 0x04 "Disconnect with Will Message" keeps the will; any other DISCONNECT drops it.
        if (p.reasonCode !== 0x04) this.will = null;
        const expiry = p.properties?.sessionExpiryInterval;
        if (expiry !== undefined && this.sessionExpiryS > 0) this.sessionExpiryS = Math.min(expiry, this.limits.sessionExpiryMaxS);
        this.close(p.reasonCode === 0x04 ? "peer_closed" : "bye");
        return;
      }
      case "connect":
        return this.disconnect("bad_frame", RC.protocolError, "Second CONNECT on one connection");
      default:
        // PUBREC/PUBCOMP (the gateway publishes QoS 1 only), CONNACK, SUBACK, AUTH...
        return this.disconnect("bad_frame", RC.protocolError, `Unexpected ${p.cmd} packet from a client`);
    }
  }

  private async connect(p: IConnectPacket): Promise<void> {
    const { ctx, limits } = this;
    this.version = p.protocolVersion === 5 ? 5 : 4;
    const clientId = p.clientId ?? "";
    // Ill-formed UTF-8 reaches us as U+FFFD: refused rather than read as another id.
    if (!isHardwareId(clientId) || clientId.includes("\uFFFD")) {
      ctx.metrics.inc("owsla_auth_failures_total");
      this.connack(RC.clientIdentifierNotValid, "Client identifier must be the device's hardware id (1 to 256 characters, no control characters)");
      return this.close("unauthorized");
    }
    if (this.version === 5 && p.will?.retain) {
      this.connack(RC.retainNotSupported, "Will with retain is not supported (no retained messages)");
      return this.close("bad_frame");
    }
    this.connecting = true;
    const token = p.password === undefined ? undefined : Buffer.from(p.password).toString("utf8");
    const outcome = await authenticate({ op: "hello", v: 1, device: clientId, ...(token ? { token } : {}) }, this.socket.remoteAddress, ctx, this.certNames);
    this.connecting = false;
    const held = this.held;
    this.held = null;
    if (this.state !== "hello") return; // closed meanwhile
    if (!outcome.ok) {
      const rc = outcome.code === "unauthorized" ? (ctx.auth.mode === "cert" ? RC.notAuthorized : RC.badUserNameOrPassword) : outcome.code === "rate_limited" ? RC.connectionRateExceeded : RC.serverBusy;
      this.connack(rc, outcome.message);
      return this.close(outcome.reason);
    }
    this.deviceId = outcome.deviceId;
    this.hardwareId = outcome.hardwareId;
    // Session: clean start 0 with an expiry (3.1.1: clean session 0) keeps it after the connection.
    const requestedExpiry = this.version === 5 ? (p.properties?.sessionExpiryInterval ?? 0) : p.clean ? 0 : limits.sessionExpiryMaxS;
    this.sessionExpiryS = Math.min(requestedExpiry, limits.sessionExpiryMaxS);
    const kept = p.clean ? (this.deps.sessions.take(outcome.deviceId), null) : this.deps.sessions.take(outcome.deviceId);
    this.commands = new OutboundCommands(this, kept ?? emptySession());
    if (p.properties?.requestProblemInformation === false) this.problemInfo = false;
    if (p.properties?.receiveMaximum) this.commands.clientReceiveMaximum = p.properties.receiveMaximum;
    if (p.properties?.maximumPacketSize) this.commands.clientMaxPacket = p.properties.maximumPacketSize;
    const asked = p.keepalive ?? 0;
    const keepalive = asked === 0 || asked > limits.keepaliveMaxS ? limits.keepaliveMaxS : asked;
    this.idleTimeoutMs = keepalive * 1500;
    this.will = p.will ? Buffer.from(p.will.payload ?? Buffer.alloc(0)) : null;
    this.state = "open";
    this.welcomedAt = welcomeClock();
    const props: NonNullable<IConnackPacket["properties"]> = {
      maximumPacketSize: limits.maxPacketBytes,
      receiveMaximum: limits.receiveMaximum,
      topicAliasMaximum: 0,
      retainAvailable: false,
      sharedSubscriptionAvailable: false,
      subscriptionIdentifiersAvailable: false,
    };
    if (keepalive !== asked) props.serverKeepAlive = keepalive;
    if (requestedExpiry !== this.sessionExpiryS) props.sessionExpiryInterval = this.sessionExpiryS;
    this.send({ cmd: "connack", returnCode: 0, reasonCode: 0, sessionPresent: kept !== null, ...(this.version === 5 ? { properties: props } : {}) } as Packet);
    ctx.metrics.inc("owsla_welcomes_total");
    ctx.metrics.inc("owsla_mqtt_connacks_total", { code: "0x0" });
    ctx.metrics.observe("owsla_welcome_ms", Date.now() - this.acceptedAt);
    ctx.directory.welcomed(this, outcome.deviceId, outcome.hardwareId);
    ctx.publisher.publish(willPresence(this.sender(), "connected", null)).catch(() => {});
    if (ctx.log.enabled("debug")) ctx.log.debug("MQTT device connected", { device: outcome.deviceId, conn: this.connId, hardware_id: clientId, mqtt: this.version === 5 ? "5" : "3.1.1" });
    if (held) for (const b of held) if (!this.done) this.packet(b);
    this.closeIfFinished();
  }

  /** Sends a refusing CONNACK (the code in the connection's version's terms). */
  private connack(rc: number, message: string): void {
    this.ctx.log.debug("MQTT CONNECT refused", { remote: this.socket.remoteAddress, code: rc, why: message });
    this.ctx.metrics.inc("owsla_mqtt_connacks_total", { code: `0x${rc.toString(16)}` });
    if (this.version === 5) this.send({ cmd: "connack", sessionPresent: false, reasonCode: rc, properties: { reasonString: message } });
    else this.send({ cmd: "connack", sessionPresent: false, returnCode: connackCode311(rc) });
  }

  /** Writes a packet; closes the connection as a slow consumer when its queue is full. */
  send(p: Packet): boolean {
    let bytes: Uint8Array;
    try {
      bytes = encodePacket(p, this.version);
    } catch (e) {
      this.ctx.log.warn("Cannot encode an MQTT packet; not sent", { cmd: p.cmd, err: e as Error });
      return false;
    }
    return this.write(bytes);
  }

  sender(): Sender {
    return { gatewayId: this.ctx.gatewayId, deviceId: this.deviceId!, connId: this.connId, hardwareId: this.hardwareId, replyTo: this.ctx.replyTo };
  }

  settled(): void {
    this.closeIfFinished();
  }

  wantCommands(): void {
    if (this.state === "open" && this.deviceId) this.ctx.directory.resend?.(this, this.deviceId);
  }

  deliver(c: Command, route: AckRoute): boolean {
    if (this.state !== "open" || !this.commands) return false;
    return this.commands.deliver(c, route);
  }

  takeOver(): void {
    this.close("taken_over");
  }

  /** Ends the connection because of `rc`: MQTT 5 sends DISCONNECT with it, 3.1.1 just closes. */
  disconnect(reason: CloseReason, rc: number, message: string): void {
    if (this.done) return;
    this.ctx.log.debug("Closing MQTT connection", { conn: this.connId, device: this.deviceId, reason, code: rc, why: message });
    if (reason === "bad_frame" || reason === "frame_too_large") this.ctx.refusals.note("mqtt-packet", this.socket.remoteAddress, "Bad MQTT packet from a device", { code: rc, detail: refusalDetail(message), ...(this.deviceId ? { device: this.deviceId } : {}) });
    this.end(reason, rc, message);
  }

  /** Closes gracefully with `reason` (MQTT 5: DISCONNECT with its reason code and `message`). */
  close(reason: CloseReason, _code?: string, message?: string): void {
    this.end(reason, reason === "bye" || reason === "peer_closed" ? null : disconnectCode(reason), message);
  }

  private end(reason: CloseReason, rc: number | null, message: string | undefined): void {
    if (this.done) return;
    this.closeReason ??= reason;
    if (this.version === 5 && this.state === "open" && rc !== null) {
      this.send({ cmd: "disconnect", reasonCode: rc, ...(message ? { properties: { reasonString: message } } : {}) });
    }
    if (this.done) return;
    this.state = "closing";
    this.closingSince = Date.now();
    if (this.out.queued === 0) this.socket.end();
  }

  onEnd(): void {
    if (this.done) return;
    this.inputEnded = true;
    this.closeIfFinished();
  }

  private closeIfFinished(): void {
    if (this.inputEnded && (this.inbound?.pending ?? 0) === 0 && !this.connecting && !this.done) this.close("peer_closed");
  }

  onClosed(): void {
    if (this.state === "closed") return;
    if (this.refusal) {
      // Refused at accept: counted there, never a session.
      this.state = "closed";
      return;
    }
    const wasOpen = this.deviceId !== null && this.welcomedAt > 0;
    this.state = "closed";
    const reason = this.closeReason ?? "peer_closed";
    this.closeReason = reason;
    const { ctx } = this;
    ctx.metrics.inc("owsla_closes_total", { reason });
    if (!wasOpen || !this.deviceId) return;
    const id = this.deviceId;
    ctx.directory.released(this, id, reason, this.lastActivity, this.commands?.unackedRoutes() ?? []);
    // A session taken over stays with the connection that took it (that one chose its own).
    if (this.commands && this.sessionExpiryS > 0 && reason !== "taken_over") this.deps.sessions.keep(id, this.commands.session, this.sessionExpiryS);
    const will = this.will !== null && WILL_REASONS.has(reason) ? this.will : null;
    ctx.publisher.publish(willPresence(this.sender(), "disconnected", reason, will)).catch(() => {});
    if (ctx.log.enabled("debug")) ctx.log.debug("MQTT device disconnected", { device: id, conn: this.connId, reason, will: will !== null });
  }
}

/** The PUBLISH packet type, re-exported for tests. */
export type { IPublishPacket };
