/**
 * Downstream for one MQTT connection: the device's subscriptions, and commands written as
 * PUBLISH QoS 1 on `cmd/<topic>` (or, for a reply to an MQTT 5 request, on its Response Topic
 * with its Correlation Data) until the device's PUBACK, which is its `ack`. A command goes out
 * only once a subscription matches it and while the device's Receive Maximum allows; until
 * then the router keeps it (stored, like for an offline device) and the connection asks for it
 * again when that changes.
 */
import type { IPublishPacket, ISubscribePacket, IUnsubscribePacket } from "mqtt-packet";
import type { AckRoute, Command } from "../protocol/gateway-messages.ts";
import type { SessionContext } from "../session/context.ts";
import type { MqttVersion, Packet } from "./codec.ts";
import { encodePacket } from "./codec.ts";
import { unpackRef } from "./correlation.ts";
import { RC } from "./reason-codes.ts";
import type { MqttSession } from "./sessions.ts";
import { commandTopic, subscriptionAllowed, topicMatches } from "./topics.ts";
import type { MqttLimits } from "./limits.ts";

/** What the command flow needs from its connection. */
export interface CommandPort {
  readonly version: MqttVersion;
  readonly ctx: SessionContext;
  readonly limits: MqttLimits;
  readonly deviceId: string | null;
  write(bytes: Uint8Array): boolean;
  send(p: Packet): boolean;
  /** Asks the router for the commands this connection refused earlier. */
  wantCommands(): void;
}

/** SUBACK code refusing a filter: MQTT 5 Not authorized, 3.1.1 Failure. */
const SUBACK_REFUSED = { 5: RC.notAuthorized, 4: 0x80, 3: 0x80 } as const;
/** SUBACK code for a filter past {@link MAX_SUBSCRIPTIONS}: MQTT 5 Quota exceeded, 3.1.1 Failure. */
const SUBACK_QUOTA = { 5: RC.quotaExceeded, 4: 0x80, 3: 0x80 } as const;

/**
 * Filters one session may hold. A device needs two (`cmd/#` and `reply/#`) or a few narrower
 * ones; without a cap one device's 150k filters cost a worker 36-64 MiB, kept with its
 * persistent session, and every command was matched against all of them.
 */
export const MAX_SUBSCRIPTIONS = 64;

/**
 * The filters nearly every device subscribes to, kept once per worker instead of once per
 * connection (a parsed filter is a new string each time).
 */
const COMMON_FILTERS = ["cmd/#", "reply/#"];

function commonFilter(f: string): string {
  for (const c of COMMON_FILTERS) if (f === c) return c;
  return f;
}

/** Subscriptions and unacked commands of one connection. */
export class OutboundCommands {
  /** Command id -> where its ack goes. */
  private sent: Map<string, AckRoute> | null = null;
  /** Packet id -> command id. */
  private byPacket: Map<number, string> | null = null;
  private nextPid = 1;
  /** A command was refused (no subscription yet, or Receive Maximum): ask again when that changes. */
  private wanting = false;
  /** Device's Receive Maximum (MQTT 5 CONNECT; 65535 when absent). */
  clientReceiveMaximum = 65535;
  /** Device's Maximum Packet Size (MQTT 5 CONNECT; unlimited when absent). */
  clientMaxPacket = Number.POSITIVE_INFINITY;

  constructor(
    private readonly c: CommandPort,
    readonly session: MqttSession,
  ) {}

  /** Whether command `id` was written and not acked. */
  hasSent(id: string): boolean {
    return this.sent?.has(id) ?? false;
  }

  /** Routes of the commands written and not acked (returned to their origins on close). */
  unackedRoutes(): Iterable<AckRoute> {
    return this.sent?.values() ?? [];
  }

