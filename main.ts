/**
 * Owsla entry point: parses the command line and runs a command. `serve` wires the supervisor,
 * the control plane and the API here; one worker's modules are wired in src/worker/start.ts.
 * Every module takes its dependencies as arguments.
 */
import { join } from "node:path";
import { VERSION, buildInfo } from "./src/version.ts";
import { loadConfig, ConfigError, helpText, describeConfig } from "./src/config/load.ts";
import type { Config } from "./src/config/types.ts";
import { createLogger, type Logger, type RootLogger } from "./src/log/logger.ts";
import { stderrLine } from "./src/log/journal.ts";
import { openSiteDatabase } from "./src/store/db.ts";
import { DeviceStore } from "./src/store/devices.ts";
import { upgradeLayout } from "./src/store/layout.ts";
import { WorkerFiles } from "./src/store/worker-files.ts";
import { SightingsWriter } from "./src/control/sightings-writer.ts";
import { Metrics } from "./src/metrics/metrics.ts";
import { registerProcessMetrics } from "./src/metrics/process.ts";
import { loadOrCreateApiToken, loadOrCreateSecret } from "./src/auth/token.ts";
import { isAuthFailure, type SiteMessage } from "./src/registry/site-link.ts";
import { meshDir } from "./src/mesh/mesh.ts";
import { rmSync } from "node:fs";
import { BanList } from "./src/auth/bans.ts";
import { ControlClient, isAckNotice, isControlResponse } from "./src/control/protocol.ts";
import { ControlPlane } from "./src/control/control-plane.ts";
import { createApi } from "./src/api/app.ts";
import { ADMIN_USAGE } from "./src/cli/admin.ts";
import { adminCommand, secretPath } from "./src/cli/commands.ts";
import { tokenMain } from "./src/cli/token.ts";
import { backupMain } from "./src/cli/backup.ts";
import { configMain } from "./src/cli/config-check.ts";
import { startSupervisor } from "./src/supervisor/supervisor.ts";
import { connectToSupervisor } from "./src/supervisor/worker-link.ts";
import { runLoadCommand } from "./src/load/command.ts";
import { availableParallelism } from "node:os";
import { guardProcess } from "./src/log/guard-process.ts";
import { readTlsFiles, startWorker } from "./src/worker/start.ts";
import { startSiteRevocations } from "./src/site/revocations.ts";
import { EXIT, unavailablePorts } from "./src/supervisor/preflight.ts";
import { ServiceManager, SYSTEMD_ENV, silentWorkers, statusLine } from "./src/supervisor/systemd.ts";
import { isReload, reloadConfig } from "./src/supervisor/reload.ts";

const USAGE = `Usage: owsla [command] [options]

Commands:
  serve                        Run the gateway (default)
  token <hw-id>                Print the device token for a hardware id (site secret in the data dir;
                               never creates one unless --create-secret, never lifts a revocation)
  devices                      List devices (control API)
  device <id>                  Show one device
  send <id> <topic> <json>     Send a command to a device
  kick <id>                    Disconnect a device
  revoke <id | hw-id>          Revoke a device's tokens and disconnect it
  register <hw-id>             Pre-register a device; prints its id and token
  status                       Workers, connections, broker link, queues
  outbox                       How full the outbox is: messages, bytes, oldest, per device
  backup <dir>                 Consistent copy of the databases, site secret and API token (while running)
  config check                 Validate the configuration; print it with sources, secrets hidden
  version                      Print version, git commit and target
  load                         Simulate devices (or, with --backend, a back-end) for load tests
Run "owsla <command> --help" for the options of a command.`;


function makeLogger(config: Config, base: Record<string, unknown>): RootLogger {
  const fmt = config.log.format;
  return createLogger({ level: config.log.level, pretty: fmt === "auto" ? undefined : fmt === "pretty", base });
}

/** The argv that starts worker processes of this same program (source or compiled binary). */
function workerCommand(args: string[]): string[] {
  const compiled = Bun.main.startsWith("/$bunfs");
  return [process.execPath, ...(compiled ? [] : [Bun.main]), "worker", ...args];
}

