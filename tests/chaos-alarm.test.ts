/**
 * Issue 7, item 7 (CI size): a RabbitMQ memory alarm blocks publishers for 12 s on a private
 * node. The gateway stops publishing (device messages go to the outbox, devices keep getting
 * acks), its memory stays bounded, commands queued before the alarm are still delivered during
 * it (they are parked in a TTL queue that dead-letters them into the gateway queue mid-alarm:
 * a back-end cannot publish during the alarm, it is blocked too), and nothing is lost after
 * release. Full size (60 s): scripts/chaos/alarm.ts.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { privateBrokerAvailable } from "./helpers/private-broker.ts";
import { closeEnv, failedChecks, openEnv, resourceAlarm, type ChaosEnv } from "./helpers/chaos-scenarios.ts";

const hasBroker = privateBrokerAvailable();
let env: ChaosEnv | undefined;

beforeAll(async () => {
  if (hasBroker) env = await openEnv("ci-alarm");
}, 120_000);

afterAll(async () => {
  await closeEnv(env);
}, 60_000);

test.skipIf(!hasBroker)("memory alarm for 12 s: publishing held in the outbox, commands still delivered, RSS bounded, nothing lost", async () => {
  const r = await resourceAlarm(env!, {
    load: { devices: 8, everyMs: 25, cmdEveryMs: 25, warmupMs: 1500, afterMs: 500 },
    alarmMs: 12_000,
    queuedCommands: 100,
  });
  console.log(`${r.scenario}: ${JSON.stringify(r.numbers)}`);
  for (const c of r.checks) console.log(`  ${c.ok ? "ok  " : c.info ? "info" : "FAIL"} ${c.name}: ${c.detail}`);
  expect(failedChecks(r)).toEqual([]);
}, 120_000);
