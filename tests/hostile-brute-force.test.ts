/**
 * Device brute force (issue 7): bad tokens for one hardware id from ever-new addresses, and
 * from one address for ever-new hardware ids, against a gateway with 2 workers and
 * --auth-ban-failures 5 --auth-ban-duration-s 3. The full-size run is
 * `bun scripts/hostile/brute-force.ts`.
 */
import { beforeAll, describe, test } from "bun:test";
import { run } from "../scripts/hostile/brute-force.ts";
import { expectCheck, printResult } from "../scripts/hostile/lib/expect-checks.ts";

let result: Awaited<ReturnType<typeof run>> | null = null;

describe("bad tokens, repeated", () => {
  beforeAll(async () => {
    result = await run({ failures: 5, window_s: 60, duration_s: 3, extra_attempts: 10, workers: 2, bystanders: 5 });
    printResult(result);
  }, 60_000);

  test("repeated bad tokens for one hardware id lead to a ban of that hardware id", () => expectCheck(result, "hardware_id_banned"));
  test("repeated bad tokens from one address lead to a ban of that address", () => expectCheck(result, "address_banned"));
  test("the hardware-id ban starts after auth.ban_failures failures, whichever worker counted them", () => expectCheck(result, "hardware_id_ban_after_failures"));
  test("the address ban starts after auth.ban_failures failures, whichever worker counted them", () => expectCheck(result, "address_ban_after_failures"));
  test("while a hardware id is banned, every attempt for it is refused", () => expectCheck(result, "hardware_id_ban_holds"));
  test("while an address is banned, every attempt from it is refused", () => expectCheck(result, "address_ban_holds"));
  test("a banned hardware id is refused even with its valid token; a banned address even for a valid device", () => {
    expectCheck(result, "victim_refused_while_banned");
    expectCheck(result, "attacker_address_refused_while_banned");
  });
  test("valid devices with other hardware ids from other addresses are unaffected", () => expectCheck(result, "bystanders_unaffected"));
  test("bans are counted in /metrics", () => {
    expectCheck(result, "metrics_bans");
    expectCheck(result, "metrics_rejected");
  });
  test("both bans expire after auth.ban_duration_s", () => {
    expectCheck(result, "hardware_id_ban_expires");
    expectCheck(result, "address_ban_expires");
  });
  test("no worker crashed", () => {
    expectCheck(result, "workers_unchanged");
    expectCheck(result, "no_crash_lines");
  });
});
