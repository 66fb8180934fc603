/**
 * Issue 7, item 8 (CI size): 3 SIGKILLs of the whole gateway and 3 of single workers under
 * two-way load (devices publishing, a back-end commanding them with publisher confirms):
 * no device-acked message and no broker-confirmed command is lost, and the database passes
 * `PRAGMA integrity_check` after every kill. Full size (20 + 20): scripts/chaos/kills.ts.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { privateBrokerAvailable } from "./helpers/private-broker.ts";
import { closeEnv, failedChecks, gatewayKills, openEnv, type ChaosEnv } from "./helpers/chaos-scenarios.ts";

const hasBroker = privateBrokerAvailable();
let env: ChaosEnv | undefined;

beforeAll(async () => {
  if (hasBroker) env = await openEnv("ci-kills");
}, 120_000);

afterAll(async () => {
  await closeEnv(env);
}, 60_000);

test.skipIf(!hasBroker)("SIGKILL of the gateway (3x) and of single workers (3x) under load: nothing lost, integrity ok", async () => {
  const results = await gatewayKills(env!, {
    load: { devices: 8, everyMs: 25, cmdEveryMs: 25, warmupMs: 1500, afterMs: 500 },
    wholeCycles: 3,
    workerCycles: 3,
    cycleMs: 1500,
  });
  for (const r of results) {
    console.log(`${r.scenario}: ${JSON.stringify(r.numbers)}`);
    for (const c of r.checks) console.log(`  ${c.ok ? "ok  " : c.info ? "info" : "FAIL"} ${c.name}: ${c.detail}`);
  }
  expect(results.flatMap((r) => failedChecks(r).map((c) => `${r.scenario}: ${c.name}: ${c.detail}`))).toEqual([]);
}, 120_000);
