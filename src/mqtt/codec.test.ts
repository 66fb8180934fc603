import { describe, expect, test } from "bun:test";
import mqtt from "mqtt-packet";
import { decodePacket } from "./codec.ts";

const connect = mqtt.generate({ cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clientId: "dev-1", clean: true, keepalive: 60 }, { protocolVersion: 4 });

describe("shared packet decoder", () => {
  test("a packet that fails mid-field does not spoil the next one (of any connection)", () => {
    // CONNECT with the reserved flag bit set, and with an unknown protocol level.
    const badFlags = Buffer.from(connect);
    badFlags[9] = badFlags[9]! | 0x01;
    const badLevel = Buffer.from(connect);
    badLevel[8] = 6;
    for (const bad of [badFlags, badLevel, Buffer.from([0x10, 0x03, 0x00, 0x04, 0x4d])]) {
      expect(decodePacket(bad, 4)).toBeInstanceOf(Error);
      const ok = decodePacket(connect, 4);
      expect(ok instanceof Error ? ok.message : ok.cmd).toBe("connect");
    }
  });
});
