/**
 * The benchmark suite behind `scripts/bench`: runs every benchmark with its baseline in the
 * same run, saves each result as JSON, and renders docs/benchmarks.md from them.
 *
 * Usage: scripts/bench [--quick] [--devices 200000] [--workers 12] [--big 400000]
 *                      [--big-workers 24] [--only a,b] [--skip a,b] [--out FILE]
 *                      [--results DIR] [--render DIR]
 *   --quick    a few thousand devices, small runs (about 3 minutes); writes to /tmp unless --out
 *   --big 0    skips the 400k attempt
 *   --huge N   also tries N devices (e.g. 1000000) on ceil(N / 16,700) workers (default 0: skipped)
 *   --render   re-renders the report from a results directory without running anything
 *   --small N  devices of the gateway_small phase (default 20000; 0 skips it)
 *   --gateway-args "A B"  extra `owsla serve` options for the gateway runs (A/B runs of a setting)
 *   --mqtt-devices N  devices of the mqtt phase (default 15000; each broker is one process under
 *              the 20000-descriptor limit), --mqtt-rate R its requests/s (default 500),
 *              --mqtt-skip-owsla  runs only Mosquitto and RabbitMQ
 * Phases: machine, startup, forward, welcomes, broker_rtt, throughput, gateway_small, floor_small,
 * rate_sweep, mqtt, bare, gateway, floor, bare_big, gateway_big, bare_huge, gateway_huge.
 * The floor phases run the contract floor (bench-lib/floor-server.ts) under the gateway's load.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ROOT, uniquePrefix } from "../../tests/helpers/gateway.ts";
import { TestBackend } from "../../tests/helpers/backend.ts";
import { cpuAccounting, machineInfo, waitForQuiet } from "./machine.ts";
import { loadArgv, runJson, show, startBackend, startBareServers, startBenchGateway, stopAll } from "./procs.ts";
import { renderReport, type Results } from "./render.ts";
import { mqttPhase } from "./mqtt-phase.ts";

const argv = process.argv.slice(2);
const has = (f: string) => argv.includes(`--${f}`);
const val = (f: string, d: string) => {
  const i = argv.indexOf(`--${f}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : d;
};
const int = (f: string, d: number) => {
  const v = Number(val(f, String(d)));
  if (!Number.isInteger(v) || v < 0) throw new Error(`Invalid --${f} ${val(f, "")}: expected a non-negative integer`);
  return v;
};

const QUICK = has("quick");
/** Devices of the main runs. */
const DEVICES = int("devices", QUICK ? 3000 : 200_000);
/** Gateway workers for them: each under 20000 descriptors. */
const WORKERS = int("workers", QUICK ? 2 : Math.max(2, Math.ceil(DEVICES / 16_700)));
const BIG = int("big", QUICK ? 0 : 400_000);
const BIG_WORKERS = int("big-workers", Math.max(2, Math.ceil(BIG / 16_700)));
/** The largest attempt (e.g. 1,000,000; 0 skips it): where it breaks. */
const HUGE = int("huge", 0);
const HUGE_WORKERS = int("huge-workers", Math.max(2, Math.ceil(HUGE / 16_700)));
/** Device messages per second during the round-trip benchmark. */
const MSG_RATE = int("msg-rate", QUICK ? 500 : 5000);
/** Back-end-initiated commands per second (door unlocks). */
const CMD_RATE = int("cmd-rate", QUICK ? 20 : 100);
/** Seconds of messages once every device is welcomed. */
const MSG_PHASE_S = QUICK ? 10 : 60;
const OUT = resolve(val("out", QUICK ? "/tmp/owsla-benchmarks-quick.md" : join(ROOT, "docs/benchmarks.md")));
const RESULTS = resolve(val("results", join("/tmp", `owsla-bench-${new Date().toISOString().replace(/[:.]/g, "-")}`)));
const only = val("only", "").split(",").filter(Boolean);
/** Extra `owsla serve` options for every gateway of the run (A/B runs of a setting). */
const GATEWAY_ARGS = val("gateway-args", "").split(" ").filter(Boolean);
const skip = val("skip", "").split(",").filter(Boolean);

