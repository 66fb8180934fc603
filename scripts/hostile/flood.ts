/**
 * Connection flood, in two parts.
 *
 * `rate`: child processes open connections as fast as they can from a few source addresses
 * against a gateway with --device-accept-rate-per-ip set. Checks that the per-address limit
 * holds (accepts per address ≤ rate x duration + one second's burst, as documented: "accepts
 * per second allowed from one source address"), that refusals are `rate_limited`, and that the
 * pub → ack round trip p99 of honest devices (other addresses, connected before) grows less
 * than 2x compared with before the flood. With device.flood_threshold set (the default), the
 * gateway hands each flooding address to the kernel, which drops its SYNs unanswered; the
 * flooders then abandon a connect after `connect_timeout_ms` and start the next, so the SYN
 * rate stays as high as they can make it (check `kernel_drops`). The flooders run at nice 19
 * by default: on one box they share the gateway's cores, and an attacker elsewhere would not
 * take its CPU. The broker shares them too: its own publish → confirm p99, measured directly
 * during the flood, is reported, as is ping → pong (the gateway only).
 *
 * `emfile`: the workers' descriptor limit is lowered (prlimit) and idle connections are held
 * until accept() fails with EMFILE while more wait in the backlog. Checks that the workers do
 * not spin (CPU bounded), connected devices keep their round trips, and new devices are
 * served again once descriptors are free.
 *
 * Usage: bun scripts/hostile/flood.ts [--part both|rate|emfile] [--rate-per-ip 50]
 *          [--flood-s 30] [--flooders 2] [--addresses-per-flooder 2] [--window 1024]
 * Prints one JSON object (see scripts/hostile/README.md); exit 0 when all checks pass.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { BrokerProbe } from "./lib/broker-probe.ts";
import { Child } from "./lib/children.ts";
import { Checks, runCli, type ScenarioResult } from "./lib/cli.ts";
import { Fleet } from "./lib/fleet.ts";
import { HostileGateway } from "./lib/gateway.ts";
import { cpuDuring, cpuSeconds, fdCount, read, Sampler } from "./lib/proc.ts";
import { count, latencySummary, mb } from "./lib/stats.ts";

/** Options of {@link run}. */
export const FLOOD_DEFAULTS = {
  part: "both",
  workers: 2,
  rate_per_ip: 50,
  before_s: 10,
  flood_s: 30,
  after_s: 5,
  flooders: 2,
  addresses_per_flooder: 2,
  /** Connects in flight per flooder. */
  window: 1024,
  /** A flooder abandons a connect not answered within this (the kernel dropped its SYN). */
  connect_timeout_ms: 20,
  /** Gateway device.flood_threshold (0: floods are only refused by the workers). */
  flood_threshold: 100,
  /** Gateway device.flood_block_s. */
  flood_block_s: 10,
  /** Niceness of the flooders (19: they get only CPU the gateway leaves; 0: they compete). */
  flooder_nice: 19,
  /**
   * CPUs the flooders may run on (taskset list, e.g. "1"); "" = any. By default the last CPU
   * of a multi-core box: the flooders stand in for machines elsewhere, and the gateway and the
   * broker keep the other cores (on loopback the kernel's work for each SYN, filtering
   * included, runs on the sender's CPU).
   */
  flooder_cpus: navigator.hardwareConcurrency > 1 ? String(navigator.hardwareConcurrency - 1) : "",
  honest: 10,
  honest_every_ms: 20,
  /** The pub → ack p99 during the flood may be at most this factor of the p99 before. */
  rtt_factor: 2,
  /** Descriptors left to each worker above those it uses when the EMFILE part starts. */
  emfile_headroom: 200,
  /** Connections held beyond what the lowered limits allow. */
  emfile_extra: 300,
  emfile_measure_s: 5,
  /**
   * CPU a worker may use at EMFILE with connections waiting, in percentage points of one core
   * above what it uses for the same honest traffic without EMFILE.
   */
  emfile_cpu_limit_pct: 10,
};
export type FloodOptions = typeof FLOOD_DEFAULTS;

