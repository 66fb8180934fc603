/**
 * Malformed input through the real TCP listener (issue 7): seeded fuzzing of a running
 * gateway before and after hello, then crash, log, output, service and memory checks. The
 * seed is printed; replay with OWSLA_TEST_FUZZ_SEED=<seed> (or scripts/hostile/fuzz.ts --seed).
 * The full-size run is `bun scripts/hostile/fuzz.ts` (10 minutes).
 *
 * Two regression tests below pin down inputs the fuzzer found.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { FUZZ_DEFAULTS, run } from "../scripts/hostile/fuzz.ts";
import { HostileGateway } from "../scripts/hostile/lib/gateway.ts";
import { expectCheck, printResult } from "../scripts/hostile/lib/expect-checks.ts";
import { randomSeed } from "../scripts/hostile/lib/prng.ts";
import { RawConn } from "../scripts/hostile/lib/raw.ts";
import { TestBackend } from "./helpers/backend.ts";

const SEED = Number(process.env.OWSLA_TEST_FUZZ_SEED) || randomSeed();
let result: Awaited<ReturnType<typeof run>> | null = null;

describe("fuzzing the device listener", () => {
  beforeAll(async () => {
    console.log(`hostile-fuzz: seed ${SEED} (replay: OWSLA_TEST_FUZZ_SEED=${SEED})`);
    result = await run({ ...FUZZ_DEFAULTS, duration_s: 20, concurrency: 32, seed: SEED, settle_s: 8 });
    printResult(result);
  }, 90_000);

  test("no worker process crashed or was restarted", () => expectCheck(result, "workers_unchanged"));
  test("no unhandled rejection, uncaught exception or crash line in any log output", () => expectCheck(result, "no_crash_lines"));
  test("everything the gateway sent is NDJSON with a known op and error code", () => expectCheck(result, "gateway_output_valid"));
  test("inputs with a determined answer get it (frame_too_large, ack at the size limit, welcome)", () => expectCheck(result, "expected_answers"));
  test("valid hellos before fuzz payloads are welcomed", () => expectCheck(result, "valid_hellos_welcomed"));
  test("a valid device is served during the fuzzing", () => expectCheck(result, "probe_during_fuzz"));
  test("every fuzz connection is closed afterwards", () => expectCheck(result, "connections_closed"));
  test("a valid device is served after the fuzzing", () => expectCheck(result, "served_after"));
  test("workers' memory returns near the baseline", () => expectCheck(result, "rss_back_near_baseline"));
});

describe("inputs found by the fuzzer", () => {
  let gw: HostileGateway;
  let backend: TestBackend;
  beforeAll(async () => {
    gw = await HostileGateway.start({ gatewayId: "fuzzfound", args: ["--workers", "1"] });
    backend = await new TestBackend(gw.gw.prefix).start();
  }, 30_000);
  afterAll(async () => {
    await backend?.stop([gw.gw.gatewayId]);
    await gw?.stop();
  });

  async function device(hw: string): Promise<RawConn> {
    const c = await RawConn.connect({ port: gw.port });
    c.write(JSON.stringify({ op: "hello", v: 1, device: hw, token: gw.token(hw) }) + "\n");
    return c;
  }

  test("a hello whose hardware id holds a lone UTF-16 surrogate gets an answer, not an unhandled rejection", async () => {
    // JSON allows "\ud800"; the device id then cannot be hashed into a UUID v5.
    const c = await device("\ud800x");
    const f = await c.waitFrame((x) => x.op === "welcome" || x.op === "error", 3000);
    c.terminate();
    await Bun.sleep(100);
    expect(gw.crashLines()).toEqual([]);
    expect(f?.op === "welcome" || (f?.op === "error" && ["bad_frame", "unauthorized"].includes(f.code))).toBe(true);
  });

  test("a pub whose ref makes correlation_id longer than 255 bytes is not acked and then lost, and does not jam the outbox", async () => {
    // 64 four-byte characters = 128 UTF-16 units (the ref limit) but 256 UTF-8 bytes.
    const a = await device("fuzz-poison-a");
    expect((await a.waitFrame((f) => f.op === "welcome", 3000))?.op).toBe("welcome");
    const poison = "💩".repeat(64);
    a.write(JSON.stringify({ op: "pub", topic: "t", body: { marker: "poison" }, ref: poison }) + "\n");
    // The gateway refuses the ref (it names the field; an invalid ref is not echoed).
    const answer = await a.waitFrame((f) => f.ref === poison || (f.op === "error" && /field "ref"/.test(f.message ?? "")), 6000);
    a.write(JSON.stringify({ op: "pub", topic: "t", body: { marker: "after-poison" }, ref: "after-poison" }) + "\n");
    expect((await a.waitFrame((f) => f.ref === "after-poison", 6000))?.op).toBe("ack");
    await Bun.sleep(3500); // a few outbox drain rounds
    const m = await gw.metrics();
    const copies = (marker: string) => backend.received.filter((r) => r.body?.marker === marker).length;
    a.terminate();
    // Either refused (error frame) or acked and delivered once; never acked and kept back.
    const poisonOutcome = answer?.op === "error" ? "refused" : answer?.op === "ack" ? (copies("poison") === 1 ? "acked and delivered once" : `acked, delivered ${copies("poison")} times`) : "no answer";
    expect({
      poison: ["refused", "acked and delivered once"].includes(poisonOutcome) ? "ok" : poisonOutcome,
      next_message_copies_at_backend: copies("after-poison"),
      outbox_depth: HostileGateway.metric(m, "owsla_outbox_depth"),
    }).toEqual({ poison: "ok", next_message_copies_at_backend: 1, outbox_depth: 0 });
  }, 20_000);
});
