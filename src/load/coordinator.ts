/**
 * `owsla load`: splits the devices over client processes (each with its own destination
 * address), optionally starts a back-end simulator, drives the phases — connect, settle and
 * snapshot memory once all are welcomed, then messages and commands — prints a progress line
 * every second, and at the end (--duration, SIGINT or SIGTERM) collects every process's
 * counters and histograms into one JSON summary. Children are stopped whatever happens.
 */
import type { Subprocess } from "bun";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { GatewayWatch } from "./gateway-watch.ts";
import type { ClientSpec, FromBackend, FromClient, ToBackend, ToClient } from "./ipc.ts";
import { DEVICES_PER_ADDRESS, hostFor, LoadUsageError, type LoadOptions } from "./options.ts";
import { kernelMemory, totalRss, totalCpuSeconds } from "./procfs.ts";
import { progressLine } from "./report.ts";
import { spawnChild } from "./spawn.ts";
import { sumClientCounters, zeroBackendCounters, zeroClientCounters, type BackendCounters, type BackendFinal, type ClientCounters, type ClientFinal } from "./stats.ts";
import { buildSummary, type LoadSummary, type Snapshot } from "./summary.ts";
import { isPlainAscii } from "./device-frames.ts";

/** Time children get to start and report ready, in ms. */
const READY_TIMEOUT_MS = 60_000;
/** Time children get to send their final report after `stop`, in ms. */
const FINAL_TIMEOUT_MS = 20_000;
/** Messages start at this fraction of the duration even if not every device was welcomed. */
const MSG_FALLBACK_FRACTION = 0.6;

const wall = () => performance.timeOrigin + performance.now();

interface Child<F, C> {
  proc: Subprocess;
  ready: boolean;
  exited: boolean;
  last: C;
  final: F | null;
}

type ClientChild = Child<ClientFinal, ClientCounters> & { spec: ClientSpec; allWelcomedAt: number };
type BackendChild = Child<BackendFinal, BackendCounters>;

/** Reads the site secret (hex) the gateway created in its data directory. */
function readSecretHex(opts: LoadOptions): string | null {
  if (opts.auth === "none") return null;
  const path = opts.secretFile ?? join(opts.data!, "site.secret");
  let text: string;
  try {
    text = readFileSync(path, "utf8").trim();
  } catch (e) {
    throw new LoadUsageError(`Cannot read the site secret ${path}: ${(e as Error).message}; pass the gateway's --data directory (the gateway creates site.secret on first start) or --auth none`);
  }
  if (!/^[0-9a-f]{64,}$/i.test(text)) throw new LoadUsageError(`Site secret ${path} is malformed: expected at least 64 hex characters`);
  return text;
}

/** The client specs: devices split evenly, rates split in proportion. */
function clientSpecs(opts: LoadOptions, secretHex: string | null): ClientSpec[] {
  const per = Math.ceil(opts.devices / opts.processes);
  const specs: ClientSpec[] = [];
  let nextAddress = 0;
  for (let i = 0, first = 0; i < opts.processes && first < opts.devices; i++, first += per) {
    const count = Math.min(per, opts.devices - first);
    const share = count / opts.devices;
    const addresses = Math.ceil(count / DEVICES_PER_ADDRESS);
    const hosts = opts.host ? [opts.host] : Array.from({ length: addresses }, (_, k) => hostFor(opts.hostBase, nextAddress + k));
    nextAddress += addresses;
    specs.push({
      index: i,
      hosts,
      port: opts.port,
      firstDevice: first,
      count,
      idPrefix: opts.idPrefix,
      secretHex,
      connectRate: opts.connectRate * share,
      window: opts.window,
      msgRate: opts.msgRate * share,
      inflight: opts.inflight,
      payload: opts.payload,
      pingEveryS: opts.pingEveryS,
      mqtt: opts.mqtt,
    });
  }
  return specs;
}