  /** Writes `cmd` as PUBLISH QoS 1; false when it must wait (see the module doc). */
  deliver(cmd: Command, route: AckRoute): boolean {
    const sent = (this.sent ??= new Map());
    if (sent.has(cmd.id)) {
      sent.set(cmd.id, route);
      return true;
    }
    const reply = unpackRef(cmd.corr);
    const topic = reply ? reply.topic : commandTopic(cmd.topic);
    const byPacket = (this.byPacket ??= new Map());
    if (!this.subscribed(topic) || byPacket.size >= this.clientReceiveMaximum) {
      this.wanting = true;
      return false;
    }
    const earlier = this.session.unacked?.get(cmd.id);
    const pid = earlier !== undefined && !byPacket.has(earlier) ? earlier : this.freePid(byPacket);
    const properties: IPublishPacket["properties"] = {};
    if (this.c.version === 5) {
      properties.payloadFormatIndicator = true;
      properties.contentType = "application/json";
      properties.userProperties = reply || !cmd.corr ? { id: cmd.id } : { id: cmd.id, corr: cmd.corr };
      if (reply?.data) properties.correlationData = Buffer.from(reply.data);
    }
    const packet: IPublishPacket = {
      cmd: "publish",
      qos: 1,
      dup: earlier !== undefined,
      retain: false,
      topic,
      messageId: pid,
      payload: Buffer.from(cmd.body),
      ...(this.c.version === 5 ? { properties } : {}),
    };
    const bytes = encodePacket(packet, this.c.version);
    if (bytes.length > this.clientMaxPacket) {
      this.c.ctx.log.warn("Command larger than the device's Maximum Packet Size; it waits (stored) until the device accepts bigger packets", { device: cmd.deviceId, id: cmd.id, bytes: bytes.length });
      return false;
    }
    if (!this.c.write(bytes)) return false;
    sent.set(cmd.id, route);
    byPacket.set(pid, cmd.id);
    (this.session.unacked ??= new Map()).set(cmd.id, pid);
    this.c.ctx.metrics.inc("owsla_messages_down_total");
    return true;
  }

  /** The device's PUBACK: the command is acked. Returns its id and route, or null for an unknown packet id. */
  puback(pid: number): { id: string; route: AckRoute } | null {
    const id = this.byPacket?.get(pid);
    if (id === undefined) return null;
    this.byPacket!.delete(pid);
    this.session.unacked?.delete(id);
    const route = this.sent?.get(id);
    this.sent?.delete(id);
    if (this.wanting) this.askAgain();
    return route === undefined ? null : { id, route };
  }

  /** SUBSCRIBE: filters inside cmd/# and reply/# are granted (QoS at most 1), others refused. */
  subscribe(p: ISubscribePacket): void {
    const granted: number[] = [];
    const filters = this.session.subscriptions;
    let added = false;
    for (const s of p.subscriptions) {
      if (s.topic.startsWith("$share/")) {
        granted.push(this.c.version === 5 ? RC.sharedSubscriptionsNotSupported : 0x80);
      } else if (!subscriptionAllowed(s.topic, this.c.limits.maxTopicBytes)) {
        this.c.ctx.metrics.inc("owsla_mqtt_subscriptions_refused_total");
        granted.push(SUBACK_REFUSED[this.c.version]);
      } else if (filters.length >= MAX_SUBSCRIPTIONS && !filters.includes(s.topic)) {
        this.c.ctx.metrics.inc("owsla_mqtt_subscriptions_refused_total");
        granted.push(SUBACK_QUOTA[this.c.version]);
      } else {
        if (!filters.includes(s.topic)) filters.push(commonFilter(s.topic));
        granted.push(Math.min(s.qos, 1));
        added = true;
      }
    }
    this.c.send({ cmd: "suback", messageId: p.messageId, granted } as Packet);
    // Only when a command waited for a subscription: clients subscribe again on every
    // connection, and asking the router again then re-read stored commands the device had just
    // acked (their deletion still on its way) and sent them a second time.
    if (added && this.wanting) this.askAgain();
  }

  /** UNSUBSCRIBE: drops the filters. */
  unsubscribe(p: IUnsubscribePacket): void {
    const filters = this.session.subscriptions;
    const codes = p.unsubscriptions.map((f) => {
      const i = filters.indexOf(f);
      if (i < 0) return 0x11;
      filters.splice(i, 1);
      return RC.success;
    });
    this.c.send({ cmd: "unsuback", messageId: p.messageId, ...(this.c.version === 5 ? { granted: codes } : {}) } as unknown as Packet);
  }

  private askAgain(): void {
    this.wanting = false;
    this.c.wantCommands();
  }

  private subscribed(topic: string): boolean {
    for (const f of this.session.subscriptions) if (topicMatches(f, topic)) return true;
    return false;
  }

  private freePid(used: Map<number, string>): number {
    // Ids still held by unacked commands of an earlier connection (usually none).
    const unacked = this.session.unacked;
    const kept = unacked && unacked.size > 0 ? new Set(unacked.values()) : null;
    for (let n = 0; n < 65535; n++) {
      const pid = this.nextPid;
      this.nextPid = pid >= 65535 ? 1 : pid + 1;
      if (!used.has(pid) && !kept?.has(pid)) return pid;
    }
    // Every id is taken by an unacked command of an earlier connection: reuse the oldest.
    unacked?.clear();
    return this.freePid(used);
  }
}
