/**
 * Owsla entry point: parses the command line and wires the modules together. This is the
 * only file that knows how the parts fit; every module takes its dependencies as arguments.
 */
import { join } from "node:path";
import { VERSION, buildInfo } from "./src/version.ts";
import { loadConfig, ConfigError, helpText, describeConfig } from "./src/config/load.ts";
import type { Config } from "./src/config/types.ts";
import { createLogger, type Logger } from "./src/log/logger.ts";
import { openDatabase } from "./src/store/db.ts";
import { Batcher } from "./src/store/batcher.ts";
import { DeviceStore } from "./src/store/devices.ts";
import { Inbox } from "./src/store/inbox.ts";
import { Outbox } from "./src/store/outbox.ts";
import { topology } from "./src/bridge/topology.ts";
import { BrokerLink } from "./src/bridge/link.ts";
import { Publisher } from "./src/bridge/publisher.ts";
import { CommandConsumer } from "./src/bridge/consumer.ts";
import { Registry } from "./src/registry/registry.ts";
import { LocalRouter } from "./src/registry/local-router.ts";
import { Metrics } from "./src/metrics/metrics.ts";
import { loadOrCreateApiToken, loadOrCreateSecret } from "./src/auth/token.ts";
import { startListener, type TlsFiles } from "./src/listener/listener.ts";
import { maxConnections } from "./src/listener/fd-limit.ts";
import type { DeviceConnection } from "./src/session/connection.ts";
import type { SessionContext } from "./src/session/context.ts";
import { drainConnections } from "./src/session/drain.ts";
import { PendingLoader } from "./src/session/pending-loader.ts";
import { BanList } from "./src/auth/bans.ts";
import { TAKEN_OVER_MESSAGE } from "./src/session/connection.ts";
import { Cluster, isForward } from "./src/registry/cluster.ts";
import { answerControl, ControlClient, isAckNotice, isControlRequest, isControlResponse } from "./src/control/protocol.ts";
import { ControlPlane } from "./src/control/control-plane.ts";
import { createApi } from "./src/api/app.ts";
import { ADMIN_USAGE } from "./src/cli/admin.ts";
import { adminCommand, secretPath, tokenCommand } from "./src/cli/commands.ts";
import { readFileSync } from "node:fs";
import { startSupervisor } from "./src/supervisor/supervisor.ts";
import { connectToSupervisor } from "./src/supervisor/worker-link.ts";
import { runLoadCommand } from "./src/load/command.ts";
import { availableParallelism } from "node:os";


const USAGE = `Usage: owsla [command] [options]

Commands:
  serve                        Run the gateway (default)
  token <hw-id>                Print the device token for a hardware id (site secret in the data dir)
  devices                      List devices (control API)
  device <id>                  Show one device
  send <id> <topic> <json>     Send a command to a device
  kick <id>                    Disconnect a device
  status                       Workers, connections, broker link, queues
  version                      Print version, git commit and target
  load                         Simulate devices (or, with --backend, a back-end) for load tests
Run "owsla <command> --help" for the options of a command.`;


function makeLogger(config: Config, base: Record<string, unknown>): Logger {
  const fmt = config.log.format;
  return createLogger({ level: config.log.level, pretty: fmt === "auto" ? undefined : fmt === "pretty", base });
}

/** Reads the device listener's TLS files named in the config (none when tls_cert is empty). */
function readTlsFiles(config: Config): TlsFiles | undefined {
  const { tls_cert, tls_key, tls_client_ca } = config.device;
  if (!tls_cert && !tls_key && !tls_client_ca) return undefined;
  if (!tls_cert || !tls_key) throw new Error("Invalid config: device.tls_cert and device.tls_key must be set together (PEM files)");
  const read = (key: string, path: string) => {
    try {
      return readFileSync(path, "utf8");
    } catch (e) {
      throw new Error(`Cannot read ${key} ${path}: ${(e as Error).message}; check the path and that the gateway's user may read it`);
    }
  };
  return {
    cert: read("device.tls_cert", tls_cert),
    key: read("device.tls_key", tls_key),
    clientCa: tls_client_ca ? read("device.tls_client_ca", tls_client_ca) : undefined,
  };
}

/** How long a worker remembers that the API waits for a command's ack (longer than the longest wait), in ms. */
const ACK_WATCH_MS = 65_000;

/** A running gateway worker: listener, sessions, store and broker link of one process. */
export interface RunningWorker {
  port: number;
  stop(): Promise<void>;
}

