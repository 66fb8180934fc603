/**
 * The MQTT packets of the load tool's simulated devices and of its MQTT back-end, encoded and
 * decoded with `mqtt-packet` (the codec the gateway uses; mqtt.js is not part of the product).
 * MQTT 5 carries the reply address in the PUBLISH properties (Response Topic + Correlation
 * Data); MQTT 3.1.1 has no such properties (RabbitMQ 3.10's MQTT plugin speaks only 3.1.1), so
 * there the device puts them into its JSON payload as `"r"` and `"c"` and the back-end reads
 * them from there.
 */
import mqtt, { type IConnackPacket, type IPublishPacket, type Packet } from "mqtt-packet";

/** MQTT protocol level on the wire: 4 = 3.1.1, 5 = 5.0. */
export type MqttVersion = 4 | 5;

/** Topic of the devices' upstream messages (routing-key word `load` on the gateway). */
export const MQTT_PUB_TOPIC = "load";
/** Topic of a device's answer to a back-end-initiated command (`door.ack` on the gateway). */
export const MQTT_DOOR_ACK_TOPIC = "door/ack";
/** Keepalive a device asks for in CONNECT, in s. */
export const MQTT_KEEPALIVE_S = 60;

/** The response topic of device number `n`. */
export function replyTopic(n: number): string {
  return `reply/${n}`;
}

/** What a device needs to build its CONNECT. */
export interface ConnectSpec {
  version: MqttVersion;
  clientId: string;
  /** Device token (the gateway's password), or null for anonymous brokers and auth none. */
  password: string | null;
}

/** The CONNECT of a device: clean start, keepalive {@link MQTT_KEEPALIVE_S}. */
export function connectPacket(c: ConnectSpec): Buffer {
  return mqtt.generate(
    {
      cmd: "connect",
      protocolId: "MQTT",
      protocolVersion: c.version,
      clean: true,
      clientId: c.clientId,
      keepalive: MQTT_KEEPALIVE_S,
      // 3.1.1 allows a password only with a user name; the gateway ignores the user name.
      ...(c.password !== null ? { username: "load", password: Buffer.from(c.password) } : {}),
    },
    { protocolVersion: c.version },
  );
}

/** SUBSCRIBE to `filters` at `qos` (default 1). */
export function subscribePacket(version: MqttVersion, messageId: number, filters: string[], qos: 0 | 1 = 1): Buffer {
  return mqtt.generate({ cmd: "subscribe", messageId, subscriptions: filters.map((topic) => ({ topic, qos })) }, { protocolVersion: version });
}

/** A QoS 1 request: `body` (JSON object text without the closing brace) plus the reply address. */
export function requestPacket(version: MqttVersion, messageId: number, topic: string, bodyHead: string, responseTopic: string, correlation: string): Buffer {
  if (version === 5) {
    return mqtt.generate(
      { cmd: "publish", qos: 1, dup: false, retain: false, messageId, topic, payload: bodyHead + "}", properties: { responseTopic, correlationData: Buffer.from(correlation) } },
      { protocolVersion: 5 },
    );
  }
  return publishPacket(4, messageId, topic, `${bodyHead},"r":"${responseTopic}","c":"${correlation}"}`);
}

/** A plain PUBLISH (QoS 1 when `messageId` > 0, else QoS 0). */
export function publishPacket(version: MqttVersion, messageId: number, topic: string, payload: string | Buffer, correlation?: Buffer): Buffer {
  const qos = messageId > 0 ? 1 : 0;
  return mqtt.generate(
    { cmd: "publish", qos, dup: false, retain: false, topic, payload, ...(qos ? { messageId } : {}), ...(correlation && version === 5 ? { properties: { correlationData: correlation } } : {}) },
    { protocolVersion: version },
  );
}

/** PUBACK of packet `messageId` (reason success). */
export function pubackPacket(version: MqttVersion, messageId: number): Buffer {
  return mqtt.generate({ cmd: "puback", messageId }, { protocolVersion: version });
}

/** PINGREQ (the same bytes in every version). */
export const PINGREQ = Buffer.from([0xc0, 0x00]);
/** DISCONNECT, normal (the same two bytes in both versions: v5 allows omitting reason 0). */
export const DISCONNECT = Buffer.from([0xe0, 0x00]);

/** A decoder of one connection's byte stream; `onPacket` gets each packet, `onError` a malformed stream. */
export function packetParser(version: MqttVersion, onPacket: (p: Packet) => void, onError: (e: Error) => void): { parse(chunk: Buffer): void } {
  const p = mqtt.parser({ protocolVersion: version });
  p.on("packet", onPacket);
  p.on("error", onError);
  return p;
}

/** The reason code of a CONNACK (v5 `reasonCode`, 3.1.1 `returnCode`); 0 = accepted. */
export function connackCode(p: IConnackPacket): number {
  return p.reasonCode ?? p.returnCode ?? 0;
}

/** Where a reply goes and what it carries back: from the v5 properties, or the 3.1.1 JSON payload. */
export function replyAddress(p: IPublishPacket): { topic: string; correlation: Buffer } | null {
  const props = p.properties;
  if (props?.responseTopic) return { topic: props.responseTopic, correlation: props.correlationData ?? Buffer.alloc(0) };
  try {
    const body = JSON.parse(p.payload.toString());
    if (typeof body?.r === "string" && typeof body?.c === "string") return { topic: body.r, correlation: Buffer.from(body.c) };
  } catch {
    // not JSON: no address
  }
  return null;
}

/** The correlation of a reply a device received: v5 property, or `"c"` of the 3.1.1 payload. */
export function replyCorrelation(p: IPublishPacket): string | null {
  const cd = p.properties?.correlationData;
  if (cd) return cd.toString();
  try {
    const body = JSON.parse(p.payload.toString());
    return typeof body?.c === "string" ? body.c : null;
  } catch {
    return null;
  }
}

/** A v5 user property of a PUBLISH (the gateway puts the command id into `id`). */
export function userProperty(p: IPublishPacket, key: string): string | null {
  const v = p.properties?.userProperties?.[key];
  return typeof v === "string" ? v : Array.isArray(v) ? (v[0] ?? null) : null;
}
