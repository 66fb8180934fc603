/**
 * Device brute force and lock-out attempts: repeated hellos with bad tokens for one victim's
 * hardware id
 *  - from ever-new source addresses: nothing may be banned (failures count per source address
 *    only, so nobody can lock a device out without its credentials),
 *  - from one source address: that address is banned once --auth-ban-failures failures were
 *    seen (for the gateway as a whole, whichever worker the kernel hands a connection to), and
 *    every further attempt from it is refused while the ban lasts.
 * Meanwhile the victim, with its valid token from another address, is welcomed; valid devices
 * elsewhere are unaffected; the ban shows in /metrics (owsla_auth_bans_total,
 * owsla_accepts_rejected_total{reason="banned_address"}) and expires after --auth-ban-duration-s.
 *
 * Usage: bun scripts/hostile/brute-force.ts [--failures 10] [--window-s 60] [--duration-s 10]
 *          [--extra-attempts 20] [--workers 2]
 * Prints one JSON object (see scripts/hostile/README.md); exit 0 when all checks pass.
 */
import { Checks, runCli, type ScenarioResult } from "./lib/cli.ts";
import { HostileGateway } from "./lib/gateway.ts";
import { RawConn } from "./lib/raw.ts";
import { count } from "./lib/stats.ts";

/** Options of {@link run}. */
export const BRUTE_DEFAULTS = {
  failures: 10,
  window_s: 60,
  duration_s: 10,
  /** Attempts made after the first refusal, all of which must be refused. */
  extra_attempts: 20,
  workers: 2,
  /** Honest devices checked during the bans. */
  bystanders: 10,
};
export type BruteOptions = typeof BRUTE_DEFAULTS;

const USAGE = `
Usage: bun scripts/hostile/brute-force.ts [options]
Bad-token brute force against a running gateway; prints a JSON result.
  --failures N        auth.ban_failures (default 10)
  --window-s N        auth.ban_window_s (default 60)
  --duration-s N      auth.ban_duration_s (default 10)
  --extra-attempts N  attempts after the first refusal, all must be refused (default 20)
  --workers N         gateway worker processes (default 2)
  --bystanders N      valid devices checked during the bans (default 10)
Exit 0 when every check passed, 1 when one failed, 2 when the run itself failed.`;

/** What one hello attempt got. */
type Outcome = "welcome" | "unauthorized" | "banned_address" | "banned_hardware_id" | string;

/** One hello with `token` for `hw` from `local`; classifies the answer. */
async function attempt(gw: HostileGateway, hw: string, token: string, local: string): Promise<Outcome> {
  let c: RawConn;
  try {
    c = await RawConn.connect({ port: gw.port, localAddress: local });
  } catch {
    return "connect_failed";
  }
  try {
    c.write(JSON.stringify({ op: "hello", v: 1, device: hw, token }) + "\n");
    const f = await c.waitFrame((x) => x.op === "welcome" || x.op === "error", 3000);
    if (!f) return c.closed ? "closed_without_answer" : "no_answer";
    if (f.op === "welcome") return "welcome";
    if (f.code === "rate_limited" && /address/.test(f.message)) return "banned_address";
    if (f.code === "rate_limited" && /hardware id/.test(f.message)) return "banned_hardware_id";
    return String(f.code);
  } finally {
    c.terminate();
  }
}

/** Address number `i` of a /16 pool: 127.<b>.x.y. */
const addr = (b: number, i: number) => `127.${b}.${Math.floor(i / 250)}.${(i % 250) + 1}`;

interface Campaign {
  /** Failed attempts (unauthorized) before the first ban refusal. */
  failuresBeforeBan: number;
  /** Attempts until and including the first refusal. */
  attemptsToBan: number;
  /** Outcomes of the attempts after the first refusal. */
  after: Record<string, number>;
  bannedAt: number;
  all: Outcome[];
}