/** `serve`: the supervisor; starts and watches the worker processes. */
async function serve(config: Config, args: string[]): Promise<number> {
  const log = makeLogger(config, { worker: "supervisor" });
  guardProcess(log);
  const count = config.workers.count || availableParallelism();
  log.info("Starting Owsla gateway", { version: VERSION, workers: count, config: describeConfig(config) });
  // Both ports are checked before anything starts: a port that is taken is one line and exit 3.
  let tls: ReturnType<typeof readTlsFiles> | null = null;
  const tlsProblems: string[] = [];
  try {
    tls = readTlsFiles(config); // each worker reads them again; a missing file is said once, here
  } catch (err) {
    tlsProblems.push(`Cannot start: ${(err as Error).message}`);
  }
  const mqttHost = config.mqtt.host || config.device.host;
  const mqttPort = tls ? { port: config.mqtt.tls_port, key: "mqtt.tls_port" } : { port: config.mqtt.port, key: "mqtt.port" };
  const problems = [...unavailablePorts({ device: config.device, api: config.api, more: config.mqtt.enabled ? [{ host: mqttHost, ...mqttPort }] : [] }), ...tlsProblems];
  for (const line of problems) log.error(line);
  if (problems.length > 0) return EXIT.unavailable;
  // The API listens before the workers start (answering 503 until the control plane exists),
  // so a failure here stops nothing but this process.
  let app: ReturnType<typeof createApi> | null = null;
  let api: ReturnType<typeof Bun.serve>;
  try {
    // idleTimeout above the longest ?wait=ack (60 s) so those requests are not cut.
    api = Bun.serve({
      hostname: config.api.host,
      port: config.api.port,
      fetch: (req, server) => (app ? app.fetch(req, server) : Response.json({ error: "starting", message: "The gateway is starting; retry in a moment" }, { status: 503 })),
      idleTimeout: 75,
    });
  } catch (err) {
    log.error(`Cannot start: the control API cannot listen on ${config.api.host}:${config.api.port} (${(err as Error).message}); set api.host/api.port to a free address`);
    return EXIT.unavailable;
  }
  log.info("Control API listening", { url: `http://${config.api.host}:${api.port}/` });
  // systemd: read NOTIFY_SOCKET and the watchdog, and keep them from the workers (only the main
  // process talks to systemd).
  const systemdEnv = Object.fromEntries(SYSTEMD_ENV.map((k) => [k, process.env[k]]));
  for (const k of SYSTEMD_ENV) delete process.env[k];
  // Create shared files once, before workers race for them.
  const secret = loadOrCreateSecret(secretPath(config));
  const apiToken = resolveApiToken(config);
  // The supervisor is the one writer of the site database; each worker writes its own file.
  const db = openSiteDatabase(config.store.dir);
  const layout = upgradeLayout(db, config.store.dir, count);
  if (layout.legacyOutbox + layout.legacyCommands > 0) log.info("Moved the shared database's outbox and stored commands into the workers' own files", { ...layout });
  if (layout.orphanFiles.length > 0) log.info("Rows of workers that no longer exist were handed to worker 0", { rows: layout.orphanRows, files: layout.orphanFiles });
  const devices = new DeviceStore(db);
  devices.clearLegacyConnectionState();
  const workerFiles = new WorkerFiles(config.store.dir, count);
  const sightings = new SightingsWriter(devices, log);
  const metrics = new Metrics();
  registerProcessMetrics(metrics);
  // Every worker announces its failed hellos through here: counting bans in this one place
  // counts each once (the workers' own lists, fed in different orders, ban on their own).
  const bans = new BanList({ failures: config.auth.ban_failures, windowMs: config.auth.ban_window_s * 1000, durationMs: config.auth.ban_duration_s * 1000 });
  const countBans = (keys: string[]) => {
    const before = bans.bansTotal;
    for (const k of keys) bans.fail(k);
    if (bans.bansTotal > before) metrics.inc("owsla_auth_bans_total", undefined, bans.bansTotal - before);
  };

  let plane: ControlPlane | null = null;
  let gatewayReady = false;
  let startupFailed = false;
  const sup = startSupervisor({
    count,
    command: () => workerCommand(args),
    env: { OWSLA_WORKERS_TOTAL: String(count) },
    workerEnv: (id: number) => ({ OWSLA_WORKER_ID: String(id) }),
    maxRestarts: config.workers.max_restarts,
    periodMs: config.workers.restart_period_s * 1000,
    heartbeatMs: config.workers.heartbeat_ms,
    hangTimeoutMs: config.workers.hang_timeout_ms,
    busyTimeoutMs: config.workers.busy_timeout_s * 1000,
    shutdownDeadlineMs: config.workers.shutdown_deadline_s * 1000,
    log,
    onMessage: (from, msg) => {
      if (isAuthFailure(msg)) {
        countBans(msg.payload.keys);
        for (const w of sup.workers()) if (w.id !== from && w.up) sup.send(w.id, msg.payload);
        sup.send(from, { t: "relayed", seq: msg.payload.seq });
      } else if (isControlResponse(msg)) client.onResponse(msg);
      else if (isAckNotice(msg)) plane?.onAck(msg);
      else siteMessage(from, msg as SiteMessage);
    },
    onWorkerExit: (id, code) => {
      if (code === EXIT.unavailable && !gatewayReady && !startupFailed) {
        startupFailed = true;
        void sup.stop(`worker ${id} could not start`);
      }
    },
  });
  /** Site records from workers: the supervisor is their one writer. */
  function siteMessage(from: number, m: SiteMessage): void {
    if (m?.t === "seen" && Array.isArray(m.items)) sightings.add(m.items);
    else if (m?.t === "anon" && typeof m.d === "string" && typeof m.seq === "number") {
      let ok = true;
      try {
        devices.createIdentity(m.d);
      } catch (err) {
        ok = false;
        log.error("Cannot record a new anonymous device identity in the site database; the device is refused until it can", { err: err as Error });
      }
      sup.send(from, { t: "anon-ok", seq: m.seq, ok });
    }
  }
  const client = new ControlClient((id, m) => sup.send(id, m));
  metrics.gauge("owsla_worker_restarts_total", () => sup.workers().reduce((n, w) => n + w.restarts, 0));
  metrics.gauge("owsla_workers_up", () => sup.workers().filter((w) => w.up).length);
  // ---- Site events wiring (bridge helper; see src/site/revocations.ts for the merge note) ----
  const site = startSiteRevocations({
    config,
    db,
    log,
    tellWorkers: (deviceId, generation) =>
      Promise.allSettled(sup.workers().filter((w) => w.up).map((w) => client.call(w.id, "revoke", { deviceId, generation }, 1500))),
  });
  // ---- end of site events wiring ----
  plane = new ControlPlane({
    sup,
    client,
    devices,
    storedCommands: (id) => workerFiles.storedCommands(id),
    syncSightings: () => sightings.flush(),
    secret,
    siteNamespace: config.gateway.site_namespace,
    gatewayId: config.gateway.id,
    version: VERSION,
    apiToken,
    commandTtlS: config.broker.command_ttl_s,
    outbox: (limit) => workerFiles.outbox(limit),
    metrics,
    log,
    onRevoked: (id, generation, hw) => site.publish(id, generation, hw), // site events wiring
  });
  app = createApi(plane);
  const systemd = new ServiceManager({
    env: systemdEnv,
    pid: process.pid,
    log,
    unhealthy: () => silentWorkers(sup.workers(), Date.now(), Math.min(config.workers.hang_timeout_ms, 3 * config.workers.heartbeat_ms)),
    status: async () => statusLine(await plane!.workers()),
    supervisorGraceMs: Math.max(config.workers.hang_timeout_ms, config.workers.busy_timeout_s * 1000),
  });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info("Stopping gracefully: draining devices, then stopping workers", { signal });
    systemd.stopping(signal);
    void sup.stop(signal);
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  let reloading = Promise.resolve();
  process.on("SIGHUP", () => {
    reloading = reloading.then(async () => {
      if (stopping) return;
      systemd.reloading();
      config = reloadConfig(config, { load: () => loadConfig(args, process.env).config, readTls: readTlsFiles, log, broadcast: (m) => sup.broadcast(m) });
      await systemd.reloaded();
    });
  });
  sup.whenAllReady().then(
    () => {
      gatewayReady = true;
      log.info("Gateway ready: all workers listening", { workers: count, port: config.device.port, api_port: api.port });
      void systemd.ready();
    },
    () => {},
  );
  const { code, reason } = await sup.done;
  systemd.stopping(reason);
  systemd.dispose();
  api.stop(true);
  await site.events.close(); // site events wiring
  workerFiles.close();
  sightings.flush();
  db.close();
  rmSync(meshDir(config.store.dir, config.gateway.id), { recursive: true, force: true });
  if (startupFailed) {
    log.info("Gateway stopped: a worker could not start (see its error line above)", { code: EXIT.unavailable });
    return EXIT.unavailable;
  }
  if (code !== 0) log.error("Gateway stopped", { reason, code });
  else log.info("Gateway stopped", { reason });
  return code;
}

