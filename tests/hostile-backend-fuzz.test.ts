/**
 * Hostile back-end (issue 12): 60 s of seeded random and hostile AMQP messages (headers,
 * properties, bodies, sizes, encodings) on `owsla.down` and on the reply path, at connected,
 * offline, unknown and no devices, while valid commands and devices keep being served. The
 * seed is printed; replay with OWSLA_TEST_BACKEND_FUZZ_SEED=<seed> (or
 * scripts/hostile/backend-fuzz.ts --seed). The full-size run is `bun scripts/hostile/backend-fuzz.ts`.
 */
import { beforeAll, describe, test } from "bun:test";
import { BACKEND_FUZZ_DEFAULTS, run } from "../scripts/hostile/backend-fuzz.ts";
import { expectCheck, printResult } from "../scripts/hostile/lib/expect-checks.ts";
import { randomSeed } from "../scripts/hostile/lib/prng.ts";

const SEED = Number(process.env.OWSLA_TEST_BACKEND_FUZZ_SEED) || randomSeed();
let result: Awaited<ReturnType<typeof run>> | null = null;

describe("fuzzing the gateway queue from the back-end", () => {
  beforeAll(async () => {
    console.log(`hostile-backend-fuzz: seed ${SEED} (replay: OWSLA_TEST_BACKEND_FUZZ_SEED=${SEED})`);
    result = await run({ ...BACKEND_FUZZ_DEFAULTS, duration_s: 60, rate: 100, seed: SEED, settle_s: 20 });
    printResult(result);
  }, 180_000);

  test("no worker process crashed or was restarted", () => expectCheck(result, "workers_unchanged"));
  test("no unhandled rejection, uncaught exception or crash line in any log output", () => expectCheck(result, "no_crash_lines"));
  test("every line a device got is one valid frame within the frame limit", () => expectCheck(result, "device_output_valid"));
  test("a command that cannot fit a frame reaches no device", () => expectCheck(result, "too_large_never_delivered"));
  test("valid commands sent during the fuzzing reach their device byte for byte", () => expectCheck(result, "marked_commands_exact"));
  test("the gateway queue is drained: nothing stuck or redelivered for ever", () => expectCheck(result, "queue_drained"));
  test("a valid device is served during the fuzzing", () => expectCheck(result, "probe_during_fuzz"));
  test("a valid device is served after the fuzzing", () => expectCheck(result, "served_after"));
});
