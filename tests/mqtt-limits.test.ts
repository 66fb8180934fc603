/**
 * Refusals at accept on the MQTT port say why in a CONNACK once the client's CONNECT arrives
 * (the CONNACK must match its protocol version): the worker's connection limit is 0x89 Server
 * busy, the accept rate 0x9F Connection rate exceeded (MQTT 3.1.1: 3 Server unavailable), an
 * address banned after failed logins 0x8A Banned (3.1.1: 5 Not authorized), and a refused client
 * that never sends CONNECT is cut.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { removeDir, startGateway, type GatewayProcess } from "./helpers/gateway.ts";
import { RawMqtt } from "./helpers/mqtt-raw.ts";
import { TestDevice } from "./helpers/device.ts";

let busy: GatewayProcess;
let rated: GatewayProcess;
let banning: GatewayProcess;

beforeAll(async () => {
  [busy, rated, banning] = await Promise.all([
    startGateway({ gatewayId: "mql-busy", waitBroker: false, args: ["--workers", "1", "--device-max-connections", "1"] }),
    startGateway({ gatewayId: "mql-rate", waitBroker: false, args: ["--workers", "1", "--device-accept-rate-per-ip", "1", "--device-flood-threshold", "0"] }),
    startGateway({ gatewayId: "mql-ban", waitBroker: false, args: ["--workers", "2", "--auth-ban-failures", "3", "--auth-ban-duration-s", "60"] }),
  ]);
});

afterAll(async () => {
  for (const gw of [busy, rated, banning]) {
    await gw.stop();
    removeDir(gw.dir);
  }
});

test("over the worker's connection limit: CONNACK 0x89 (MQTT 5) / 3 (MQTT 3.1.1)", async () => {
  const first = await RawMqtt.open(busy.mqttPort);
  expect((await first.connect("mql-1", busy.token("mql-1"))).reasonCode).toBe(0);
  const v5 = await RawMqtt.open(busy.mqttPort);
  expect((await v5.connect("mql-2", busy.token("mql-2"))).reasonCode).toBe(0x89);
  await v5.whenClosed();
  const v4 = await RawMqtt.open(busy.mqttPort, 4);
  expect((await v4.connect("mql-3", busy.token("mql-3"))).returnCode).toBe(3);
  await v4.whenClosed();
  // A refused client that says nothing is cut.
  const silent = await RawMqtt.open(busy.mqttPort);
  await silent.whenClosed(5000);
  expect(silent.got).toEqual([]);
  first.drop();
});

test("over the accept rate of the address: CONNACK 0x9F Connection rate exceeded", async () => {
  const codes: number[] = [];
  for (let i = 0; i < 3; i++) {
    const c = await RawMqtt.open(rated.mqttPort);
    codes.push((await c.connect(`mql-r${i}`, rated.token(`mql-r${i}`))).reasonCode ?? -1);
    c.drop();
  }
  expect(codes[0]).toBe(0);
  expect(codes.slice(1)).toContain(0x9f);
});

test("failed logins over MQTT and the line protocol count together; the banned address gets CONNACK 0x8A (MQTT 5) / 5 (3.1.1), even with the right password", async () => {
  const codes: number[] = [];
  for (let i = 0; i < 2; i++) {
    const c = await RawMqtt.open(banning.mqttPort);
    codes.push((await c.connect("mql-victim", "not-the-token")).reasonCode ?? -1);
    c.drop();
  }
  expect(codes).toEqual([0x86, 0x86]);
  // The third failure comes over the line protocol, from the same address.
  const dev = await TestDevice.connect(banning.port);
  dev.send({ op: "hello", v: 1, device: "mql-victim", token: "not-the-token" });
  expect((await dev.op("error")).code).toBe("unauthorized");
  dev.close();
  const v5 = await RawMqtt.open(banning.mqttPort);
  expect((await v5.connect("mql-victim", banning.token("mql-victim"))).reasonCode).toBe(0x8a);
  const v4 = await RawMqtt.open(banning.mqttPort, 4);
  expect((await v4.connect("mql-victim", banning.token("mql-victim"))).returnCode).toBe(5);
  v5.drop();
  v4.drop();
});
