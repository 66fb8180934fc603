/**
 * SIGKILL the gateway while messages flow both ways, restart it, and show nothing is lost:
 * every message a device got an `ack` for reached the back-end, every command the broker
 * accepted reached its device, and the database passes `PRAGMA integrity_check` after each kill.
 */
import { afterAll, expect, test } from "bun:test";
import { integrity } from "./helpers/store-files.ts";
import { join } from "node:path";
import { AMQPClient } from "@cloudamqp/amqp-client";
import { BROKER_URL, removeDir, startGateway, type GatewayProcess } from "./helpers/gateway.ts";
import { TestBackend } from "./helpers/backend.ts";
import { SimDevice } from "./helpers/sim-device.ts";

let gw: GatewayProcess;
let backend: TestBackend;

afterAll(async () => {
  await gw?.stop();
  await backend?.stop([gw.gatewayId]);
  removeDir(gw.dir);
});


test("SIGKILL under two-way traffic loses no acked message and no accepted command", async () => {
  gw = await startGateway({ gatewayId: "crashy" });
  backend = await new TestBackend(gw.prefix).start();
  const devices = Array.from({ length: 8 }, (_, i) => new SimDevice(`crash-${i}`, () => gw.port, gw.token(`crash-${i}`), 5));

  // A back-end that keeps commanding devices, with publisher confirms (so we know the broker accepted each).
  const cmdClient = new AMQPClient(BROKER_URL);
  await cmdClient.connect();
  const cmdCh = await cmdClient.channel();
  await cmdCh.confirmSelect();
  const accepted = new Map<string, string>(); // command id -> device UUID
  let commanding = true;
  let n = 0;
  const commander = (async () => {
    while (commanding) {
      const d = devices[n % devices.length]!;
      if (d.deviceId) {
        const id = `cmd-${n}`;
        await cmdCh.basicPublish(`${gw.prefix}owsla.down`, gw.gatewayId, JSON.stringify({ n }), { headers: { device_id: d.deviceId }, messageId: id, deliveryMode: 2 });
        accepted.set(id, d.deviceId);
      }
      n++;
      await Bun.sleep(5);
    }
  })();

  for (let round = 0; round < 3; round++) {
    await Bun.sleep(1200);
    await gw.kill();
    expect(integrity(gw.dir)).toBe("ok");
    await Bun.sleep(200);
    await gw.start();
  }
  await Bun.sleep(800);
  commanding = false;
  await commander;
  for (const d of devices) d.quiet();

  // Wait until every acked message and every accepted command has arrived.
  const upMissing = () => {
    const got = new Set(backend.received.map((r) => r.correlationId));
    return devices.flatMap((d) => [...d.acked].filter((ref) => !got.has(`${d.deviceId}:${ref}`)));
  };
  const downMissing = () => {
    const byId = new Map(devices.map((d) => [d.deviceId, d]));
    return [...accepted].filter(([id, dev]) => !byId.get(dev)!.cmds.has(id)).map(([id]) => id);
  };
  for (let i = 0; i < 100 && (upMissing().length > 0 || downMissing().length > 0); i++) await Bun.sleep(100);

  const ackedTotal = devices.reduce((s, d) => s + d.acked.size, 0);
  const upDuplicates = backend.received.length - new Set(backend.received.map((r) => r.messageId)).size;
  const cmdDeliveries = devices.reduce((s, d) => s + d.cmdDeliveries, 0);
  console.log(`crash-safety: ${ackedTotal} device messages acked, ${upDuplicates} duplicate deliveries to the back-end (same message_id); ${accepted.size} commands accepted, ${cmdDeliveries - accepted.size} repeated deliveries to devices`);
  expect(ackedTotal).toBeGreaterThan(500);
  expect(accepted.size).toBeGreaterThan(200);
  expect(upMissing()).toEqual([]);
  expect(downMissing()).toEqual([]);

  await Promise.all(devices.map((d) => d.stop()));
  await cmdClient.close();
  expect(integrity(gw.dir)).toBe("ok");
}, 60_000);
