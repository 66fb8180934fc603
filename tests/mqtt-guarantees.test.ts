/**
 * MQTT's PUBACK carries the gateway's guarantee: it goes out only once the message is
 * confirmed by the broker or committed to the outbox (so a broker outage still acks, from the
 * outbox, and everything arrives later); and a worker SIGKILLed while a command is written
 * but not PUBACKed loses nothing (the command is sent again on the next connection).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { IPublishPacket } from "mqtt-packet";
import { BrokerProxy } from "./helpers/proxy.ts";
import { closeProxied } from "./helpers/proxied-gateway.ts";
import { GatewayProcess, startGateway } from "./helpers/gateway.ts";
import { TestBackend } from "./helpers/backend.ts";
import { connectMqtt } from "./helpers/mqtt-client.ts";
import { RawMqtt } from "./helpers/mqtt-raw.ts";
import { deviceUuid } from "../src/identity/identity.ts";
import { DEFAULT_GATEWAY_SITE_NAMESPACE } from "../src/config/defaults.ts";

let proxy: BrokerProxy;
let gw: GatewayProcess;
let backend: TestBackend;
const uuid = (hw: string) => deviceUuid(DEFAULT_GATEWAY_SITE_NAMESPACE, hw);

beforeAll(async () => {
  proxy = new BrokerProxy().up();
  gw = await startGateway({ gatewayId: "mqg", args: ["--workers", "2", "--broker", proxy.url(), "--broker-heartbeat-s", "2", "--broker-reconnect-max-ms", "500"] });
  backend = await new TestBackend(gw.prefix).start();
});

afterAll(() => closeProxied(proxy, gw, backend));

test("while the broker is unreachable QoS 1 and 2 publishes are acked from the outbox and all arrive when it returns", async () => {
  const c = await connectMqtt(gw, "mqg-outage");
  await c.client.publishAsync("t", JSON.stringify({ n: 0 }), { qos: 1 });
  await backend.wait((r) => r.headers.hardware_id === "mqg-outage" && r.body.n === 0);
  proxy.down();
  for (let i = 1; i <= 20; i++) await c.client.publishAsync("t", JSON.stringify({ n: i }), { qos: i % 2 === 0 ? 2 : 1 });
  await Bun.sleep(300);
  // All 20 acked (PUBACK / PUBREC+PUBCOMP), none delivered yet: they are in the outbox.
  expect(backend.received.filter((r) => r.headers.hardware_id === "mqg-outage" && r.headers.topic === "t").length).toBe(1);
  proxy.up();
  await backend.wait((r) => r.headers.hardware_id === "mqg-outage" && r.body.n === 20, 15000);
  const got = backend.received.filter((r) => r.headers.hardware_id === "mqg-outage" && r.headers.topic === "t").map((r) => r.body.n);
  expect(got).toEqual(Array.from({ length: 21 }, (_, i) => i));
  await c.end();
});

test("SIGKILL of the workers while a command is written and not PUBACKed: it is sent again after the reconnect", async () => {
  const hw = "mqg-kill";
  const a = await RawMqtt.open(gw.mqttPort);
  await a.connect(hw, gw.token(hw));
  a.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "cmd/#", qos: 1 }] });
  await a.next((p) => p.cmd === "suback");
  await backend.command("mqg", uuid(hw), { open: true }, { messageId: "kill-1", topic: "door" });
  const first = (await a.next((p) => p.cmd === "publish")) as IPublishPacket;
  expect(first.topic).toBe("cmd/door");
  const before = gw.workerPids();
  for (const pid of before) process.kill(pid, "SIGKILL");
  await a.whenClosed();
  // Reconnect (retrying while the workers come back) and subscribe: the command comes again.
  let b: RawMqtt | null = null;
  for (let i = 0; i < 100 && !b; i++) {
    try {
      const r = await RawMqtt.open(gw.mqttPort);
      if ((await r.connect(hw, gw.token(hw))).reasonCode === 0) b = r;
    } catch {
      await Bun.sleep(100);
    }
  }
  expect(b).not.toBeNull();
  b!.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "cmd/#", qos: 1 }] });
  const again = (await b!.next((p) => p.cmd === "publish", 20000)) as IPublishPacket;
  expect(again.properties?.userProperties?.id).toBe("kill-1");
  expect(JSON.parse(again.payload.toString())).toEqual({ open: true });
  b!.send({ cmd: "puback", messageId: again.messageId! });
  await Bun.sleep(500);
  b!.drop();
  // Acked: a later connection does not get it again.
  const c = await RawMqtt.open(gw.mqttPort);
  await c.connect(hw, gw.token(hw));
  c.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "cmd/#", qos: 1 }] });
  await c.next((p) => p.cmd === "suback");
  await Bun.sleep(1500);
  expect(c.got.some((p) => p.cmd === "publish")).toBe(false);
  c.drop();
}, 60000);