const USAGE = `
Usage: bun scripts/hostile/flood.ts [options]
Connection flood against a running gateway; prints a JSON result.
  --part both|rate|emfile       which parts to run (default both)
  --workers N                   gateway worker processes (default 2)
  --rate-per-ip N               device.accept_rate_per_ip (default 50)
  --before-s N                  honest round trips measured before the flood (default 10)
  --flood-s N                   flood duration (default 30)
  --after-s N                   measured after (default 5)
  --flooders N                  flooding processes (default 2)
  --addresses-per-flooder N     source addresses per flooder, 127.55.<flooder>.<n> (default 2)
  --window N                    connects in flight per flooder (default 1024)
  --connect-timeout-ms N        a flooder abandons a connect unanswered this long (default 20)
  --flood-threshold N           gateway device.flood_threshold; 0 = no kernel drops (default 100)
  --flood-block-s N             gateway device.flood_block_s (default 10)
  --flooder-nice N              niceness of the flooders; 19 = CPU the gateway leaves over, as an
                                attacker on another machine; 0 = compete for the cores (default 19)
  --flooder-cpus LIST           CPUs the flooders may use (taskset list, e.g. 1; "" = any);
                                default the last CPU when there are several
  --honest N                    honest connected devices (default 10)
  --honest-every-ms N           pub interval per honest device (default 20)
  --rtt-factor N                allowed pub→ack p99 growth during the flood (default 2)
  --emfile-headroom N           descriptors left per worker under the lowered limit (default 200)
  --emfile-extra N              connections beyond the limits (default 300)
  --emfile-measure-s N          CPU measuring time at EMFILE (default 5)
  --emfile-cpu-limit-pct N      allowed CPU per worker at EMFILE, points above the same
                                traffic without EMFILE (default 10)
Exit 0 when every check passed, 1 when one failed, 2 when the run itself failed.`;

const round1 = (x: number) => Math.round(x * 10) / 10;