/** The API bearer token: configured, or generated into the data dir (printed once, on creation). */
function resolveApiToken(config: Config): string {
  if (config.api.token) return config.api.token;
  const path = join(config.store.dir, "api.token");
  const { token, created } = loadOrCreateApiToken(path);
  if (created) process.stderr.write(stderrLine(`Owsla: generated the control API token (shown once; kept in ${path}):\n  ${token}`, "info") + "\n");
  return token;
}

/** `worker` (internal): one worker process under the supervisor. */
async function worker(config: Config): Promise<number> {
  const workerId = Number(process.env.OWSLA_WORKER_ID ?? "0");
  const log = makeLogger(config, { worker: workerId });
  guardProcess(log);
  let running: Awaited<ReturnType<typeof startWorker>> | null = null;
  let stopping: Promise<number> | null = null;
  let resolveExit!: (code: number) => void;
  const exited = new Promise<number>((r) => (resolveExit = r));
  const stop = () => {
    stopping ??= (async () => {
      try {
        await running?.stop();
        return 0;
      } catch (err) {
        log.error("Graceful stop failed", { err: err as Error });
        return 1;
      }
    })();
    stopping.then((code) => {
      link.close();
      resolveExit(code);
    });
  };
  const onMessage = (m: unknown) => {
    if (isReload(m)) log.setLevel(m.level);
    running?.onSupervisorMessage(m);
  };
  const link = connectToSupervisor({ onShutdown: stop, onMessage, log });
  try {
    running = await startWorker(config, workerId, log, { send: (m) => link.send(m), enabled: link.connected });
  } catch (err) {
    // A worker that cannot start (device port, TLS files, database) says why once and exits 3;
    // before the gateway was ready, the supervisor then stops instead of restarting it.
    log.error(`Cannot start: ${(err as Error).message}`);
    link.close();
    return EXIT.unavailable;
  }
  if (!link.connected) {
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  } else {
    // A reload is the supervisor's to handle; a hang-up reaching the process group must not end workers.
    process.on("SIGHUP", () => log.debug("Ignoring SIGHUP: the supervisor handles reloads"));
  }
  link.ready();
  return await exited;
}