/** Runs the simulation; returns the summary (also printed on stdout by the command). */
export async function runCoordinator(opts: LoadOptions, err: (line: string) => void = (l) => void process.stderr.write(l + "\n")): Promise<LoadSummary> {
  if (!isPlainAscii(opts.idPrefix)) throw new LoadUsageError(`Invalid --id-prefix ${JSON.stringify(opts.idPrefix)}: use printable ASCII without quotes or backslashes`);
  const secretHex = readSecretHex(opts);
  const watch = GatewayWatch.find(opts.gatewayPid, opts.data);
  if ((opts.gatewayPid !== null || opts.data !== null) && !watch) err("owsla load: no gateway process holds <data>/owsla.db; gateway RSS is not reported (pass --gateway-pid)");
  const problems: string[] = [];
  let failed: string | null = null;
  const clients: ClientChild[] = [];
  let backend: BackendChild | null = null;

  const killAll = () => {
    for (const c of [...clients, ...(backend ? [backend] : [])]) if (!c.exited) c.proc.kill("SIGKILL");
  };
  process.on("exit", killAll);

  try {
    // The back-end first, so it sees every device's presence.
    if (opts.backend) {
      const b: BackendChild = {
        proc: null as unknown as Subprocess,
        ready: false,
        exited: false,
        last: zeroBackendCounters(),
        final: null,
      };
      b.proc = spawnChild(
        "backend",
        (raw) => {
          const m = raw as FromBackend;
          if (m.t === "ready") b.ready = true;
          else if (m.t === "tick") b.last = m.c;
          else if (m.t === "final") b.final = m.f;
          else if (m.t === "fatal") failed ??= `Back-end simulator failed: ${m.message}`;
        },
        (code) => {
          b.exited = true;
          if (!b.final) failed ??= `Back-end simulator exited with code ${code} before reporting`;
        },
      );
      backend = b;
      b.proc.send({ t: "start", options: opts.backend } satisfies ToBackend);
      await until(() => b.ready, READY_TIMEOUT_MS, "the back-end simulator to connect to the broker", () => failed);
    }

    for (const spec of clientSpecs(opts, secretHex)) {
      const c: ClientChild = { proc: null as unknown as Subprocess, ready: false, exited: false, last: zeroClientCounters(), final: null, spec, allWelcomedAt: 0 };
      c.proc = spawnChild(
        "client",
        (raw) => {
          const m = raw as FromClient;
          if (m.t === "ready") c.ready = true;
          else if (m.t === "tick") {
            c.last = m.c;
            c.allWelcomedAt = m.allWelcomedAt;
          } else if (m.t === "final") c.final = m.f;
          else if (m.t === "fatal") failed ??= `Client process ${spec.index} failed: ${m.message}`;
        },
        (code) => {
          c.exited = true;
          if (!c.final) failed ??= `Client process ${spec.index} exited with code ${code} before reporting`;
        },
      );
      c.proc.send({ t: "start", spec } satisfies ToClient);
      clients.push(c);
    }
    await until(() => clients.every((c) => c.ready), READY_TIMEOUT_MS, "client processes to start", () => failed);

    const snapshot = (): Snapshot => {
      const pids = watch ? watch.pids() : [];
      return {
        at: wall(),
        connected: sumClientCounters(clients.map((c) => c.last)).connected,
        gatewayRss: watch ? totalRss(pids) : null,
        gatewayCpuS: watch ? totalCpuSeconds(pids) : null,
        gatewayProcesses: pids.length,
        kernel: kernelMemory(),
      };
    };
    const before = snapshot();
    const goAt = wall();
    for (const c of clients) c.proc.send({ t: "go" } satisfies ToClient);

    let stopAsked = false;
    const onSignal = () => {
      if (stopAsked) {
        killAll();
        process.exit(130);
      }
      stopAsked = true;
      err("owsla load: stopping (signal); press Ctrl-C again to kill the simulators");
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);

    // Assigned inside startTraffic(); typed explicitly so the checker does not narrow it to null.
    let held = null as Snapshot | null;
    let allWelcomedAt: number | null = null;
    let msgStart = null as { at: number; counters: ClientCounters } | null;
    let peakWelcomes = 0;
    let peakConnected = 0;
    let gatewayRssPeak: number | null = null;
    let prev = zeroClientCounters();
    let prevBackend = zeroBackendCounters();
    let prevAt = goAt;
    const wantsTraffic = opts.msgRate > 0 || opts.inflight > 0 || (opts.backend?.cmdRate ?? 0) > 0;
    const endAt = goAt + opts.durationS * 1000;

    const startTraffic = (reason: string) => {
      held = snapshot();
      if (reason !== "all_welcomed") problems.push(`Held snapshot and messages started before every device was welcomed (${reason})`);
      msgStart = { at: wall(), counters: sumClientCounters(clients.map((c) => c.last)) };
      if (!wantsTraffic) return;
      for (const c of clients) c.proc.send({ t: "msgs" } satisfies ToClient);
      backend?.proc.send({ t: "cmds" } satisfies ToBackend);
    };

    while (!stopAsked && !failed && wall() < endAt) {
      await Bun.sleep(Math.min(1000, Math.max(1, endAt - wall())));
      const t = wall();
      const total = sumClientCounters(clients.map((c) => c.last));
      const dt = (t - prevAt) / 1000;
      peakWelcomes = Math.max(peakWelcomes, Math.round((total.welcomes - prev.welcomes) / Math.max(dt, 1e-3)));
      peakConnected = Math.max(peakConnected, total.connected);
      const rss = watch ? watch.rss() : null;
      if (rss !== null) gatewayRssPeak = Math.max(gatewayRssPeak ?? 0, rss);
      if (!opts.quiet) {
        err(progressLine((t - goAt) / 1000, dt, opts.devices, total, prev, rss, backend ? { c: backend.last, prev: prevBackend } : null));
      }
      prev = total;
      prevBackend = backend ? backend.last : prevBackend;
      prevAt = t;
      if (allWelcomedAt === null && clients.every((c) => c.allWelcomedAt > 0)) allWelcomedAt = Math.max(...clients.map((c) => c.allWelcomedAt));
      if (held === null) {
        if (allWelcomedAt !== null && t >= allWelcomedAt + opts.settleS * 1000) startTraffic("all_welcomed");
        else if (t >= goAt + opts.durationS * 1000 * MSG_FALLBACK_FRACTION) startTraffic(`${Math.round(MSG_FALLBACK_FRACTION * 100)}% of --duration passed`);
      }
    }

    // Stop: every child reports its final figures, then closes its connections and exits.
    const end = snapshot();
    const stoppedAt = wall();
    for (const c of clients) if (!c.exited) c.proc.send({ t: "stop" } satisfies ToClient);
    if (backend && !backend.exited) backend.proc.send({ t: "stop" } satisfies ToBackend);
    await until(() => clients.every((c) => c.final || c.exited) && (!backend || backend.final || backend.exited), FINAL_TIMEOUT_MS, "final reports", () => null).catch((e: Error) =>
      problems.push(e.message),
    );
    await Promise.race([Promise.all([...clients, ...(backend ? [backend] : [])].map((c) => c.proc.exited)), Bun.sleep(5000)]);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    if (failed) problems.push(failed);
    const lost = Object.keys(backend?.final?.counters.errors ?? {}).filter((k) => k.startsWith("broker_"));
    if (lost.length) problems.push(`The back-end simulator lost its broker connection (${lost.join("; ")}); back-end figures are incomplete`);
    const missing = clients.filter((c) => !c.final).length;
    if (missing) problems.push(`${missing} client process(es) sent no final report; their devices are missing from the summary`);
    if (stopAsked) problems.push("Stopped early by a signal");
    end.connected = sumClientCounters(clients.map((c) => c.final?.counters ?? c.last)).connected;
    return buildSummary({
      opts,
      goAt,
      endAt: stoppedAt,
      allWelcomedAt,
      peakWelcomesPerS: peakWelcomes,
      peakConnected,
      before,
      held,
      end,
      gatewayRssPeak,
      gatewayPids: held?.gatewayProcesses ?? before.gatewayProcesses,
      msgStart,
      clients: clients.flatMap((c) => (c.final ? [c.final] : [])),
      backend: backend?.final ?? null,
      problems,
    });
  } finally {
    killAll();
    process.off("exit", killAll);
  }
}

/** Waits until `cond()` holds; rejects after `timeoutMs` or as soon as `abort()` returns a reason. */
async function until(cond: () => unknown, timeoutMs: number, what: string, abort: () => string | null): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    const why = abort();
    if (why) throw new Error(why);
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(20);
  }
}
