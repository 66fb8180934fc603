import { describe, expect, test } from "bun:test";
import mqtt from "mqtt-packet";
import { MqttFramer } from "./framer.ts";

const ping = new Uint8Array([0xc0, 0x00]);
const pub = mqtt.generate({ cmd: "publish", topic: "a/b", payload: Buffer.alloc(300, 1), qos: 1, messageId: 5, retain: false, dup: false }, { protocolVersion: 4 });

describe("MQTT framer", () => {
  test("splits packets fed one byte at a time and at every split point", () => {
    const stream = new Uint8Array([...ping, ...pub, ...ping]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const f = new MqttFramer(65536);
      const out = [...f.push(stream.subarray(0, cut)), ...f.push(stream.subarray(cut))];
      expect(out.map((x) => (x.kind === "packet" ? x.bytes.length : x.kind))).toEqual([2, pub.length, 2]);
    }
    const f = new MqttFramer(65536);
    const sizes: number[] = [];
    for (const b of stream) for (const x of f.push(new Uint8Array([b]))) sizes.push(x.kind === "packet" ? x.bytes.length : -1);
    expect(sizes).toEqual([2, pub.length, 2]);
    expect(f.pending).toBe(0);
  });

  test("a packet announcing more than the limit is refused from its header alone", () => {
    const f = new MqttFramer(1024);
    // PUBLISH announcing 268435455 bytes (the largest Remaining Length), 5 bytes sent.
    expect(f.push(new Uint8Array([0x30, 0xff, 0xff, 0xff, 0x7f]))).toEqual([{ kind: "too_large", size: 268435460 }]);
  });

  test("a Remaining Length of more than 4 bytes is malformed", () => {
    const f = new MqttFramer(1024);
    expect(f.push(new Uint8Array([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]))[0]!.kind).toBe("malformed");
  });
});
