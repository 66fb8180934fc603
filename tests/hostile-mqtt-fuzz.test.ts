/**
 * Malformed MQTT through the real MQTT port (issue 14 item 8): seeded fuzzing of a running
 * gateway (random bytes, mutated CONNECTs and packets, Remaining Length tricks, random packet
 * types, junk MQTT 5 properties, packets at the size limit, valid sessions split at random
 * points), then crash, log, output, service and memory checks. The seed is printed; replay with
 * OWSLA_TEST_FUZZ_SEED=<seed> (or scripts/hostile/mqtt-fuzz.ts --seed). The full-size run is
 * `bun scripts/hostile/mqtt-fuzz.ts` (10 minutes).
 */
import { beforeAll, describe, test } from "bun:test";
import { MQTT_FUZZ_DEFAULTS, run } from "../scripts/hostile/mqtt-fuzz.ts";
import { expectCheck, printResult } from "../scripts/hostile/lib/expect-checks.ts";
import { randomSeed } from "../scripts/hostile/lib/prng.ts";

const SEED = Number(process.env.OWSLA_TEST_FUZZ_SEED) || randomSeed();
let result: Awaited<ReturnType<typeof run>> | null = null;

describe("fuzzing the MQTT listener", () => {
  beforeAll(async () => {
    console.log(`hostile-mqtt-fuzz: seed ${SEED} (replay: OWSLA_TEST_FUZZ_SEED=${SEED})`);
    // One worker: every fuzz session hits the worker the well-behaved device uses.
    result = await run({ ...MQTT_FUZZ_DEFAULTS, duration_s: 20, concurrency: 32, seed: SEED, settle_s: 8, workers: 1 });
    printResult(result);
  }, 90_000);

  test("no worker process crashed or was restarted", () => expectCheck(result, "workers_unchanged"));
  test("no unhandled rejection, uncaught exception or crash line in any log output", () => expectCheck(result, "no_crash_lines"));
  test("everything the gateway sent parses as MQTT server packets", () => expectCheck(result, "gateway_output_valid"));
  test("valid sessions split at random points get CONNACK 0 and PUBACK 0", () => expectCheck(result, "expected_answers"));
  test("valid CONNECTs before fuzz payloads are accepted", () => expectCheck(result, "valid_connects_accepted"));
  test("a well-behaved MQTT device is served during the fuzzing", () => expectCheck(result, "probe_during_fuzz"));
  test("every fuzz connection is closed afterwards", () => expectCheck(result, "connections_closed"));
  test("a well-behaved MQTT device is served after the fuzzing", () => expectCheck(result, "served_after"));
  test("workers' memory returns near the baseline", () => expectCheck(result, "rss_back_near_baseline"));
});