/** Wires and starts one worker process's part of the gateway. */
export async function startWorker(
  config: Config,
  workerId: number,
  log: Logger,
  peers: { send: (m: unknown) => void; enabled: boolean; peers: boolean } = { send: () => {}, enabled: false, peers: false },
): Promise<RunningWorker & { onSupervisorMessage: (m: unknown) => void }> {
  const metrics = new Metrics();
  const workersTotal = Math.max(1, Number(process.env.OWSLA_WORKERS_TOTAL ?? "1"));
  metrics.declare(
    "owsla_accepts_total",
    "owsla_welcomes_total",
    "owsla_pubs_received_total",
    "owsla_messages_up_total",
    "owsla_messages_down_total",
    "owsla_device_acks_total",
    "owsla_auth_failures_total",
    "owsla_auth_bans_total",
    "owsla_commands_received_total",
    "owsla_outbox_writes_total",
    "owsla_outbox_drained_total",
    "owsla_slow_consumers_total",
  );
  let lastStoreErrorLog = 0;
  const cluster = new Cluster(peers.send, peers.enabled && peers.peers);
  const batchOptions = {
    delayMs: config.store.batch_delay_ms,
    maxOps: config.store.batch_max,
    onError: (err: Error) => {
      // One line per 30 s at most: a full disk fails every batch.
      if (Date.now() - lastStoreErrorLog < 30_000) return;
      lastStoreErrorLog = Date.now();
      log.error("Store write failed; devices get no ack for messages that need the outbox, commands wait at the broker. Check free disk space and that store.dir is writable", { err, dir: config.store.dir });
    },
  };
  // Device rows: NORMAL sync (survives process crashes). Outbox and inbox hold what was
  // acknowledged to a device or to the broker: FULL sync, on their own connection.
  const db = openDatabase(config.store.dir);
  const batcher = new Batcher(db, batchOptions);
  const durableDb = openDatabase(config.store.dir, { synchronous: "FULL" });
  const durable = new Batcher(durableDb, batchOptions);
  const storeError = () => batcher.lastError ?? durable.lastError;
  const devices = new DeviceStore(db, batcher);
  devices.resetWorker(workerId, "gateway_restart");
  const inbox = new Inbox(durableDb, durable);
  const outbox = new Outbox(durableDb, durable, workerId);
  const topo = topology(config.broker.prefix, config.gateway.id);
  const link = new BrokerLink({
    url: config.broker.url,
    topology: topo,
    heartbeatS: config.broker.heartbeat_s,
    reconnectMinMs: config.broker.reconnect_min_ms,
    reconnectMaxMs: config.broker.reconnect_max_ms,
    prefetch: config.broker.prefetch,
    name: `owsla ${config.gateway.id} worker ${workerId}`,
    log,
  });
  const publisher = new Publisher(
    link,
    outbox,
    { exchange: topo.up, window: config.broker.publish_window, confirmTimeoutMs: config.broker.confirm_timeout_ms },
    metrics,
    log,
  );
  const registry = new Registry<DeviceConnection>();
  const pending = new PendingLoader(inbox, log);
  const ctx: SessionContext = {
    gatewayId: config.gateway.id,
    workerId,
    siteNamespace: config.gateway.site_namespace,
    replyTo: topo.queue,
    auth: {
      mode: config.auth.mode,
      secret: loadOrCreateSecret(secretPath(config)),
      tokenFloors: devices.tokenFloors(),
      bans: new BanList({ failures: config.auth.ban_failures, windowMs: config.auth.ban_window_s * 1000, durationMs: config.auth.ban_duration_s * 1000 }),
    },
    limits: {
      maxFrameBytes: config.device.max_frame_bytes,
      helloTimeoutMs: config.device.hello_timeout_ms,
      keepaliveS: config.device.keepalive_s,
      maxOutboundBytes: config.device.max_outbound_bytes,
      maxPendingPubs: 1024,
    },
    devices,
    inbox,
    pending,
    publisher,
    registry,
    cluster,
    metrics,
    log,
    notify: peers.send,
    ackWatch: new Map(),
  };
  const router = new LocalRouter(inbox, devices, registry, metrics, cluster, workerId);
  new CommandConsumer(link, topo.queue, config.broker.command_ttl_s * 1000, router, metrics, log);
  const listener = startListener(
    {
      host: config.device.host,
      port: config.device.port,
      maxConnections: maxConnections(config.device.max_connections),
      // The rates are for the whole gateway; the kernel spreads connections evenly, so each
      // worker enforces its share.
      acceptRatePerIp: config.device.accept_rate_per_ip / workersTotal,
      acceptRateTotal: config.device.accept_rate_total / workersTotal,
      tls: readTlsFiles(config),
    },
    ctx,
  );
  link.start();
  metrics.gauge("owsla_broker_up", () => (link.up ? 1 : 0));
  metrics.gauge("owsla_broker_reconnects", () => link.reconnects);
  metrics.gauge("owsla_outbox_depth", () => publisher.outboxDepth);
  // While writes fail (disk full, read-only), probe every few seconds so recovery is noticed
  // (and reported by /readyz) even when no device is writing.
  const probeStmt = db.query("INSERT OR REPLACE INTO probe (worker, at) VALUES (?, ?)");
  const storeProbe = setInterval(() => {
    const now = Date.now();
    for (const [k, until] of ctx.ackWatch) if (until < now) ctx.ackWatch.delete(k);
    if (!storeError()) return;
    for (const b of [batcher, durable]) {
      if (b.lastError) b.run(() => probeStmt.run(workerId, Date.now())).then(() => log.info("Store writable again"), () => {});
    }
  }, 5000);
  metrics.gauge("owsla_commands_caught_up_total", () => pending.caughtUp);
  metrics.gauge("owsla_store_ok", () => (storeError() ? 0 : 1));
  const expiry = setInterval(() => {
    try {
      const n = inbox.expire();
      if (n > 0) {
        metrics.inc("owsla_commands_expired_total", undefined, n);
        log.info("Expired undelivered commands (their devices did not ack them in time)", { count: n });
      }
    } catch (err) {
      log.warn("Cannot expire old commands; retrying in a minute", { err: err as Error });
    }
  }, 60_000);
  log.info("Worker listening for devices", { host: config.device.host, port: listener.port, gateway: config.gateway.id });

  return {
    port: listener.port,
    onSupervisorMessage(m: unknown) {
      if (isControlRequest(m)) {
        void answerControl(
          m,
          {
            stats: () => ({
              snapshot: metrics.snapshot(),
              broker: link.state,
              connections: listener.connections.size,
              store: storeError() ? `error: ${storeError()!.message}` : "ok",
            }),
            kick: ({ deviceId, reason }) => {
              const conn = registry.get(deviceId);
              if (!conn) return false;
              // `kicked` is not a protocol error code: the device just sees the connection close.
              if (reason === "revoked") conn.close(reason, "unauthorized", "Device credentials were revoked");
              else conn.close(reason);
              return true;
            },
            revoke: ({ deviceId, generation }) => {
              ctx.auth.tokenFloors.set(deviceId, generation);
              const conn = registry.get(deviceId);
              conn?.close("revoked", "unauthorized", "Device credentials were revoked; ask the installer for a re-issued token");
              return conn !== undefined;
            },
            command: ({ cmd, watchAck }) => {
              if (watchAck) ctx.ackWatch.set(`${cmd.deviceId}/${cmd.id}`, Date.now() + ACK_WATCH_MS);
              const conn = registry.get(cmd.deviceId);
              if (!conn || conn.state !== "open" || conn.sentCommands.has(cmd.id)) return false;
              return conn.sendCommand(cmd);
            },
          },
          (r) => peers.send(r),
        );
        return;
      }
      Cluster.dispatch(m, {
        command: (cmd, sentAt) => router.deliverForwarded(cmd, sentAt),
        claimed: (deviceId, connId, welcomedAt) => {
          // Only an older local connection yields; a late announcement of an older claim is ignored.
          const local = registry.get(deviceId);
          if (local && local.connId !== connId && local.welcomedAt <= welcomedAt) {
            local.close("taken_over", "taken_over", TAKEN_OVER_MESSAGE);
          }
        },
        authFailed: (keys) => {
          for (const k of keys) ctx.auth.bans.fail(k);
        },
      });
    },
    async stop() {
      clearInterval(expiry);
      clearInterval(storeProbe);
      listener.stopAccepting();
      // device.drain_rate is for the whole gateway: each worker takes its share.
      await drainConnections(listener.connections, config.device.drain_rate / workersTotal);
      const deadline = Date.now() + 5000;
      while (publisher.inflight > 0 && Date.now() < deadline) await Bun.sleep(20);
      batcher.flush();
      durable.flush();
      publisher.stop();
      await link.close();
      listener.close();
      batcher.flush();
      durable.flush();
      db.close();
      durableDb.close();
    },
  };
}

