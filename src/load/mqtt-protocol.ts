/**
 * The MQTT side of a simulated device (`owsla load --mqtt`): CONNECT (client id = hardware id,
 * password = device token when the site secret is known), CONNACK as the welcome, SUBSCRIBE to
 * the command (and, on a plain broker, reply) topics, QoS 1 requests on `load` carrying a
 * response topic `reply/<n>` and the request's ref as correlation data, PUBACK of every QoS 1
 * delivery, PINGREQ on keepalive and DISCONNECT at the end. Packets are encoded and decoded by
 * `mqtt-codec.ts` (mqtt-packet).
 */
import type { IPublishPacket, Packet } from "mqtt-packet";
import { mintToken } from "../auth/token.ts";
import type { DeviceProtocol, DeviceWrite, FleetEvents } from "./device-protocol.ts";
import type { Attempt, Dev } from "./fleet-device.ts";
import type { MqttSpec } from "./ipc.ts";
import {
  connackCode,
  connectPacket,
  DISCONNECT,
  MQTT_DOOR_ACK_TOPIC,
  MQTT_PUB_TOPIC,
  packetParser,
  PINGREQ,
  pubackPacket,
  publishPacket,
  replyCorrelation,
  replyTopic,
  requestPacket,
  subscribePacket,
  userProperty,
} from "./mqtt-codec.ts";

/** Per-connection state: the decoder, the next packet id, and which ref each unacked packet id carries. */
interface MqttConn {
  parser: { parse(chunk: Buffer): void };
  nextId: number;
  refs: Map<number, string>;
}

/** Packet id of the SUBSCRIBE (the first packet id of every connection). */
const SUBSCRIBE_ID = 1;

/** `code` as the error kind `<what>_0x<hex>`. */
export const reasonKind = (what: string, code: number) => `${what}_0x${code.toString(16).padStart(2, "0")}`;

/**
 * The filters device `n` (hardware id `hw`) subscribes to. On the gateway, commands arrive on
 * `cmd/<topic>` of the device's own session and replies on its response topic; a plain broker
 * routes by topic alone, so there each device takes its own `cmd/<hw>/#` and its reply topic.
 */
export function deviceFilters(n: number, hw: string, broker: boolean): string[] {
  return broker ? [replyTopic(n), `cmd/${hw}/#`] : ["cmd/#", replyTopic(n)];
}

/** Devices speaking MQTT 5 (or 3.1.1 towards a broker that has no MQTT 5). */
export class MqttProtocol implements DeviceProtocol {
  private readonly bodyHead: string;

  constructor(
    private readonly ev: FleetEvents,
    private readonly write: DeviceWrite,
    private readonly secret: Uint8Array | null,
    payload: number,
    private readonly spec: MqttSpec,
  ) {
    this.bodyHead = `{"p":"${"x".repeat(payload)}"`;
  }

  open(d: Dev, a: Attempt): void {
    const conn: MqttConn = {
      parser: packetParser(
        this.spec.version,
        (p) => d.attempt === a && this.onPacket(d, a, conn, p),
        () => d.attempt === a && this.ev.bad(a, "bad_packet_from_gateway"),
      ),
      nextId: SUBSCRIBE_ID + 1,
      refs: new Map(),
    };
    a.codec = conn;
    if (d.hello === null) d.hello = connectPacket({ version: this.spec.version, clientId: d.hw, password: this.secret ? mintToken(this.secret, d.hw) : null });
    this.write(d, d.hello);
  }

  data(_d: Dev, a: Attempt, chunk: Buffer): void {
    (a.codec as MqttConn).parser.parse(chunk);
  }

  private onPacket(d: Dev, a: Attempt, conn: MqttConn, p: Packet): void {
    switch (p.cmd) {
      case "connack": {
        const code = connackCode(p);
        if (code !== 0) return this.ev.refused(d, a, reasonKind("connack", code));
        this.write(d, subscribePacket(this.spec.version, SUBSCRIBE_ID, deviceFilters(d.n, d.hw, this.spec.broker)));
        return this.ev.welcome(d, p.properties?.serverKeepAlive || undefined);
      }
      case "suback":
        for (const g of p.granted) if (typeof g === "number" && g >= 0x80) this.ev.bad(a, reasonKind("suback", g));
        return;
      case "puback": {
        const ref = conn.refs.get(p.messageId!);
        if (ref === undefined) return this.ev.bad(a, "puback_unknown_id");
        conn.refs.delete(p.messageId!);
        const code = p.reasonCode ?? 0;
        return code >= 0x80 ? this.ev.refused(d, a, reasonKind("puback", code), undefined, ref) : this.ev.ack(d, ref);
      }
      case "publish":
        return this.onPublish(d, a, p);
      case "pingresp":
        return;
      case "disconnect":
        return this.ev.refused(d, a, reasonKind("disconnect", p.reasonCode ?? 0));
      default:
        this.ev.bad(a, `unexpected_${p.cmd}`);
    }
  }

  private onPublish(d: Dev, a: Attempt, p: IPublishPacket): void {
    if (p.qos > 0 && p.messageId !== undefined) this.write(d, pubackPacket(this.spec.version, p.messageId));
    if (p.topic.startsWith("reply/")) {
      const corr = replyCorrelation(p);
      if (corr === null) return this.ev.bad(a, "reply_without_correlation");
      return this.ev.cmd(d, { id: "", corr, body: null });
    }
    let body: unknown = null;
    try {
      body = JSON.parse(p.payload.toString());
    } catch {
      // a command body that is not JSON: delivered all the same
    }
    const id = userProperty(p, "id") ?? (typeof (body as { id?: unknown })?.id === "string" ? (body as { id: string }).id : "");
    this.ev.cmd(d, { id, corr: null, body });
  }

  /** The next free packet id of `conn`, remembered as carrying `ref`. */
  private take(conn: MqttConn, ref: string): number {
    let id = conn.nextId;
    while (conn.refs.has(id) || id === SUBSCRIBE_ID) id = id >= 0xffff ? 1 : id + 1;
    conn.nextId = id >= 0xffff ? 1 : id + 1;
    conn.refs.set(id, ref);
    return id;
  }

  pub(d: Dev, ref: string): void {
    const conn = d.attempt?.codec as MqttConn | undefined;
    if (!conn) return;
    this.write(d, requestPacket(this.spec.version, this.take(conn, ref), MQTT_PUB_TOPIC, this.bodyHead, replyTopic(d.n), ref));
  }

  ping(d: Dev): void {
    this.write(d, PINGREQ);
  }

  /** Already acknowledged: the PUBACK went out when the PUBLISH arrived. */
  ackCmd(): void {}

  doorAck(d: Dev, id: string): void {
    const conn = d.attempt?.codec as MqttConn | undefined;
    if (!conn) return;
    this.write(d, publishPacket(this.spec.version, this.take(conn, id), MQTT_DOOR_ACK_TOPIC, JSON.stringify({ id })));
  }

  bye(d: Dev): void {
    this.write(d, DISCONNECT);
  }
}
