/**
 * A persistent MQTT session gets a command queued while it was away exactly once (issue 14
 * items 4 and 6), on a gateway with 2 workers, where the device's visits land on either worker:
 * visit 1 subscribes to cmd/# with a persistent session and leaves; the back-end sends a
 * command; visit 2 (CONNECT, then SUBSCRIBE after the CONNACK, as mqtt.js and paho do) must
 * get it once and PUBACKs it; visit 3 must get nothing. Found by the interop suite (mqtt.js and
 * mosquitto_sub saw the command twice); repeated over 10 devices per version so a race shows.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connectBytes, mqttBytes, MqttRawConn } from "../scripts/hostile/lib/mqtt-raw.ts";
import { TestBackend } from "./helpers/backend.ts";
import { removeDir, startGateway, type GatewayProcess } from "./helpers/gateway.ts";
import { waitFor } from "./helpers/util.ts";

let gw: GatewayProcess;
let backend: TestBackend;

beforeAll(async () => {
  gw = await startGateway({ gatewayId: "once", args: ["--workers", "2"] });
  backend = await new TestBackend(gw.prefix).start();
}, 30_000);
afterAll(async () => {
  await backend?.stop(["once"]);
  await gw?.stop();
  if (gw) removeDir(gw.dir);
});

/** One visit of a persistent session: CONNECT, CONNACK, SUBSCRIBE; PUBACKs every command for `ms`; DISCONNECT. Returns the command bodies. */
async function visit(hw: string, version: 4 | 5, ms: number): Promise<string[]> {
  const c = await MqttRawConn.connect({ port: gw.mqttPort, version });
  const got: string[] = [];
  try {
    c.write(connectBytes(hw, gw.token(hw), version, { clean: false, ...(version === 5 ? { properties: { sessionExpiryInterval: 3600 } } : {}) }));
    expect(await c.connack()).toBe(0);
    c.write(mqttBytes({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "cmd/#", qos: 1 }] }, version));
    const until = performance.now() + ms;
    let seen = 0;
    while (performance.now() < until) {
      const p = await c.waitPacket((p) => p.cmd === "publish" && c.packets.filter((x) => x.cmd === "publish").indexOf(p) >= seen, until - performance.now());
      if (!p) break;
      seen++;
      got.push(String(p.payload));
      c.write(mqttBytes({ cmd: "puback", messageId: p.messageId }, version));
      // Subscribing again right behind the PUBACK (a client restoring its subscriptions) must
      // not bring the acked command back.
      c.write(mqttBytes({ cmd: "subscribe", messageId: 2, subscriptions: [{ topic: "cmd/#", qos: 1 }] }, version));
    }
    c.write(mqttBytes({ cmd: "disconnect" }, version));
    await c.waitClosed(1000);
  } finally {
    c.terminate();
  }
  return got;
}

describe("persistent MQTT sessions on 2 workers", () => {
  for (const version of [4, 5] as const) {
    // Clients subscribe again on every connection; that SUBSCRIBE once made the gateway re-read
    // the command store and send a just-acked command again (2 to 7 copies seen here).
    test(`MQTT ${version === 5 ? "5" : "3.1.1"}: a command queued while the session was away arrives once, and not again on the next visit`, async () => {
      // Ten devices at once (each its own sequence of visits): faster, and the visits of
      // different devices interleave on both workers.
      const outcomes: Record<string, { second: number; third: number }> = {};
      await Promise.all(
        Array.from({ length: 10 }, async (_, i) => {
          const hw = `once-v${version}-${i}`;
          const { dev, welcome } = await gw.device(hw);
          const uuid = welcome.id as string;
          dev.send({ op: "bye" });
          await waitFor(`${hw} to leave`, async () => !(await gw.connectedDevices()).has(uuid), 5000);
          await visit(hw, version, 0);
          await waitFor(`${hw} gone`, async () => !(await gw.connectedDevices()).has(uuid), 5000);
          await backend.command("once", uuid, { n: i }, { messageId: `once-${version}-${i}` });
          await Bun.sleep(200);
          const second = await visit(hw, version, 600);
          await waitFor(`${hw} gone`, async () => !(await gw.connectedDevices()).has(uuid), 5000);
          const third = await visit(hw, version, 600);
          outcomes[hw] = { second: second.length, third: third.length };
        }),
      );
      const expected = Object.fromEntries(Object.keys(outcomes).map((k) => [k, { second: 1, third: 0 }]));
      expect(outcomes).toEqual(expected);
    }, 60_000);
  }
});