/** Part `rate`: the accept-rate limit under a flood. */
async function rateFlood(o: FloodOptions, checks: Checks, log: (m: string) => void): Promise<Record<string, unknown>> {
  const gw = await HostileGateway.start({
    gatewayId: "flood",
    args: [
      "--workers", String(o.workers),
      "--device-accept-rate-per-ip", String(o.rate_per_ip),
      "--device-flood-threshold", String(o.flood_threshold),
      "--device-flood-block-s", String(o.flood_block_s),
    ],
  });
  const flooders: Child[] = [];
  let fleet: Fleet | null = null;
  let broker: BrokerProbe | null = null;
  try {
    for (let f = 0; f < o.flooders; f++) {
      const addresses = Array.from({ length: o.addresses_per_flooder }, (_, j) => `127.55.${f}.${j + 1}`);
      const args = [JSON.stringify({ host: `127.0.0.${20 + f}`, port: gw.port, addresses, window: o.window, connectTimeoutMs: o.connect_timeout_ms })];
      flooders.push(await Child.spawn(`flooder ${f}`, join(import.meta.dir, "lib/flooder.ts"), args, { nice: o.flooder_nice, cpus: o.flooder_cpus }));
    }
    fleet = await Fleet.start(gw, o.honest, o.honest_every_ms, (i) => `127.99.0.${i + 1}`);
    broker = await BrokerProbe.start(o.honest_every_ms);
    const pids = gw.workerPids();
    // Warm-up round trips (first publishes, JIT) are not part of the baseline.
    fleet.phase = "warmup";
    await Bun.sleep(1000);
    fleet.phase = "before";
    log(`flood/rate: measuring honest round trips for ${o.before_s} s`);
    await Bun.sleep(o.before_s * 1000);
    const baseline = read(pids);
    fleet.phase = "during";
    broker.phase = "during";
    const sampler = new Sampler(pids, 500);
    const cpu0 = pids.map(cpuSeconds);
    log(`flood/rate: flooding for ${o.flood_s} s from ${o.flooders * o.addresses_per_flooder} addresses`);
    const t0 = performance.now();
    const results = await Promise.all(flooders.map((f) => f.ask({ t: "go", ms: o.flood_s * 1000 }, "done", o.flood_s * 1000 + 30_000)));
    const floodMs = performance.now() - t0;
    const cpuPct = pids.map((p, i) => Math.round(((cpuSeconds(p) - cpu0[i]!) / (floodMs / 1000)) * 100));
    fleet.phase = "after";
    broker.phase = "after";
    sampler.stop();
    await Bun.sleep(o.after_s * 1000);
    await fleet.stop();
    await broker.stop();
    const probe = await gw.probe("flood-after", { localAddress: "127.99.1.1" });
    const m = await gw.metrics();
    const crash = gw.crashLines();

    const T = floodMs / 1000;
    const allowed = Math.ceil(o.rate_per_ip * T + Math.max(1, o.rate_per_ip));
    const perAddress: Record<string, unknown> = {};
    const codes: Record<string, number> = {};
    let attempts = 0;
    let accepted = 0;
    let worst = 0;
    let connectFailed = 0;
    let noAnswer = 0;
    let dropped = 0;
    for (const r of results) {
      for (const [addr, p] of Object.entries(r.perAddress as Record<string, any>)) {
        attempts += p.attempts;
        accepted += p.accepted;
        connectFailed += p.connectFailed;
        noAnswer += p.noAnswer;
        dropped += p.dropped;
        for (const [c, n] of Object.entries(p.codes as Record<string, number>)) count(codes, c, n);
        worst = Math.max(worst, p.accepted / allowed);
        perAddress[addr] = {
          attempts: p.attempts,
          accepted: p.accepted,
          refused: p.codes,
          connect_failed: p.connectFailed,
          connect_errors: p.connectErrors,
          no_answer: p.noAnswer,
          dropped_by_kernel: p.dropped,
          accepted_per_s: round1(p.accepted / T),
          max_accepted_in_1s: Math.max(0, ...p.acceptedPerSecond),
          allowed,
        };
      }
    }
    const before = fleet.summary("before");
    const during = fleet.summary("during");
    const after = fleet.summary("after");
    const refusedOther = Object.entries(codes).filter(([c]) => c !== "rate_limited");

    checks.check(
      "per_address_limit",
      worst <= 1.05,
      `largest accepts/allowed ratio ${round1(worst * 100) / 100} (allowed per address ${allowed} = ${o.rate_per_ip}/s x ${round1(T)} s + ${o.rate_per_ip} burst; ${o.workers} workers)`,
    );
    checks.check("refusals_are_rate_limited", (codes.rate_limited ?? 0) > 0 && refusedOther.length === 0, `refusals ${JSON.stringify(codes)}`);
    // On one box the broker shares the cores with the flood: its own confirm latency, measured
    // directly (not through the gateway), is reported next to the gateway's.
    const brokerDuring = broker.summary("during");
    const pingBefore = fleet.pingSummary("before");
    const pingDuring = fleet.pingSummary("during");
    checks.check(
      "honest_rtt_p99",
      during.p99 < o.rtt_factor * before.p99,
      `pub→ack p99 before ${before.p99} ms, during ${during.p99} ms (${round1(during.p99 / before.p99)}x, limit ${o.rtt_factor}x), after ${after.p99} ms; the broker's own confirm p99 during the flood ${brokerDuring.p99} ms; gateway-only ping→pong p99 ${pingBefore.p99} → ${pingDuring.p99} ms`,
    );
    const floodDrops = HostileGateway.metric(m, "owsla_flood_drops_total");
    const addresses = o.flooders * o.addresses_per_flooder;
    if (o.flood_threshold > 0) {
      checks.check(
        "kernel_drops",
        floodDrops >= addresses && dropped > 0,
        `owsla_flood_drops_total ${floodDrops} (${addresses} flooding addresses); connects the kernel left unanswered ${dropped} of ${attempts}`,
      );
    }
    checks.check("honest_no_failures", fleet.failures.length === 0, fleet.failures.slice(0, 5).join(" | ") || "none");
    checks.check("rate_workers_unchanged", gw.workersUnchanged(), `pids at start ${gw.pidsAtStart.join(",")}, now ${gw.workerPids().join(",")}`);
    checks.check("rate_no_crash_lines", crash.length === 0, crash.slice(0, 3).join("\n") || "none");
    checks.check("rate_served_after", probe.ok, probe.ok ? "valid device served" : `failed: ${probe.why}`);

    return {
      flood_s: round1(T),
      attempts,
      attempts_per_s: Math.round(attempts / T),
      accepted,
      lost: fleet.failures.length + (probe.ok ? 0 : 1),
      closed_with_code: codes,
      connect_failed: connectFailed,
      no_answer: noAnswer,
      dropped_by_kernel: dropped,
      gateway_flood_drops: floodDrops,
      per_address: perAddress,
      gateway_accepts_rejected: HostileGateway.family(m, "owsla_accepts_rejected_total"),
      gateway_accepts_total: HostileGateway.metric(m, "owsla_accepts_total"),
      honest_pub_ack_ms: { before, during, after },
      honest_ping_pong_ms: { before: fleet.pingSummary("before"), during: fleet.pingSummary("during"), after: fleet.pingSummary("after") },
      broker_confirm_ms_direct: { before: broker.summary("before"), during: broker.summary("during"), after: broker.summary("after") },
      gateway_cpu_pct_per_worker: cpuPct,
      gateway_peak_cpu_pct: Math.round(sampler.peakCpuPct),
      memory_mb: { before: mb(baseline.rssKb), during_peak: mb(sampler.peakRssKb), after: mb(read(pids).rssKb) },
      fds: { before: baseline.fds, during_peak: sampler.peakFds, after: read(pids).fds },
      log_warnings: gw.problemLines(),
    };
  } finally {
    await fleet?.stop().catch(() => {});
    await broker?.stop().catch(() => {});
    for (const f of flooders) await f.stop().catch(() => {});
    await gw.stop();
  }
}

