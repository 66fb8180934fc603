/**
 * The interop suite every real MQTT client passes against a real gateway and RabbitMQ (issue
 * 14 item 6), for MQTT 3.1.1 and 5: connect and publish at QoS 0, 1 and 2 (the back-end gets
 * each under `<gw>.<device uuid>.<levels as words>` with the line protocol's device UUID),
 * receive a command sent by the back-end, receive what was queued while a persistent session was
 * away (once), and get the right CONNACK code for a wrong password. The tests per client
 * (tests/mqtt-interop-*.test.ts) skip with a warning only when their client is missing.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { TestBackend } from "./backend.ts";
import { removeDir, startGateway, type GatewayProcess } from "./gateway.ts";
import type { MqttClientAdapter, MqttLogin, MqttVersion, SubResult } from "./mqtt-clients.ts";
import { waitFor } from "./util.ts";

/** CONNACK codes for a wrong password: 3.1.1 return code 4, MQTT 5 reason code 0x86. */
export const BAD_PASSWORD: Record<MqttVersion, number> = { 4: 4, 5: 0x86 };

/** Registers the suite for `client` (skipped with a console warning when it is missing here). */
export function describeMqttInterop(client: MqttClientAdapter, tag: string): void {
  const missing = client.missing();
  if (missing) console.warn(`SKIPPED MQTT interop with ${client.name}: ${missing}.`);
  describe.skipIf(missing !== null)(`MQTT interop: ${client.name}`, () => {
    let gw: GatewayProcess;
    let backend: TestBackend;
    let port = 0;
    const gatewayId = `interop-${tag}`;

    beforeAll(async () => {
      gw = await startGateway({ gatewayId, args: ["--workers", "2"] });
      backend = await new TestBackend(gw.prefix).start();
      port = gw.mqttPort;
    }, 30_000);
    afterAll(async () => {
      await backend?.stop([gatewayId]);
      await gw?.stop();
      if (gw) removeDir(gw.dir);
    });

    /** The device's UUID as the line protocol gives it (MQTT must use the same one). */
    async function lineProtocolUuid(hw: string): Promise<string> {
      const { dev, welcome } = await gw.device(hw);
      dev.send({ op: "bye" });
      await dev.waitClosed(2000).catch(() => {});
      await waitFor(`${hw} to leave`, async () => !(await gw.connectedDevices()).has(welcome.id as string), 5000);
      return welcome.id as string;
    }

    function login(hw: string, version: MqttVersion, password = gw.token(hw)): MqttLogin {
      return { port, clientId: hw, password, version };
    }

    for (const version of [4, 5] as const) {
      const v = version === 5 ? "MQTT 5" : "MQTT 3.1.1";
      const hwBase = `${tag}-v${version}`;

      test(`${v}: publishes at QoS 0, 1 and 2 reach the back-end under <gw>.<uuid>.telemetry.temp with the line protocol's UUID`, async () => {
        const hw = `${hwBase}-pub`;
        const uuid = await lineProtocolUuid(hw);
        for (const qos of [0, 1, 2] as const) {
          const marker = `${hwBase}-q${qos}-${Math.random().toString(36).slice(2)}`;
          const r = await client.publish(login(hw, version), "telemetry/temp", qos, JSON.stringify({ marker, qos }));
          expect({ connack: r.connack, output: r.connack === 0 ? "" : r.output }).toEqual({ connack: 0, output: "" });
          const got = await backend.wait((m) => m.body?.marker === marker, 8000);
          expect({ routingKey: got.routingKey, body: got.body, device_id: got.headers.device_id, hardware_id: got.headers.hardware_id, protocol: got.headers.protocol }).toEqual({
            routingKey: `${gatewayId}.${uuid}.telemetry.temp`,
            body: { marker, qos },
            device_id: uuid,
            hardware_id: hw,
            protocol: "mqtt",
          });
        }
        // QoS 1 and 2 are published once each (QoS 2: exactly once).
        for (const qos of [1, 2]) expect(backend.received.filter((m) => m.body?.qos === qos && String(m.body?.marker).startsWith(`${hwBase}-q`)).length).toBe(1);
      }, 60_000);

      test(`${v}: a command from the back-end arrives on cmd/cmd with its body (and its id as a v5 user property)`, async () => {
        const hw = `${hwBase}-cmd`;
        const uuid = await lineProtocolUuid(hw);
        const sub = client.subscribe(login(hw, version), { persistent: false, count: 1 });
        await waitFor(`${hw} connected over MQTT`, async () => (await gw.connectedDevices()).has(uuid), 10_000);
        const body = { set: "on", marker: `${hwBase}-cmd` };
        await backend.command(gatewayId, uuid, body, { messageId: `m-${hwBase}` });
        const r = await sub.done;
        expect({ connack: r.connack, topics: r.messages.map((m) => m.topic), payloads: r.messages.map((m) => JSON.parse(m.payload)) }).toEqual({
          connack: 0,
          topics: ["cmd/cmd"],
          payloads: [body],
        });
        if (version === 5) expect(typeof r.messages[0]!.userProperties.id).toBe("string");
      }, 60_000);

      /** Visit 1 subscribes with a persistent session and leaves; the back-end sends a command; visit 2 comes back. */
      async function queuedWhileAway(hw: string): Promise<{ body: unknown; second: SubResult }> {
        const uuid = await lineProtocolUuid(hw);
        const first = await client.subscribe(login(hw, version), { persistent: true, count: 0 }).done;
        expect({ connack: first.connack, output: first.connack === 0 ? "" : first.output }).toEqual({ connack: 0, output: "" });
        await waitFor(`${hw} gone`, async () => !(await gw.connectedDevices()).has(uuid), 10_000);
        const body = { queued: true, marker: hw };
        await backend.command(gatewayId, uuid, body, { messageId: `q-${hw}` });
        await Bun.sleep(300); // the command reaches the gateway's offline store while the device is away
        return { body, second: await client.subscribe(login(hw, version), { persistent: true, count: 1 }).done };
      }

      test(`${v}: a persistent session gets the command queued while it was away`, async () => {
        const { body, second } = await queuedWhileAway(`${hwBase}-persist`);
        expect({ connack: second.connack, first: second.messages[0] ? JSON.parse(second.messages[0].payload) : second.output }).toEqual({ connack: 0, first: body });
      }, 60_000);

      test(`${v}: ... and gets it once: no second copy in that visit, nothing on the next visit`, async () => {
        const hw = `${hwBase}-once`;
        const { body, second } = await queuedWhileAway(hw);
        expect({ connack: second.connack, payloads: second.messages.map((m) => JSON.parse(m.payload)) }).toEqual({ connack: 0, payloads: [body] });
        // mosquitto_sub -C 1 may disconnect before its PUBACK leaves (seen once in CI: the next
        // visit got the command again, which at-least-once delivery requires without a PUBACK),
        // so the next visit is checked only for clients that PUBACK before they disconnect.
        if (client.name.startsWith("mosquitto")) return;
        const third = await client.subscribe(login(hw, version), { persistent: true, count: 1, timeoutS: 2 }).done;
        expect({ connack: third.connack, messages: third.messages.length }).toEqual({ connack: 0, messages: 0 });
      }, 60_000);

      test(`${v}: a wrong password is refused with CONNACK ${BAD_PASSWORD[version]}`, async () => {
        const hw = `${hwBase}-badpw`;
        const r = await client.publish(login(hw, version, "not-the-token"), "telemetry/temp", 1, "{}");
        expect({ connack: r.connack, output: r.connack === BAD_PASSWORD[version] ? "" : r.output }).toEqual({ connack: BAD_PASSWORD[version], output: "" });
        expect(backend.received.some((m) => m.headers.hardware_id === hw && m.routingKey.endsWith(".telemetry.temp"))).toBe(false);
      }, 30_000);
    }
  });
}
