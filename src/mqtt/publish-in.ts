/**
 * Upstream PUBLISH of one MQTT connection: topic and payload checks, QoS 0/1/2, and the rule
 * that PUBACK (QoS 1) and PUBREC (QoS 2) go out only once the message is confirmed by the
 * broker or committed to the outbox — the guarantee of the line protocol's `ack`.
 */
import type { IPublishPacket, IPubrelPacket } from "mqtt-packet";
import { StoreLimitError, UnpublishableError, type UpMessage } from "../protocol/gateway-messages.ts";
import type { SessionContext } from "../session/context.ts";
import type { CloseReason } from "../session/close-reasons.ts";
import { upMessage, type Sender } from "../session/messages.ts";
import type { MqttVersion, Packet } from "./codec.ts";
import { packRef } from "./correlation.ts";
import { RC } from "./reason-codes.ts";
import { responseTopic, upstreamTopic } from "./topics.ts";
import type { MqttLimits } from "./limits.ts";

/** What the publish flow needs from its connection. */
export interface PublishPort {
  readonly version: MqttVersion;
  readonly ctx: SessionContext;
  readonly limits: MqttLimits;
  readonly done: boolean;
  /** MQTT 5 Request Problem Information (default true): false = no Reason String on PUBACK/PUBREC. */
  readonly problemInfo: boolean;
  send(p: Packet): boolean;
  /** Ends the connection because of `rc` (MQTT 5 DISCONNECT with it; 3.1.1 just closes). */
  disconnect(reason: CloseReason, rc: number, message: string): void;
  sender(): Sender;
  /** A publish settled (the connection may be waiting for that to close). */
  settled(): void;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The AMQP message of an MQTT PUBLISH: `pub`'s message with the payload as body and `protocol: mqtt`. */
export function mqttUpMessage(s: Sender, word: string, payload: Uint8Array, ref: string | undefined): UpMessage {
  const m = upMessage(s, word, null, ref);
  m.body = payload;
  m.props.headers.protocol = "mqtt";
  return m;
}

/** Whether `payload` is UTF-8 JSON (the AMQP contract's body). */
export function isJsonPayload(payload: Uint8Array): boolean {
  try {
    JSON.parse(utf8.decode(payload));
    return true;
  } catch {
    return false;
  }
}

/** QoS 1/2 publishes of one connection in flight, and QoS 2 packet ids awaiting PUBREL. */
export class InboundPublishes {
  /** QoS 1/2 publishes awaiting the broker or the outbox. */
  pending = 0;
  /** QoS 2 packet id -> false while publishing, true once PUBREC went out (awaiting PUBREL). */
  private qos2: Map<number, boolean> | null = null;

  constructor(private readonly c: PublishPort) {}

  /** Handles a PUBLISH from the device. */
  publish(p: IPublishPacket): void {
    const { c } = this;
    const { ctx } = c;
    const qos = p.qos;
    const pid = p.messageId ?? 0;
    if (qos === 2 && this.qos2?.has(pid)) {
      // A re-sent QoS 2 PUBLISH: never published twice; PUBREC again once it is safe.
      if (this.qos2.get(pid)) c.send({ cmd: "pubrec", messageId: pid });
      return;
    }
    if (p.retain) return c.disconnect("bad_frame", RC.retainNotSupported, "Retained messages are not supported by the gateway (CONNACK Retain Available 0): publish with retain off");
    if (p.properties?.topicAlias !== undefined) return c.disconnect("bad_frame", RC.protocolError, "Topic aliases are not supported (CONNACK Topic Alias Maximum 0)");
    const topic = upstreamTopic(p.topic, c.limits.maxTopicBytes);
    if (!topic.ok) return this.refuse(p, topic.why === "invalid" ? RC.topicNameInvalid : RC.notAuthorized, topic.message);
    const payload = p.payload as Uint8Array;
    if (!isJsonPayload(payload)) return this.refuse(p, RC.payloadFormatInvalid, `Payload on ${p.topic} is not UTF-8 JSON (the gateway forwards JSON bodies only)`);
    let ref: string | undefined;
    const rt = p.properties?.responseTopic;
    if (rt !== undefined) {
      const ok = responseTopic(rt, c.limits.maxTopicBytes);
      if (!ok.ok) return this.refuse(p, RC.topicNameInvalid, ok.message);
      ref = packRef({ topic: rt, data: p.properties?.correlationData ?? null }) ?? undefined;
      if (ref === undefined) return this.refuse(p, RC.implementationSpecificError, "Response Topic and Correlation Data together are too long to carry in the AMQP correlation id: shorten them");
    }
    const m = mqttUpMessage(c.sender(), topic.word, payload, ref);
    ctx.metrics.inc("owsla_pubs_received_total");
    ctx.metrics.inc("owsla_mqtt_publishes_total", { qos });
    if (qos === 0) {
      ctx.publisher.publish(m).catch(() => {});
      return;
    }
    if (this.pending >= c.limits.receiveMaximum) {
      return c.disconnect("server_busy", RC.receiveMaximumExceeded, `More than ${c.limits.receiveMaximum} QoS 1/2 publishes awaiting PUBACK/PUBREC (Receive Maximum)`);
    }
    this.pending++;
    if (qos === 2) (this.qos2 ??= new Map()).set(pid, false);
    ctx.publisher.publish(m).then(
      () => {
        if (qos === 1) c.send({ cmd: "puback", messageId: pid });
        else if (this.qos2?.has(pid)) {
          this.qos2.set(pid, true);
          c.send({ cmd: "pubrec", messageId: pid });
        }
        this.done();
      },
      (err: Error) => {
        this.qos2?.delete(pid);
        if (err instanceof UnpublishableError) this.refuse(p, RC.implementationSpecificError, err.message);
        else if (err instanceof StoreLimitError) this.refuse(p, RC.quotaExceeded, err.message, "server_busy");
        else this.refuse(p, RC.unspecifiedError, "Gateway could not store this message (broker unreachable and outbox unavailable); send it again later", "server_busy");
        this.done();
      },
    );
  }

  /** Handles a PUBREL: the QoS 2 exchange ends with PUBCOMP. */
  pubrel(p: IPubrelPacket): void {
    const pid = p.messageId ?? 0;
    const known = this.qos2?.delete(pid) ?? false;
    this.c.send(this.c.version === 5 && !known ? { cmd: "pubcomp", messageId: pid, reasonCode: RC.packetIdentifierNotFound } : { cmd: "pubcomp", messageId: pid });
  }

  private done(): void {
    this.pending--;
    this.c.settled();
  }

  /**
   * Refuses a PUBLISH: MQTT 5 answers QoS 1/2 with the reason code (the connection stays);
   * a refused QoS 0 publish, or any refusal on MQTT 3.1.1 (no negative acks), closes it.
   */
  private refuse(p: IPublishPacket, rc: number, message: string, reason: CloseReason = "bad_frame"): void {
    const { c } = this;
    if (c.done) return;
    c.ctx.metrics.inc("owsla_mqtt_publishes_refused_total", { code: `0x${rc.toString(16)}` });
    if (c.version === 5 && p.qos > 0) {
      c.ctx.log.debug("MQTT publish refused", { topic: p.topic, code: rc, why: message });
      const ack = { messageId: p.messageId, reasonCode: rc, ...(c.problemInfo ? { properties: { reasonString: message } } : {}) };
      c.send(p.qos === 1 ? { cmd: "puback", ...ack } : { cmd: "pubrec", ...ack });
      return;
    }
    c.disconnect(reason, rc, message);
  }
}