/** Sets the descriptor limit of running process `pid`. */
function setFdLimit(pid: number, limit: number): void {
  const r = Bun.spawnSync(["prlimit", "--pid", String(pid), `--nofile=${limit}:${limit}`]);
  if (r.exitCode !== 0) throw new Error(`prlimit --pid ${pid} failed: ${r.stderr.toString()}`);
}

/** Part `emfile`: workers out of descriptors with connections waiting in the backlog. */
async function emfile(o: FloodOptions, checks: Checks, log: (m: string) => void): Promise<Record<string, unknown>> {
  const gw = await HostileGateway.start({ gatewayId: "emfile", args: ["--workers", String(o.workers), "--device-hello-timeout-ms", "120000"] });
  let holder: Child | null = null;
  let fleet: Fleet | null = null;
  try {
    fleet = await Fleet.start(gw, 3, 50, (i) => `127.99.2.${i + 1}`, "emfile-honest");
    await Bun.sleep(1000);
    const pids = gw.workerPids();
    // Control: the workers' CPU with the same honest traffic and no EMFILE, over as long.
    const control = await cpuDuring(pids, () => Bun.sleep(o.emfile_measure_s * 1000));
    const controlPct = control.perPid;
    const limits: Record<number, number> = {};
    for (const p of pids) {
      const highest = Math.max(...readdirSync(`/proc/${p}/fd`).map(Number));
      limits[p] = highest + 1 + o.emfile_headroom;
      setFdLimit(p, limits[p]!);
    }
    const toHold = pids.length * o.emfile_headroom + o.emfile_extra;
    log(`flood/emfile: worker fd limits ${JSON.stringify(limits)}; holding ${toHold} idle connections`);
    holder = await Child.spawn("emfile holder", join(import.meta.dir, "lib/holder.ts"), [
      JSON.stringify({ host: "127.0.0.30", port: gw.port, silent: toHold, drip: 0, dripMs: 1000, window: 64, openTimeoutMs: 8000 }),
    ]);
    fleet.phase = "emfile";
    const opened = await holder.ask({ t: "open" }, "opened", 60_000);
    await Bun.sleep(1000);
    const fdsAtLimit = pids.map((p) => fdCount(p));
    const cpu0 = pids.map(cpuSeconds);
    const t0 = performance.now();
    // A new device during EMFILE: informational (it waits in the backlog).
    const during = await gw.probe("emfile-new", { localAddress: "127.99.3.1", timeoutMs: o.emfile_measure_s * 1000 });
    await Bun.sleep(Math.max(0, o.emfile_measure_s * 1000 - (performance.now() - t0)));
    const wall = (performance.now() - t0) / 1000;
    const cpuPct = pids.map((p, i) => Math.round(((cpuSeconds(p) - cpu0[i]!) / wall) * 100));
    fleet.phase = "released";
    await holder.ask({ t: "close" }, "closed");
    await holder.stop();
    holder = null;
    await Bun.sleep(1500);
    const after = await gw.probe("emfile-after", { localAddress: "127.99.3.2" });
    await Bun.sleep(500);
    await fleet.stop();
    const crash = gw.crashLines();
    const reached = pids.every((p, i) => fdsAtLimit[i]! >= limits[p]! - 5);

    checks.check("emfile_reached", reached, `worker fds at the limit: ${pids.map((p, i) => `${fdsAtLimit[i]}/${limits[p]}`).join(", ")}`);
    checks.check(
      "emfile_cpu_bounded",
      cpuPct.every((c, i) => c <= controlPct[i]! + o.emfile_cpu_limit_pct),
      `worker CPU at EMFILE with connections waiting: ${cpuPct.join("%, ")}%; same traffic without EMFILE: ${controlPct.join("%, ")}% (limit: that + ${o.emfile_cpu_limit_pct} points each)`,
    );
    checks.check("emfile_connected_devices_served", fleet.failures.length === 0 && (fleet.rtt.emfile?.length ?? 0) > 0, `${fleet.rtt.emfile?.length ?? 0} round trips at EMFILE; failures ${fleet.failures.slice(0, 3).join(" | ") || "none"}`);
    checks.check("emfile_workers_unchanged", gw.workersUnchanged(), `pids at start ${gw.pidsAtStart.join(",")}, now ${gw.workerPids().join(",")}`);
    checks.check("emfile_no_crash_lines", crash.length === 0, crash.slice(0, 3).join("\n") || "none");
    checks.check("emfile_served_after", after.ok, after.ok ? `new device welcomed in ${round1(after.welcomeMs!)} ms after release` : `failed: ${after.why}`);

    return {
      fd_limits: limits,
      held: opened.opened,
      open_failed: opened.failed,
      fds_at_limit: fdsAtLimit,
      cpu_pct_per_worker_at_emfile: cpuPct,
      cpu_pct_per_worker_without_emfile: controlPct,
      new_device_during_emfile: during.ok ? `welcomed in ${round1(during.welcomeMs!)} ms` : during.why,
      honest_pub_ack_ms: { emfile: fleet.summary("emfile"), released: fleet.summary("released") },
      lost: fleet.failures.length + (after.ok ? 0 : 1),
      log_warnings: gw.problemLines(),
    };
  } finally {
    await fleet?.stop().catch(() => {});
    await holder?.stop().catch(() => {});
    await gw.stop();
  }
}

