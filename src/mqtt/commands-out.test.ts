import { describe, expect, test } from "bun:test";
import type { ISubscribePacket, IUnsubscribePacket } from "mqtt-packet";
import { MAX_SUBSCRIPTIONS, OutboundCommands, type CommandPort } from "./commands-out.ts";
import type { Packet } from "./codec.ts";
import { emptySession } from "./sessions.ts";
import { Metrics } from "../metrics/metrics.ts";
import type { SessionContext } from "../session/context.ts";
import type { AckRoute, Command } from "../protocol/gateway-messages.ts";

function port(version: 4 | 5): CommandPort & { sent: Packet[]; written: Uint8Array[]; wants: number } {
  const p = {
    version,
    ctx: { metrics: new Metrics() } as unknown as SessionContext,
    limits: { maxPacketBytes: 65536, receiveMaximum: 1024, maxTopicBytes: 256, sessionExpiryMaxS: 3600, keepaliveMaxS: 300 },
    deviceId: "d",
    sent: [] as Packet[],
    written: [] as Uint8Array[],
    wants: 0,
    write(bytes: Uint8Array) {
      p.written.push(bytes);
      return true;
    },
    send(packet: Packet) {
      p.sent.push(packet);
      return true;
    },
    wantCommands() {
      p.wants++;
    },
  };
  return p;
}

const sub = (messageId: number, ...topics: string[]) => ({ cmd: "subscribe", messageId, subscriptions: topics.map((topic) => ({ topic, qos: 1 })) }) as ISubscribePacket;
const unsub = (messageId: number, ...unsubscriptions: string[]) => ({ cmd: "unsubscribe", messageId, unsubscriptions }) as IUnsubscribePacket;
const cmd = (id: string, topic = "cmd"): Command => ({ id, deviceId: "d", topic, body: new TextEncoder().encode("{}"), corr: undefined }) as unknown as Command;
const route = {} as AckRoute;

describe("subscriptions of a connection", () => {
  test("a filter subscribed twice is held once; UNSUBSCRIBE answers success or 0x11 per filter", () => {
    const p = port(5);
    const out = new OutboundCommands(p, emptySession());
    out.subscribe(sub(1, "cmd/#", "reply/7", "cmd/#"));
    expect(p.sent.at(-1)).toMatchObject({ cmd: "suback", messageId: 1, granted: [1, 1, 1] });
    expect(out.session.subscriptions).toEqual(["cmd/#", "reply/7"]);
    out.unsubscribe(unsub(2, "reply/7", "reply/8", "reply/7"));
    expect(p.sent.at(-1)).toMatchObject({ cmd: "unsuback", messageId: 2, granted: [0x00, 0x11, 0x11] });
    expect(out.session.subscriptions).toEqual(["cmd/#"]);
  });

  test("past MAX_SUBSCRIPTIONS a new filter gets 0x97, one already held is granted again", () => {
    const p = port(5);
    const out = new OutboundCommands(p, emptySession());
    const filters = Array.from({ length: MAX_SUBSCRIPTIONS }, (_, i) => `cmd/f${i}`);
    out.subscribe(sub(1, ...filters));
    out.subscribe(sub(2, "cmd/extra", "cmd/f3", "$share/g/cmd/#", "telemetry/#"));
    expect(p.sent.at(-1)).toMatchObject({ granted: [0x97, 1, 0x9e, 0x87] });
    expect(out.session.subscriptions.length).toBe(MAX_SUBSCRIPTIONS);
  });

  test("a command waits for a matching subscription, then goes out; its PUBACK clears it", () => {
    const p = port(5);
    const out = new OutboundCommands(p, emptySession());
    expect(out.deliver(cmd("c1", "set.temp"), route)).toBe(false);
    out.subscribe(sub(1, "cmd/set/+"));
    expect(p.wants).toBe(1);
    expect(out.deliver(cmd("c1", "set.temp"), route)).toBe(true);
    expect(out.session.unacked?.get("c1")).toBe(1);
    expect(out.puback(1)).toEqual({ id: "c1", route });
    expect(out.session.unacked?.size).toBe(0);
    expect(out.hasSent("c1")).toBe(false);
  });
});
