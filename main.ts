/**
 * Owsla entry point: parses the command line and wires the modules together. This is the
 * only file that knows how the parts fit; every module takes its dependencies as arguments.
 */
import { join } from "node:path";
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
import { loadOrCreateSecret, mintToken } from "./src/auth/token.ts";
import { startListener } from "./src/listener/listener.ts";
import { maxConnections } from "./src/listener/fd-limit.ts";
import type { DeviceConnection } from "./src/session/connection.ts";
import type { SessionContext } from "./src/session/context.ts";
import { drainConnections } from "./src/session/drain.ts";
import { TAKEN_OVER_MESSAGE } from "./src/session/connection.ts";
import { Cluster, isForward } from "./src/registry/cluster.ts";
import { startSupervisor } from "./src/supervisor/supervisor.ts";
import { connectToSupervisor } from "./src/supervisor/worker-link.ts";
import { availableParallelism } from "node:os";

/** Version of this build (replaced at compile time by the build script). */
export const VERSION = process.env.OWSLA_BUILD_VERSION ?? "0.1.0-dev";

const USAGE = `Usage: owsla [command] [options]

Commands:
  serve            Run the gateway (default)
  token <hw-id>    Print the device token for a hardware id (uses the site secret in the data dir)
  version          Print the version
Run "owsla <command> --help" for the options of a command.`;

/** Path of the site secret for `config`. */
function secretPath(config: Config): string {
  return config.auth.secret_file || join(config.store.dir, "site.secret");
}

function makeLogger(config: Config, base: Record<string, unknown>): Logger {
  const fmt = config.log.format;
  return createLogger({ level: config.log.level, pretty: fmt === "auto" ? undefined : fmt === "pretty", base });
}