/** Runs the scenario and returns its result. */
export async function run(o: FloodOptions, log: (m: string) => void = () => {}): Promise<ScenarioResult> {
  if (!["both", "rate", "emfile"].includes(o.part)) throw new Error(`Invalid --part ${o.part}: expected both, rate or emfile`);
  const checks = new Checks();
  const out: Record<string, unknown> = {};
  const t0 = performance.now();
  if (o.part !== "emfile") out.rate = await rateFlood(o, checks, log);
  if (o.part !== "rate") out.emfile = await emfile(o, checks, log);
  const rate = out.rate as Record<string, any> | undefined;
  const em = out.emfile as Record<string, any> | undefined;
  return {
    scenario: "flood",
    ok: checks.ok,
    params: o,
    checks: checks.all,
    durations: { total_s: round1((performance.now() - t0) / 1000), flood_s: rate?.flood_s },
    held: em?.held ?? 0,
    lost: (rate?.lost ?? 0) + (em?.lost ?? 0),
    closed_with_code: rate?.closed_with_code ?? {},
    p99_ms: rate
      ? {
          pub_ack_before: rate.honest_pub_ack_ms.before.p99,
          pub_ack_during: rate.honest_pub_ack_ms.during.p99,
          pub_ack_after: rate.honest_pub_ack_ms.after.p99,
          broker_confirm_during: rate.broker_confirm_ms_direct.during.p99,
          ping_pong_before: rate.honest_ping_pong_ms.before.p99,
          ping_pong_during: rate.honest_ping_pong_ms.during.p99,
        }
      : undefined,
    memory_mb: rate?.memory_mb,
    ...out,
  };
}

if (import.meta.main) await runCli(FLOOD_DEFAULTS, USAGE, run);