/** Repeats `one(i)` until it is refused with `banned`, then `extra` more times. */
async function campaign(one: (i: number) => Promise<Outcome>, banned: Outcome, limit: number, extra: number): Promise<Campaign> {
  const all: Outcome[] = [];
  let i = 0;
  let bannedAt = 0;
  for (; i < limit; i++) {
    const o = await one(i);
    all.push(o);
    if (o === banned) {
      bannedAt = performance.now();
      break;
    }
  }
  const after: Record<string, number> = {};
  for (let k = 0; k < extra; k++) {
    const o = await one(++i);
    all.push(o);
    count(after, o);
  }
  const first = all.indexOf(banned);
  return {
    failuresBeforeBan: (first < 0 ? all : all.slice(0, first)).filter((o) => o === "unauthorized").length,
    attemptsToBan: first < 0 ? -1 : first + 1,
    after,
    bannedAt,
    all,
  };
}

/** How often each outcome occurred in a campaign. */
const outcomesOf = (c: Campaign) => c.all.reduce((a, b) => (count(a, b), a), {} as Record<string, number>);

/** Runs the scenario and returns its result. */
export async function run(o: BruteOptions, log: (m: string) => void = () => {}): Promise<ScenarioResult> {
  const checks = new Checks();
  const gw = await HostileGateway.start({
    gatewayId: "brute",
    args: [
      "--workers",
      String(o.workers),
      "--auth-ban-failures",
      String(o.failures),
      "--auth-ban-window-s",
      String(o.window_s),
      "--auth-ban-duration-s",
      String(o.duration_s),
    ],
  });
  try {
    const t0 = performance.now();
    const m0 = await gw.metrics();
    // Enough attempts to ban even if each worker counted on its own, and then some.
    const limit = o.failures * o.workers * 3 + 5;
    const victim = "brute-victim";
    log(`brute-force: bad tokens for hardware id ${victim} from new addresses`);
    // No outcome ends this campaign: all `limit` attempts must be answered `unauthorized`.
    const hw = await campaign((i) => attempt(gw, victim, `forged-${i}`, addr(66, i)), "(never)", limit, 0);
    const victimMidway = await attempt(gw, victim, gw.token(victim), "127.68.0.3");
    const attacker = "127.67.0.1";
    log(`brute-force: bad tokens for hardware id ${victim} from ${attacker}`);
    const ip = await campaign((i) => attempt(gw, victim, `forged-${i}`, attacker), "banned_address", limit, o.extra_attempts);

    // During the ban: the victim's valid token from another address is welcomed, the attacker
    // address is refused for everyone, and valid devices elsewhere are unaffected.
    const victimValid = await attempt(gw, victim, gw.token(victim), "127.68.0.1");
    const attackerValid = await attempt(gw, "brute-from-attacker", gw.token("brute-from-attacker"), attacker);
    const bystanders: Outcome[] = [];
    for (let i = 0; i < o.bystanders; i++) bystanders.push(await attempt(gw, `brute-bystander-${i}`, gw.token(`brute-bystander-${i}`), addr(69, i)));
    const m1 = await gw.metrics();
    const delta = (k: string) => HostileGateway.metric(m1, k) - HostileGateway.metric(m0, k);
    const bans = delta("owsla_auth_bans_total");
    const rejAddr = delta('owsla_accepts_rejected_total{reason="banned_address"}');
    const rejHw = delta('owsla_accepts_rejected_total{reason="banned_hardware_id"}');
    const authFailures = delta("owsla_auth_failures_total");

    // Expiry: wait until both bans are over (from the later one), then try again.
    const lastBan = Math.max(hw.bannedAt, ip.bannedAt);
    const waitMs = Math.max(0, lastBan + o.duration_s * 1000 + 1000 - performance.now());
    log(`brute-force: waiting ${Math.round(waitMs)} ms for the bans to expire`);
    await Bun.sleep(waitMs);
    const victimAfter = await attempt(gw, victim, gw.token(victim), "127.68.0.2");
    const attackerAfter = await attempt(gw, "brute-from-attacker", gw.token("brute-from-attacker"), attacker);
    const crash = gw.crashLines();

    const leak = (c: Campaign) => c.after.unauthorized ?? 0;
    checks.check("hardware_id_never_banned", hw.all.length === limit && hw.all.every((x) => x === "unauthorized"), `${limit} bad tokens for ${victim} from new addresses: ${JSON.stringify(outcomesOf(hw))}`);
    checks.check("victim_welcome_after_spread_attack", victimMidway === "welcome", `victim with its valid token after them: ${victimMidway}`);
    checks.check("address_banned", ip.attemptsToBan > 0, `first address ban refusal at attempt ${ip.attemptsToBan} after ${ip.failuresBeforeBan} failures`);
    checks.check("address_ban_after_failures", ip.attemptsToBan > 0 && ip.failuresBeforeBan <= o.failures, `${ip.failuresBeforeBan} failed hellos were answered before the ban (auth.ban_failures ${o.failures})`);
    checks.check("address_ban_holds", leak(ip) === 0 && (ip.after.banned_address ?? 0) === o.extra_attempts, `after the first refusal: ${JSON.stringify(ip.after)}`);
    checks.check("victim_welcome_while_attacker_banned", victimValid === "welcome", `victim with its valid token from another address: ${victimValid}`);
    checks.check("attacker_address_refused_while_banned", attackerValid === "banned_address", `valid device from the banned address: ${attackerValid}`);
    checks.check("bystanders_unaffected", bystanders.every((b) => b === "welcome"), `valid devices elsewhere: ${JSON.stringify(bystanders.reduce((a, b) => (count(a, b), a), {} as Record<string, number>))}`);
    checks.check("metrics_bans", bans === 1, `owsla_auth_bans_total +${bans} (one address ban, counted once)`);
    checks.check("metrics_rejected", rejAddr > 0 && rejHw === 0, `owsla_accepts_rejected_total banned_address +${rejAddr}, banned_hardware_id +${rejHw}`);
    checks.check("victim_welcome_after_expiry", victimAfter === "welcome", `victim after ${o.duration_s} s: ${victimAfter}`);
    checks.check("address_ban_expires", attackerAfter === "welcome", `attacker address after ${o.duration_s} s: ${attackerAfter}`);
    checks.check("workers_unchanged", gw.workersUnchanged(), `pids at start ${gw.pidsAtStart.join(",")}, now ${gw.workerPids().join(",")}`);
    checks.check("no_crash_lines", crash.length === 0, crash.slice(0, 3).join("\n") || "none");

    const outcomes = outcomesOf;
    return {
      scenario: "brute-force",
      ok: checks.ok,
      params: o,
      checks: checks.all,
      durations: { total_s: Math.round((performance.now() - t0) / 100) / 10 },
      held: 0,
      lost: bystanders.filter((b) => b !== "welcome").length,
      closed_with_code: { hardware_id_campaign: outcomes(hw), address_campaign: outcomes(ip) },
      hardware_id_campaign: { attempts_to_ban: hw.attemptsToBan, failures_before_ban: hw.failuresBeforeBan, after_ban: hw.after, sequence: hw.all.join(" ") },
      address_campaign: { attempts_to_ban: ip.attemptsToBan, failures_before_ban: ip.failuresBeforeBan, after_ban: ip.after, sequence: ip.all.join(" ") },
      during_ban: { victim_valid_token: victimValid, victim_after_spread_attack: victimMidway, attacker_address_valid_token: attackerValid },
      after_expiry: { victim: victimAfter, attacker_address: attackerAfter },
      metrics_delta: { owsla_auth_bans_total: bans, banned_address: rejAddr, banned_hardware_id: rejHw, owsla_auth_failures_total: authFailures },
      log_warnings: gw.problemLines(),
    };
  } finally {
    await gw.stop();
  }
}

if (import.meta.main) await runCli(BRUTE_DEFAULTS, USAGE, run);
