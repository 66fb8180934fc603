/**
 * The MQTT side of the contract floor (floor-server.ts): CONNECT → CONNACK (client id = hardware
 * id, no authentication) with the presence event, SUBACK granting QoS 1, PUBLISH QoS 1 published
 * persistent with a confirm and PUBACKed after it, the back-end's reply written as PUBLISH QoS 1
 * on the request's response topic with its correlation data (MQTT 5) and acked to the broker on
 * the device's PUBACK. Packets go through mqtt-packet, the codec the gateway uses.
 */
import mqtt, { type Packet } from "mqtt-packet";
import type { AMQPMessage } from "@cloudamqp/amqp-client";
import type { FloorBroker, FloorConn } from "./floor-server.ts";

interface MqttState {
  c: FloorConn;
  parser: ReturnType<typeof mqtt.parser>;
  version: 4 | 5;
  nextId: number;
}

const PINGRESP = mqtt.generate({ cmd: "pingresp" });

/** Listens on `port`; `reply` writes a back-end reply to its MQTT device. */
export function serveMqttFloor(port: number, broker: FloorBroker): { reply(c: FloorConn, ref: string, msg: AMQPMessage): void } {
  const sockets = new Map<number, { s: { write(b: Uint8Array): number }; st: MqttState }>();
  const onPacket = (s: { write(b: Uint8Array): number; end(): void }, st: MqttState, p: Packet) => {
    const opts = { protocolVersion: st.version };
    switch (p.cmd) {
      case "connect":
        st.version = p.protocolVersion === 5 ? 5 : 4;
        broker.welcome(st.c, p.clientId);
        s.write(mqtt.generate({ cmd: "connack", sessionPresent: false, ...(st.version === 5 ? { reasonCode: 0 } : { returnCode: 0 }) }, { protocolVersion: st.version }));
        return;
      case "subscribe":
        s.write(mqtt.generate({ cmd: "suback", messageId: p.messageId, granted: p.subscriptions.map(() => 1) }, opts));
        return;
      case "publish": {
        if (!st.c.deviceId) return;
        const topic = p.topic.replaceAll("/", ".");
        const rt = p.properties?.responseTopic;
        const cd = p.properties?.correlationData;
        const ref = rt ? `${rt} ${cd ? Buffer.from(cd).toString("hex") : ""}` : "";
        const id = p.messageId;
        broker.publish(st.c, topic, Buffer.from(p.payload).toString("utf8"), ref).then(
          () => p.qos > 0 && id !== undefined && sockets.get(st.c.i)?.st === st && s.write(mqtt.generate({ cmd: "puback", messageId: id }, opts)),
          () => {},
        );
        return;
      }
      case "puback": {
        const tag = st.c.tags?.get(p.messageId!);
        if (tag !== undefined) {
          st.c.tags!.delete(p.messageId!);
          broker.ack(tag);
        }
        return;
      }
      case "pingreq":
        s.write(PINGRESP);
        return;
      case "disconnect":
        s.end();
        return;
    }
  };
  Bun.listen<MqttState>({
    hostname: "0.0.0.0",
    port,
    ...({ reusePort: true } as object),
    socket: {
      open(s) {
        const st: MqttState = { c: broker.open(), parser: mqtt.parser({ protocolVersion: 5 }), version: 5, nextId: 1 };
        st.parser.on("packet", (p: Packet) => onPacket(s, st, p));
        st.parser.on("error", () => s.end());
        s.data = st;
        sockets.set(st.c.i, { s, st });
      },
      close(s) {
        sockets.delete(s.data.c.i);
        broker.close(s.data.c);
      },
      data(s, chunk) {
        s.data.parser.parse(chunk);
      },
    },
  });
  return {
    reply(c, ref, msg) {
      const e = sockets.get(c.i);
      const space = ref.indexOf(" ");
      if (!e || space <= 0) return broker.ack(msg.deliveryTag);
      const st = e.st;
      const id = st.nextId;
      st.nextId = (st.nextId % 65535) + 1;
      (c.tags ??= new Map()).set(id, msg.deliveryTag);
      const corr = ref.slice(space + 1);
      e.s.write(
        mqtt.generate(
          { cmd: "publish", qos: 1, dup: false, retain: false, messageId: id, topic: ref.slice(0, space), payload: Buffer.from(msg.body ?? new Uint8Array()), ...(st.version === 5 && corr ? { properties: { correlationData: Buffer.from(corr, "hex") } } : {}) },
          { protocolVersion: st.version },
        ),
      );
    },
  };
}
