/**
 * Slowloris: --silent sockets that never send hello plus --drip sockets that send one byte of
 * an unfinished hello every --drip-ms, from child processes (each to its own 127.0.0.x
 * destination). Checks that:
 *  - every one is closed by the hello deadline counted from accept (hello_timeout, not reset
 *    by dripped bytes), with `hello_timeout`;
 *  - workers' descriptors and VmRSS return to the baseline afterwards;
 *  - meanwhile honest devices get `welcome` with p99 < --p99-limit-ms (connect + hello →
 *    welcome, measured continuously from another address).
 *
 * Usage: bun scripts/hostile/slowloris.ts [--silent 10000] [--drip 1000] [--drip-ms 2000]
 *          [--hello-timeout-ms 10000] [--holders 4] [--p99-limit-ms 50]
 * Prints one JSON object (see scripts/hostile/README.md); exit 0 when all checks pass.
 */
import { join } from "node:path";
import { Child } from "./lib/children.ts";
import { Checks, runCli, type ScenarioResult } from "./lib/cli.ts";
import { HostileGateway } from "./lib/gateway.ts";
import { read, Sampler } from "./lib/proc.ts";
import { count, latencySummary, mb } from "./lib/stats.ts";

/** Options of {@link run}. */
export const SLOWLORIS_DEFAULTS = {
  silent: 10_000,
  drip: 1000,
  drip_ms: 2000,
  hello_timeout_ms: 10_000,
  /** Child processes holding the sockets (each under ~15000 sockets). */
  holders: 4,
  /** Connects in flight per holder. */
  window: 64,
  /** Honest probe every N ms. */
  probe_every_ms: 50,
  p99_limit_ms: 50,
  workers: 2,
  /** Slack over hello_timeout_ms + the 1 s sweep for the last close, ms. */
  close_slack_ms: 1500,
  rss_margin_mb: 30,
  fd_margin: 8,
  settle_s: 30,
};
export type SlowlorisOptions = typeof SLOWLORIS_DEFAULTS;

const USAGE = `
Usage: bun scripts/hostile/slowloris.ts [options]
Idle and dripping connections against a running gateway; prints a JSON result.
  --silent N            sockets that never send (default 10000)
  --drip N              sockets sending one byte every --drip-ms (default 1000)
  --drip-ms N           drip interval (default 2000)
  --hello-timeout-ms N  gateway device.hello_timeout_ms (default 10000)
  --holders N           client processes (default 4; keep sockets per process < 15000)
  --window N            connects in flight per holder (default 64)
  --probe-every-ms N    honest device probe interval (default 50)
  --p99-limit-ms N      limit for honest welcome p99 (default 50)
  --workers N           gateway worker processes (default 2)
  --close-slack-ms N    allowed lateness of the last close past hello timeout + 1 s sweep (default 1500)
  --rss-margin-mb N     allowed VmRSS above baseline afterwards, all workers (default 30)
  --fd-margin N         allowed descriptors above baseline afterwards, all workers (default 8)
  --settle-s N          longest wait for descriptors and memory to return (default 30)
Exit 0 when every check passed, 1 when one failed, 2 when the run itself failed.`;

