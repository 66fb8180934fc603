/**
 * Device brute force (issue 7) and lock-out (issue 12.4): bad tokens for one hardware id from
 * ever-new addresses, and from one address, against a gateway with 2 workers and
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

  test("bad tokens for one hardware id from many addresses ban nothing: the device is never locked out", () => {
    expectCheck(result, "hardware_id_never_banned");
    expectCheck(result, "victim_welcome_after_spread_attack");
  });
  test("repeated bad tokens from one address lead to a ban of that address", () => expectCheck(result, "address_banned"));
  test("the address ban starts after auth.ban_failures failures, whichever worker counted them", () => expectCheck(result, "address_ban_after_failures"));
  test("while an address is banned, every attempt from it is refused", () => expectCheck(result, "address_ban_holds"));
  test("the victim's valid token from another address is welcomed while the attacker's address is banned; the banned address is refused even for a valid device", () => {
    expectCheck(result, "victim_welcome_while_attacker_banned");
    expectCheck(result, "attacker_address_refused_while_banned");
  });
  test("valid devices with other hardware ids from other addresses are unaffected", () => expectCheck(result, "bystanders_unaffected"));
  test("bans are counted in /metrics, and no hardware id is ever banned", () => {
    expectCheck(result, "metrics_bans");
    expectCheck(result, "metrics_rejected");
  });
  test("the address ban expires after auth.ban_duration_s", () => {
    expectCheck(result, "victim_welcome_after_expiry");
    expectCheck(result, "address_ban_expires");
  });
  test("no worker crashed", () => {
    expectCheck(result, "workers_unchanged");
    expectCheck(result, "no_crash_lines");
  });
});
