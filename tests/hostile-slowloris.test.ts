/**
 * Slowloris (issue 7): 2000 silent sockets and 200 that drip a byte of an unfinished hello
 * every 500 ms, with a 3 s hello timeout (the full-size run, `bun scripts/hostile/slowloris.ts`,
 * holds 10000 + 1000 with the default 10 s). All must be closed with hello_timeout by the
 * deadline counted from accept, descriptors and memory must return to the baseline, and
 * honest devices must get welcome with p99 < 50 ms meanwhile.
 */
import { beforeAll, describe, test } from "bun:test";
import { run } from "../scripts/hostile/slowloris.ts";
import { expectCheck, printResult } from "../scripts/hostile/lib/expect-checks.ts";

let result: Awaited<ReturnType<typeof run>> | null = null;

describe("connections that never finish hello", () => {
  beforeAll(async () => {
    result = await run({
      silent: 2000,
      drip: 200,
      drip_ms: 500,
      hello_timeout_ms: 3000,
      holders: 2,
      window: 64,
      probe_every_ms: 25,
      p99_limit_ms: 50,
      workers: 2,
      close_slack_ms: 1500,
      rss_margin_mb: 30,
      fd_margin: 8,
      settle_s: 10,
    });
    printResult(result);
  }, 90_000);

  test("all sockets are accepted and held at once", () => {
    expectCheck(result, "all_opened");
    expectCheck(result, "all_held_at_once");
  });
  test("every one is closed with hello_timeout", () => {
    expectCheck(result, "all_closed");
    expectCheck(result, "closed_with_hello_timeout");
  });
  test("dripping bytes does not extend the deadline: all closed by hello timeout + sweep", () => expectCheck(result, "closed_by_deadline"));
  test("descriptors return to the baseline", () => expectCheck(result, "fds_back"));
  test("memory returns near the baseline", () => expectCheck(result, "rss_back"));
  // The honest devices' welcome p99 (< 50 ms) is a speed measurement: scripts/hostile/slowloris.ts
  // checks and reports it (docs/reliability.md); here only that none of them is refused.
  test("honest devices get welcome meanwhile, none refused", () => expectCheck(result, "honest_no_failures"));
  test("no worker crashed, and a valid device is served afterwards", () => {
    expectCheck(result, "workers_unchanged");
    expectCheck(result, "no_crash_lines");
    expectCheck(result, "served_after");
  });
});