/**
 * Keeps a stray rejected promise (e.g. amqp-client's EPIPE on a socket that just died) from
 * killing the process; logs it instead. A thrown exception still ends the process, so the
 * supervisor (or systemd) restarts it from a known state.
 */
function guardProcess(log: Logger): void {
  process.on("unhandledRejection", (reason) => {
    const msg = reason instanceof Error ? reason.message : String(reason);
    log.warn("Ignored an unhandled promise rejection", { err: msg });
  });
  process.on("uncaughtException", (err) => {
    log.error("Uncaught exception; exiting so the process is restarted cleanly", { err: err.message, stack: err.stack?.split("\n").slice(0, 6).join(" | ") });
    process.exit(70);
  });
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
  // Create shared files once, before workers race for them.
  const secret = loadOrCreateSecret(secretPath(config));
  const apiToken = resolveApiToken(config);
  const db = openDatabase(config.store.dir);
  const batcher = new Batcher(db, { delayMs: 1 });
  const adopted = new Outbox(db, batcher, 0).adoptOrphans(count);
  if (adopted > 0) log.info("Outbox rows of workers that no longer exist were handed to worker 0", { rows: adopted });
  const devices = new DeviceStore(db, batcher);
  // Commands sent through the API are acknowledged to the caller once stored: FULL sync.
  const durableDb = openDatabase(config.store.dir, { synchronous: "FULL" });
  const durable = new Batcher(durableDb, { delayMs: 1 });
  const inbox = new Inbox(durableDb, durable);
  const metrics = new Metrics();

  let plane: ControlPlane | null = null;
  const sup = startSupervisor({
    count,
    command: () => workerCommand(args),
    env: { OWSLA_WORKERS_TOTAL: String(count) },
    workerEnv: (id: number) => ({ OWSLA_WORKER_ID: String(id) }),
    maxRestarts: config.workers.max_restarts,
    periodMs: config.workers.restart_period_s * 1000,
    heartbeatMs: config.workers.heartbeat_ms,
    hangTimeoutMs: config.workers.hang_timeout_ms,
    shutdownDeadlineMs: config.workers.shutdown_deadline_s * 1000,
    log,
    onMessage: (from, msg) => {
      if (isForward(msg)) {
        if (msg.to !== undefined) sup.send(msg.to, msg.payload);
        else for (const w of sup.workers()) if (w.id !== from && w.up) sup.send(w.id, msg.payload);
      } else if (isControlResponse(msg)) client.onResponse(msg);
      else if (isAckNotice(msg)) plane?.onAck(msg);
    },
  });
  const client = new ControlClient((id, m) => sup.send(id, m));
  metrics.gauge("owsla_worker_restarts_total", () => sup.workers().reduce((n, w) => n + w.restarts, 0));
  metrics.gauge("owsla_workers_up", () => sup.workers().filter((w) => w.up).length);
  metrics.gauge("owsla_inbox_depth", () => inbox.count());
  plane = new ControlPlane({
    sup,
    client,
    devices,
    inbox,
    secret,
    siteNamespace: config.gateway.site_namespace,
    gatewayId: config.gateway.id,
    version: VERSION,
    apiToken,
    commandTtlS: config.broker.command_ttl_s,
    metrics,
    log,
  });
  let api: ReturnType<typeof Bun.serve> | null = null;
  try {
    const app = createApi(plane);
    // idleTimeout above the longest ?wait=ack (60 s) so those requests are not cut.
    api = Bun.serve({ hostname: config.api.host, port: config.api.port, fetch: (req, server) => app.fetch(req, server), idleTimeout: 75 });
    log.info("Control API listening", { url: `http://${config.api.host}:${api.port}/` });
  } catch (err) {
    log.error("Cannot start the control API; set api.host/api.port to a free address", { err: err as Error });
    await sup.stop("control API failed");
    return 1;
  }

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info("Stopping gracefully: draining devices, then stopping workers", { signal });
    void sup.stop(signal);
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  sup.whenAllReady().then(
    () => log.info("Gateway ready: all workers listening", { workers: count, port: config.device.port, api_port: api?.port }),
    () => {},
  );
  const { code, reason } = await sup.done;
  api?.stop(true);
  batcher.flush();
  durable.flush();
  db.close();
  durableDb.close();
  if (code !== 0) log.error("Gateway stopped", { reason, code });
  else log.info("Gateway stopped", { reason });
  return code;
}