/** How often a worker looks for recently stored commands its devices have not been sent, in ms. */
const COMMAND_CATCH_UP_EVERY_MS = 500;
/** How far back that look goes (covers batch commit delay and IPC forwarding), in ms. */
const COMMAND_CATCH_UP_WINDOW_MS = 3000;

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
  peers: { send: (m: unknown) => void; enabled: boolean } = { send: () => {}, enabled: false },
): Promise<RunningWorker & { onPeerMessage: (m: unknown) => void }> {
  const metrics = new Metrics();
  const cluster = new Cluster(peers.send, peers.enabled);
  const db = openDatabase(config.store.dir);
  const batcher = new Batcher(db, {
    delayMs: config.store.batch_delay_ms,
    maxOps: config.store.batch_max,
    onError: (err) => log.error("Store write failed; affected devices get no ack. Check free disk space and store.dir permissions", { err }),
  });
  const devices = new DeviceStore(db, batcher);
  devices.resetWorker(workerId, "gateway_restart");
  const inbox = new Inbox(db, batcher);
  const outbox = new Outbox(db, batcher, workerId);
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
  const ctx: SessionContext = {
    gatewayId: config.gateway.id,
    workerId,
    siteNamespace: config.gateway.site_namespace,
    replyTo: topo.queue,
    auth: { mode: config.auth.mode, secret: loadOrCreateSecret(secretPath(config)) },
    limits: {
      maxFrameBytes: config.device.max_frame_bytes,
      helloTimeoutMs: config.device.hello_timeout_ms,
      keepaliveS: config.device.keepalive_s,
      maxOutboundBytes: config.device.max_outbound_bytes,
      maxPendingPubs: 1024,
    },
    devices,
    inbox,
    publisher,
    registry,
    cluster,
    metrics,
    log,
  };
  const router = new LocalRouter(inbox, devices, registry, metrics, cluster);
  new CommandConsumer(link, topo.queue, config.broker.command_ttl_s * 1000, router, metrics, log);
  const listener = startListener(
    {
      host: config.device.host,
      port: config.device.port,
      maxConnections: maxConnections(config.device.max_connections),
      acceptRatePerIp: config.device.accept_rate_per_ip,
      acceptRateTotal: config.device.accept_rate_total,
    },
    ctx,
  );
  link.start();
  // Commands stored by any worker while their device was mid-hello (or moving between
  // workers) are picked up here instead of waiting for the next reconnect.
  const catchUp = setInterval(() => {
    try {
      for (const c of inbox.since(Date.now() - COMMAND_CATCH_UP_WINDOW_MS)) {
        const conn = registry.get(c.deviceId);
        if (conn && conn.state === "open" && !conn.sentCommands.has(c.id) && conn.sendCommand(c)) {
          metrics.inc("owsla_commands_caught_up_total");
        }
      }
    } catch (err) {
      log.warn("Command catch-up sweep failed; retrying", { err: err as Error });
    }
  }, COMMAND_CATCH_UP_EVERY_MS);
  const expiry = setInterval(() => {
    try {
      const n = inbox.expire();
      if (n > 0) log.info("Expired undelivered commands", { count: n });
    } catch (err) {
      log.warn("Cannot expire old commands; retrying in a minute", { err: err as Error });
    }
  }, 60_000);
  log.info("Worker listening for devices", { host: config.device.host, port: listener.port, gateway: config.gateway.id });

  return {
    port: listener.port,
    onPeerMessage(m: unknown) {
      Cluster.dispatch(m, {
        command: (cmd, sentAt) => router.deliverForwarded(cmd, sentAt),
        claimed: (deviceId, connId, welcomedAt) => {
          // Only an older local connection yields; a late announcement of an older claim is ignored.
          const local = registry.get(deviceId);
          if (local && local.connId !== connId && local.welcomedAt <= welcomedAt) {
            local.close("taken_over", "taken_over", TAKEN_OVER_MESSAGE);
          }
        },
      });
    },
    async stop() {
      clearInterval(expiry);
      clearInterval(catchUp);
      listener.stopAccepting();
      await drainConnections(listener.connections, config.device.drain_rate);
      const deadline = Date.now() + 5000;
      while (publisher.inflight > 0 && Date.now() < deadline) await Bun.sleep(20);
      batcher.flush();
      publisher.stop();
      await link.close();
      listener.close();
      batcher.flush();
      db.close();
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
  loadOrCreateSecret(secretPath(config));
  const db = openDatabase(config.store.dir);
  const adopted = new Outbox(db, new Batcher(db), 0).adoptOrphans(count);
  if (adopted > 0) log.info("Outbox rows of workers that no longer exist were handed to worker 0", { rows: adopted });
  db.close();

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
      if (!isForward(msg)) return;
      if (msg.to !== undefined) sup.send(msg.to, msg.payload);
      else for (const w of sup.workers()) if (w.id !== from && w.up) sup.send(w.id, msg.payload);
    },
  });
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
    () => log.info("Gateway ready: all workers listening", { workers: count, port: config.device.port }),
    () => {},
  );
  const { code, reason } = await sup.done;
  if (code !== 0) log.error("Gateway stopped", { reason, code });
  else log.info("Gateway stopped", { reason });
  return code;
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
  const link = connectToSupervisor({ onShutdown: stop, onMessage: (m) => running?.onPeerMessage(m), log });
  const total = Number(process.env.OWSLA_WORKERS_TOTAL ?? "1");
  running = await startWorker(config, workerId, log, { send: (m) => link.send(m), enabled: link.connected && total > 1 });
  if (!link.connected) {
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  }
  link.ready();
  return await exited;
}

function tokenCommand(config: Config, positionals: string[]): number {
  const hw = positionals[0];
  if (!hw || positionals.length > 1) {
    process.stderr.write("Usage: owsla token <hardware-id> [--data DIR]\nPrints the token a device with that hardware id presents in hello.\n");
    return 2;
  }
  process.stdout.write(mintToken(loadOrCreateSecret(secretPath(config)), hw) + "\n");
  return 0;
}

/** Runs the command line `argv` (without runtime and script) and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  let command = "serve";
  let args = argv;
  if (argv[0] && !argv[0].startsWith("-")) {
    command = argv[0];
    args = argv.slice(1);
  }
  if (!["serve", "worker", "token", "version", "help"].includes(command)) {
    process.stderr.write(`Unknown command "${command}".\n${USAGE}\n`);
    return 2;
  }
  if (command === "version") {
    process.stdout.write(`owsla ${VERSION}\n`);
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