const log = (s: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
const bun = process.execPath;
let hostRange = 20;
/** A fresh 127.x.0.1 per load run, so connections of earlier runs in TIME_WAIT never collide. */
const nextHostBase = () => `127.${hostRange++}.0.1`;
/** Shows every 10th progress line of a load run (all of them in quick mode). */
const progress = (tag: string) => {
  let n = 0;
  return (line: string) => {
    if (QUICK || n++ % 10 === 0 || !line.startsWith("load ")) log(`${tag}: ${line}`);
  };
};
/** Generous time for a stampede of `n` devices before messages start, in s. */
const connectBudgetS = (n: number) => Math.max(QUICK ? 5 : 20, Math.ceil(n / 2000));

const results: Results = {};
function save(name: string, value: unknown): void {
  results[name] = value;
  writeFileSync(join(RESULTS, `${name}.json`), JSON.stringify(value, null, 2));
}

/** Runs `fn` as phase `name` unless excluded; records its CPU accounting and any failure. */
async function phase(name: string, heavy: boolean, fn: () => Promise<Record<string, unknown>>): Promise<void> {
  if ((only.length && !only.includes(name)) || skip.includes(name)) return;
  log(`phase ${name}`);
  const quiet = heavy ? await waitForQuiet(0.8, QUICK ? 10_000 : 300_000, log) : null;
  const cpu = cpuAccounting();
  try {
    const r = await fn();
    save(name, { ...r, machine_state: { quiet_wait: quiet, cpu: cpu.stop() } });
  } catch (e) {
    log(`phase ${name} failed: ${(e as Error).message}`);
    save(name, { error: (e as Error).message, machine_state: { quiet_wait: quiet, cpu: cpu.stop() } });
  } finally {
    await stopAll();
  }
}

/** Removes the exchanges a baseline declared under `prefix`. */
async function cleanPrefix(prefix: string): Promise<void> {
  const b = await new TestBackend(prefix).start("none.#");
  await b.stop([]);
}

/** A load run: `owsla load` with `args`; returns its command and summary. */
async function load(tag: string, args: string[], timeoutS: number) {
  const a = loadArgv([...args, "--host-base", nextHostBase()]);
  log(`${tag}: ${show(a)}`);
  const summary = await runJson(a, { timeoutMs: timeoutS * 1000, stderr: progress(tag) });
  return { command: show(a), summary };
}

/** Bare baseline: bare Bun servers holding `devices` connections, same clients. */
async function bareRun(tag: string, devices: number, processes: number) {
  const bare = await startBareServers(processes);
  // The same stampede, then the same device messages (pub -> ack; no broker behind a bare server).
  const run = await load(tag, ["--devices", String(devices), "--auth", "none", "--port", String(bare.port), "--gateway-pid", String(bare.pid), "--duration", String(connectBudgetS(devices) + MSG_PHASE_S), "--msg-rate", String(MSG_RATE), "--quiet"], connectBudgetS(devices) + MSG_PHASE_S + 120);
  await bare.stop();
  return { servers_command: show(bare.argv), server_processes: processes, ...run };
}

/**
 * The contract floor (floor-server.ts) under the gateway's scenario: the same stampede and
 * messages with the back-end simulator answering, but no door unlocks (routing back-end
 * commands to the process holding the device is gateway work the floor does not do).
 */
async function floorRun(tag: string, devices: number, processes: number) {
  const prefix = uniquePrefix(`bench-${tag}`);
  const gateway = `bench-${tag}`;
  const floor = await startBareServers(processes, { prefix, gateway });
  try {
    const duration = connectBudgetS(devices) + MSG_PHASE_S;
    const run = await load(tag, ["--devices", String(devices), "--auth", "none", "--port", String(floor.port), "--gateway-pid", String(floor.pid), "--duration", String(duration), "--msg-rate", String(MSG_RATE), "--with-backend", "--prefix", prefix, "--cmd-rate", "0"], duration + 180);
    return { servers_command: show(floor.argv), server_processes: processes, ...run };
  } finally {
    await floor.stop();
    await cleanPrefix(prefix);
  }
}

/** The gateway under the full scenario: stampede, held snapshot, messages at MSG_RATE, door unlocks. */
async function gatewayRun(tag: string, devices: number, workers: number) {
  const g = await startBenchGateway(tag, workers, GATEWAY_ARGS);
  try {
    const duration = connectBudgetS(devices) + MSG_PHASE_S;
    const run = await load(
      tag,
      ["--devices", String(devices), "--data", g.gw.dir, "--port", String(g.gw.port), "--duration", String(duration), "--msg-rate", String(MSG_RATE), "--with-backend", "--prefix", g.gw.prefix, "--cmd-rate", String(CMD_RATE)],
      duration + 180,
    );
    const { warnings, firstWarnings } = await g.stop();
    return { gateway_command: show(g.argv), workers, ...run, gateway_warnings: warnings, gateway_first_warnings: firstWarnings };
  } catch (e) {
    await g.stop().catch(() => {});
    throw e;
  }
}

mkdirSync(RESULTS, { recursive: true });
if (has("render")) {
  const dir = resolve(val("render", RESULTS));
  for (const f of readdirSync(dir).filter((f) => f.endsWith(".json"))) results[f.slice(0, -5)] = JSON.parse(readFileSync(join(dir, f), "utf8"));
  writeFileSync(OUT, renderReport(results, { quick: QUICK, resultsDir: dir }));
  log(`wrote ${OUT}`);
  process.exit(0);
}
// Runs of single phases (--only) add to an existing results directory.
for (const f of readdirSync(RESULTS).filter((f) => f.endsWith(".json"))) results[f.slice(0, -5)] = JSON.parse(readFileSync(join(RESULTS, f), "utf8"));
log(`results in ${RESULTS}; report to ${OUT}`);
const onSignal = async () => {
  log("interrupted; stopping everything");
  await stopAll();
  process.exit(130);
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);

if (!results.params || !only.length) save("params", { quick: QUICK, devices: DEVICES, small: int("small", QUICK ? 1000 : 20_000), workers: WORKERS, big: BIG, big_workers: BIG_WORKERS, huge: HUGE, huge_workers: HUGE_WORKERS, msg_rate: MSG_RATE, cmd_rate: CMD_RATE, msg_phase_s: MSG_PHASE_S, started_at: new Date().toISOString(), command: `scripts/bench ${argv.join(" ")}`.trim() });
await phase("machine", false, async () => machineInfo());

await phase("startup", false, async () => {
  const a = [bun, join(ROOT, "scripts/bench-startup.ts"), "--runs", QUICK ? "2" : "7"];
  return { command: show(a), result: await runJson(a, { timeoutMs: 600_000 }) };
});
await phase("forward", true, async () => {
  const a = [bun, join(ROOT, "scripts/bench-forward.ts"), ...(QUICK ? ["--samples", "400"] : [])];
  return { command: show(a), result: await runJson(a, { timeoutMs: 900_000 }) };
});
await phase("welcomes", true, async () => {
  const a = [bun, join(ROOT, "scripts/bench-welcomes.ts"), ...(QUICK ? ["--devices", "2000", "--clients", "2"] : [])];
  return { command: show(a), result: await runJson(a, { timeoutMs: 900_000 }) };
});

await phase("broker_rtt", true, async () => {
  const prefix = uniquePrefix("bench-rtt");
  const be = await startBackend(["--prefix", prefix, "--duration", "3600"]);
  const a = [bun, join(ROOT, "scripts/bench-lib/amqp-baseline.ts"), "rtt", "--prefix", prefix, "--rate", String(MSG_RATE), "--duration", QUICK ? "8" : "30"];
  const result = await runJson(a, { timeoutMs: 300_000 });
  const backend = await be.stop();
  await cleanPrefix(prefix);
  return { command: show(a), backend_command: show(be.argv), result, backend };
});

await phase("throughput", true, async () => {
  const g = await startBenchGateway("tput", 2);
  const be = await startBackend(["--prefix", g.gw.prefix, "--no-reply", "--duration", "3600"]);
  const dur = QUICK ? "8" : "20";
  const gateway: unknown[] = [];
  for (const [devices, inflight] of [[100, 10], [20, 50]] as const) {
    gateway.push({ devices, inflight, ...(await load("throughput", ["--devices", String(devices), "--inflight", String(inflight), "--data", g.gw.dir, "--port", String(g.gw.port), "--duration", dur, "--settle", "1", "--quiet"], 300)) });
  }
  const raw: unknown[] = [];
  for (const window of [100, 1000]) {
    const a = [bun, join(ROOT, "scripts/bench-lib/amqp-baseline.ts"), "throughput", "--prefix", g.gw.prefix, "--window", String(window), "--duration", dur];
    raw.push({ command: show(a), result: await runJson(a, { timeoutMs: 300_000 }) });
  }
  const backend = await be.stop();
  const { warnings } = await g.stop();
  return { gateway_command: show(g.argv), backend_command: show(be.argv), gateway, raw, backend, gateway_warnings: warnings };
});

/** The same scenario at a tenth of the devices on one worker per core: the latency when the gateway is not overloaded. */
const SMALL = int("small", QUICK ? 1000 : 20_000);
if (SMALL > 0) await phase("gateway_small", true, async () => gatewayRun("gateway_small", SMALL, navigator.hardwareConcurrency));
if (SMALL > 0) await phase("floor_small", true, async () => floorRun("floor_small", SMALL, navigator.hardwareConcurrency));
/** Message rates of the sweep (same scenario as gateway_small at each rate). */
const SWEEP = val("sweep", QUICK ? "100,500" : "500,1000,2000,3000,5000").split(",").map(Number).filter((n) => n > 0);
if (SMALL > 0 && SWEEP.length) {
  await phase("rate_sweep", true, async () => {
    const g = await startBenchGateway("sweep", navigator.hardwareConcurrency);
    const runs: unknown[] = [];
    let warnings: Record<string, number> = {};
    try {
      for (const rate of SWEEP) {
        const r = await load(`sweep ${rate}/s`, ["--devices", String(SMALL), "--data", g.gw.dir, "--port", String(g.gw.port), "--duration", String(connectBudgetS(SMALL) / 2 + (QUICK ? 8 : 25)), "--msg-rate", String(rate), "--with-backend", "--prefix", g.gw.prefix, "--cmd-rate", String(Math.max(1, Math.round(rate / 50))), "--quiet"], 600);
        runs.push({ rate, ...r });
      }
    } finally {
      warnings = (await g.stop()).warnings;
    }
    return { gateway_command: show(g.argv), workers: navigator.hardwareConcurrency, devices: SMALL, runs, gateway_warnings: warnings };
  });
}
/** Gateway MQTT port vs Mosquitto vs RabbitMQ MQTT, same load (see mqtt-phase.ts). */
const MQTT_DEVICES = int("mqtt-devices", QUICK ? 1000 : 15_000);
if (MQTT_DEVICES > 0) {
  await phase("mqtt", true, async () =>
    mqttPhase(
      { devices: MQTT_DEVICES, workers: navigator.hardwareConcurrency, msgRate: int("mqtt-rate", QUICK ? 100 : 500), cmdRate: QUICK ? 5 : 10, connectS: QUICK ? 15 : 60, msgS: QUICK ? 10 : 30, window: 96, skipOwsla: has("mqtt-skip-owsla") },
      load,
      log,
    ),
  );
}
await phase("bare", true, async () => bareRun("bare", DEVICES, WORKERS));
await phase("gateway", true, async () => gatewayRun("gateway", DEVICES, WORKERS));
await phase("floor", true, async () => floorRun("floor", DEVICES, WORKERS));
if (BIG > 0) {
  await phase("bare_big", true, async () => bareRun("bare_big", BIG, BIG_WORKERS));
  await phase("gateway_big", true, async () => gatewayRun("gateway_big", BIG, BIG_WORKERS));
}
if (HUGE > 0) {
  await phase("bare_huge", true, async () => bareRun("bare_huge", HUGE, HUGE_WORKERS));
  await phase("gateway_huge", true, async () => gatewayRun("gateway_huge", HUGE, HUGE_WORKERS));
}

if (!only.length) save("params", { ...(results.params as object), finished_at: new Date().toISOString() });
writeFileSync(OUT, renderReport(results, { quick: QUICK, resultsDir: RESULTS }));
log(`wrote ${OUT} (raw results in ${RESULTS})`);
if (!existsSync(OUT)) process.exit(1);
process.exit(0);