/** The API bearer token: configured, or generated into the data dir (printed once, on creation). */
function resolveApiToken(config: Config): string {
  if (config.api.token) return config.api.token;
  const path = join(config.store.dir, "api.token");
  const { token, created } = loadOrCreateApiToken(path);
  if (created) process.stderr.write(`Owsla: generated the control API token (shown once; kept in ${path}):\n  ${token}\n`);
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
  const link = connectToSupervisor({ onShutdown: stop, onMessage: (m) => running?.onSupervisorMessage(m), log });
  const total = Number(process.env.OWSLA_WORKERS_TOTAL ?? "1");
  running = await startWorker(config, workerId, log, { send: (m) => link.send(m), enabled: link.connected, peers: total > 1 });
  if (!link.connected) {
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
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
  if (!["serve", "worker", "token", "version", "help"].includes(command)) {
    process.stderr.write(`Unknown command "${command}".\n${USAGE}\n`);
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
      process.stderr.write(`${e.message}\n`);
      return 2;
    }
    throw e;
  }
  if (loaded.help) {
    process.stdout.write((command === "serve" && argv[0] !== "serve" ? USAGE + "\n\n" : "") + helpText(command) + "\n");
    return 0;
  }
  if (command === "token") return tokenCommand(loaded.config, loaded.positionals);
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
      process.stderr.write(`Owsla failed to start: ${err.message}\n`);
      process.exit(1);
    },
  );
}
