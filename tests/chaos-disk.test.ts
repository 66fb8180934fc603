/**
 * Issue 7, item 9 (CI size): disk trouble under the running gateway, with the broker
 * unreachable so every device message needs the outbox.
 * - Full: the data directory is an 8 MiB tmpfs that gets filled. Pubs get `server_busy`,
 *   never `ack`; the error is logged and GET /readyz answers 503 with the store error; once
 *   the space is freed readyz is 200 again and acks resume.
 * - Read-only: the data directory is ext4 on a loop device (errors=remount-ro) and an fs error
 *   is injected, so the kernel turns it read-only under the gateway (a tmpfs cannot be
 *   remounted read-only while files are open for writing). Same checks; recovery is an
 *   operator's (stop, fsck, mount, start).
 * Needs root (mount); skipped otherwise. Full size: scripts/chaos/disk.ts.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { privateBrokerAvailable } from "./helpers/private-broker.ts";
import { closeEnv, diskFull, diskReadOnly, diskUnavailable, failedChecks, openEnv, printScenario, type ChaosEnv, type ScenarioResult } from "./helpers/chaos-scenarios.ts";

const why = privateBrokerAvailable() ? diskUnavailable() : "no RabbitMQ";
const load = { devices: 8, everyMs: 25, cmdEveryMs: 25, warmupMs: 1500, afterMs: 500 };
let env: ChaosEnv | undefined;

beforeAll(async () => {
  if (!why) env = await openEnv("ci-disk");
}, 120_000);

afterAll(async () => {
  await closeEnv(env);
}, 60_000);

function report(r: ScenarioResult): void {
  printScenario(r);
  expect(failedChecks(r)).toEqual([]);
}

test.skipIf(why !== null)("data directory full while the broker is down: server_busy (never ack), readyz 503, recovery when space returns", async () => {
  report(await diskFull(env!, { load, faultMs: 6000, padBytes: 1000 }));
}, 90_000);

test.skipIf(why !== null)("data directory turns read-only while the broker is down: server_busy (never ack), readyz 503, recovery after fsck", async () => {
  report(await diskReadOnly(env!, { load, faultMs: 4000, padBytes: 1000 }));
}, 120_000);
