/**
 * MQTT 3.1.1 and 5.0 on the gateway's MQTT port (mqtt.js against a real gateway and RabbitMQ):
 * identity and refusals, upstream publishes at each QoS under the AMQP contract, commands,
 * request/response, takeover across protocols, and what the gateway refuses.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { GatewayProcess, removeDir, startGateway } from "./helpers/gateway.ts";
import { TestBackend } from "./helpers/backend.ts";
import { connectMqtt, refusedConnect } from "./helpers/mqtt-client.ts";

let gw: GatewayProcess;
let backend: TestBackend;

beforeAll(async () => {
  gw = await startGateway({ gatewayId: "mq", args: ["--workers", "2"] });
  backend = await new TestBackend(gw.prefix).start();
});

afterAll(async () => {
  await gw.stop();
  await backend.stop([gw.gatewayId]);
  removeDir(gw.dir);
});

describe("connect", () => {
  test("a device connects with its hardware id and token and publishes QoS 1 under the AMQP contract", async () => {
    const c = await connectMqtt(gw, "mq-thermo-1");
    await c.client.publishAsync("telemetry/temp", JSON.stringify({ c: 21.5 }), { qos: 1 });
    const r = await backend.wait((r) => r.headers.hardware_id === "mq-thermo-1" && r.headers.topic === "telemetry.temp");
    expect(r.routingKey).toBe(`mq.${r.headers.device_id}.telemetry.temp`);
    expect(r.headers.protocol).toBe("mqtt");
    expect(r.body).toEqual({ c: 21.5 });
    await c.end();
  });
});