/** Runs the scenario and returns its result. */
export async function run(o: SlowlorisOptions, log: (m: string) => void = () => {}): Promise<ScenarioResult> {
  const checks = new Checks();
  const total = o.silent + o.drip;
  if (total / o.holders > 15_000) throw new Error(`${Math.ceil(total / o.holders)} sockets per holder process; use more --holders`);
  const gw = await HostileGateway.start({
    gatewayId: "slowloris",
    args: ["--workers", String(o.workers), "--device-hello-timeout-ms", String(o.hello_timeout_ms)],
  });
  const holders: Child[] = [];
  try {
    for (let i = 0; i < 10; i++) await gw.probe(`slow-warm-${i % 3}`, { localAddress: "127.99.0.1" });
    await Bun.sleep(500);
    const pids = gw.workerPids();
    const baseline = read(pids);
    log(`slowloris: baseline ${mb(baseline.rssKb)} MiB, ${baseline.fds} fds; ${o.silent} silent + ${o.drip} drip sockets from ${o.holders} processes`);
    for (let i = 0; i < o.holders; i++) {
      const share = (n: number) => Math.floor(n / o.holders) + (i < n % o.holders ? 1 : 0);
      const args = { host: `127.0.0.${10 + i}`, port: gw.port, silent: share(o.silent), drip: share(o.drip), dripMs: o.drip_ms, window: o.window };
      holders.push(await Child.spawn(`holder ${i}`, join(import.meta.dir, "lib/holder.ts"), [JSON.stringify(args)]));
    }
    const sampler = new Sampler(pids, 200);

    // Honest devices, continuously, by phase.
    let phase = "opening";
    const welcomeMs: Record<string, number[]> = { opening: [], holding: [], closing: [] };
    const failures: string[] = [];
    let probing = true;
    let n = 0;
    // Open loop: a probe starts every probe_every_ms whether or not earlier ones finished, so a
    // stalled gateway shows in the latencies instead of just delaying the next probe.
    const inFlight = new Set<Promise<void>>();
    const prober = (async () => {
      let next = performance.now();
      while (probing) {
        if (inFlight.size < 200) {
          const ph = phase;
          const p = gw.probe(`slow-honest-${n++ % 200}`, { localAddress: "127.99.0.1" }).then((r) => {
            if (r.ok) welcomeMs[ph]!.push(r.welcomeMs!);
            else failures.push(`${ph}: ${r.why}`);
          });
          inFlight.add(p);
          void p.finally(() => inFlight.delete(p));
        }
        next += o.probe_every_ms;
        await Bun.sleep(Math.max(0, next - performance.now()));
      }
      await Promise.all(inFlight);
    })();

    const t0 = performance.now();
    const opened = await Promise.all(holders.map((h) => h.ask({ t: "open" }, "opened")));
    const openMs = performance.now() - t0;
    const openedCount = opened.reduce((s, r) => s + r.opened, 0);
    const openFailed = opened.reduce((s, r) => s + r.failed, 0);
    const held = sampler.sample().fds - baseline.fds;
    log(`slowloris: ${openedCount} open (${openFailed} failed) in ${Math.round(openMs)} ms; gateway holds ${held} more fds`);
    phase = "holding";
    // The hello deadline of the first sockets is near: the sweep is about to close them all.
    const closingTimer = setTimeout(() => (phase = "closing"), Math.max(0, t0 + o.hello_timeout_ms - 250 - performance.now()));
    // Wait for the gateway to close them all: hello timeout from the first accept, plus the open time and slack.
    const deadline = t0 + openMs + o.hello_timeout_ms + 1000 + o.close_slack_ms + 10_000;
    let reports: any[] = [];
    for (;;) {
      reports = await Promise.all(holders.map((h) => h.ask({ t: "report" }, "report")));
      const open = reports.reduce((s, r) => s + r.open, 0);
      if (open === 0 || performance.now() > deadline) break;
      await Bun.sleep(500);
    }
    clearTimeout(closingTimer);
    // A little time after the last close, so the closing phase has its probes.
    await Bun.sleep(1000);
    const attackMs = performance.now() - t0;
    probing = false;
    await prober;
    const peak = { rssKb: sampler.peakRssKb, fds: sampler.peakFds };
    sampler.stop();

    const codes: Record<string, number> = {};
    for (const r of reports) for (const [k, v] of Object.entries(r.codes as Record<string, number>)) count(codes, k, v);
    const stillOpen = reports.reduce((s, r) => s + r.open, 0);
    const closeMaxMs = Math.max(...reports.map((r) => r.closeMs.max ?? 0));
    const closeMinMs = Math.min(...reports.map((r) => r.closeMs.min ?? Infinity));
    const dripped = reports.reduce((s, r) => s + r.dripped, 0);
    for (const h of holders) await h.stop();
    holders.length = 0;

    // Descriptors and memory back to the baseline.
    const settleStart = performance.now();
    let end = read(pids);
    while ((end.fds > baseline.fds + o.fd_margin || end.rssKb > baseline.rssKb + o.rss_margin_mb * 1024) && performance.now() - settleStart < o.settle_s * 1000) {
      await Bun.sleep(1000);
      end = read(pids);
    }
    const after = await gw.probe("slow-after");
    const m = await gw.metrics();
    const crash = gw.crashLines();
    const all = [...welcomeMs.opening!, ...welcomeMs.holding!, ...welcomeMs.closing!];
    const summary = latencySummary(all);
    const helloTimeouts = (codes["silent:hello_timeout"] ?? 0) + (codes["drip:hello_timeout"] ?? 0);
    const limitMs = o.hello_timeout_ms + 1000 + o.close_slack_ms;

    checks.check("all_opened", openedCount === total, `${openedCount}/${total} opened, ${openFailed} failed`);
    checks.check("all_held_at_once", held >= total * 0.95, `gateway held ${held} extra descriptors at the peak of opening (${total} sockets)`);
    checks.check("all_closed", stillOpen === 0, `${stillOpen} still open ${Math.round(attackMs)} ms after the first connect`);
    checks.check("closed_with_hello_timeout", helloTimeouts === openedCount, `codes ${JSON.stringify(codes)}`);
    checks.check("closed_by_deadline", closeMaxMs <= limitMs, `last close ${closeMaxMs} ms after its connect (first ${closeMinMs} ms); limit ${limitMs} ms = hello timeout + 1 s sweep + ${o.close_slack_ms} ms`);
    checks.check("fds_back", end.fds <= baseline.fds + o.fd_margin, `baseline ${baseline.fds}, peak ${peak.fds}, after ${end.fds}`);
    checks.check("rss_back", end.rssKb <= baseline.rssKb + o.rss_margin_mb * 1024, `baseline ${mb(baseline.rssKb)} MiB, peak ${mb(peak.rssKb)} MiB, after ${mb(end.rssKb)} MiB`);
    checks.check("honest_p99", summary.p99 < o.p99_limit_ms, `welcome p99 ${summary.p99} ms over ${summary.count} probes (limit ${o.p99_limit_ms})`);
    checks.check("honest_no_failures", failures.length === 0, failures.slice(0, 5).join(" | ") || "none");
    checks.check("workers_unchanged", gw.workersUnchanged(), `pids at start ${gw.pidsAtStart.join(",")}, now ${gw.workerPids().join(",")}`);
    checks.check("no_crash_lines", crash.length === 0, crash.slice(0, 3).join("\n") || "none");
    checks.check("served_after", after.ok, after.ok ? "valid device served" : `failed: ${after.why}`);

    return {
      scenario: "slowloris",
      ok: checks.ok,
      params: o,
      checks: checks.all,
      durations: { open_ms: Math.round(openMs), attack_ms: Math.round(attackMs), settle_ms: Math.round(performance.now() - settleStart) },
      held,
      lost: failures.length,
      closed_with_code: codes,
      open_failed: openFailed,
      bytes_dripped: dripped,
      close_after_connect_ms: { first: closeMinMs, last: closeMaxMs, limit: limitMs },
      honest_welcome_ms: { all: summary, opening: latencySummary(welcomeMs.opening!), holding: latencySummary(welcomeMs.holding!), closing: latencySummary(welcomeMs.closing!) },
      gateway_closes_by_reason: HostileGateway.family(m, "owsla_closes_total"),
      memory_mb: { before: mb(baseline.rssKb), during_peak: mb(peak.rssKb), after: mb(end.rssKb) },
      fds: { before: baseline.fds, during_peak: peak.fds, after: end.fds },
      log_warnings: gw.problemLines(),
    };
  } finally {
    for (const h of holders) await h.stop().catch(() => {});
    await gw.stop();
  }
}

if (import.meta.main) await runCli(SLOWLORIS_DEFAULTS, USAGE, run);