/** Runs the command line `argv` (without runtime and script) and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  let command = "serve";
  let args = argv;
  if (argv[0] && !argv[0].startsWith("-")) {
    command = argv[0];
    args = argv.slice(1);
  }
  if (command in ADMIN_USAGE) return await adminCommand(command, args);
  if (command === "load") return await runLoadCommand(args);
  if (command === "token") return tokenMain(args);
  if (command === "backup") return backupMain(args);
  if (command === "config") return configMain(args);
  if (!["serve", "worker", "version", "help"].includes(command)) {
    process.stderr.write(stderrLine(`Unknown command "${command}".`) + `\n${USAGE}\n`);
    return 2;
  }
  if (command === "version" && (args.includes("--help") || args.includes("-h"))) {
    process.stdout.write("Usage: owsla version\nPrints the version, the git commit and the build target.\n");
    return 0;
  }
  if (command === "version") {
    const b = buildInfo();
    process.stdout.write(`owsla ${b.version}\ncommit ${b.commit}\ntarget ${b.target}\n`);
    return 0;
  }
  if (command === "help") {
    process.stdout.write(USAGE + "\n");
    return 0;
  }
  let loaded;
  try {
    loaded = loadConfig(args, process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(stderrLine(e.message) + "\n");
      return EXIT.usage;
    }
    throw e;
  }
  if (loaded.help) {
    process.stdout.write((command === "serve" && argv[0] !== "serve" ? USAGE + "\n\n" : "") + helpText(command) + "\n");
    return 0;
  }
  if (loaded.positionals.length > 0) {
    process.stderr.write(`Unexpected argument "${loaded.positionals[0]}".\n${USAGE}\n`);
    return 2;
  }
  if (command === "worker") return await worker(loaded.config);
  return await serve(loaded.config, args);
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(stderrLine(`Owsla failed to start: ${err.message}`) + "\n");
      process.exit(1);
    },
  );
}
