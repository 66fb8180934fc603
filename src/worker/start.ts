/**
 * Wiring of one worker process: store, broker link, registry, sessions and the device
 * listener, started in order and stopped in reverse. `main.ts` calls {@link startWorker} for the
 * `worker` command (and tests call it in-process); the supervisor runs one such process per
 * worker.
 */
import { readFileSync } from "node:fs";
import type { Config } from "../config/types.ts";
import type { Logger } from "../log/logger.ts";
import { openDatabase } from "../store/db.ts";
import { Batcher } from "../store/batcher.ts";
import { DeviceStore } from "../store/devices.ts";
import { Inbox } from "../store/inbox.ts";
import { Outbox } from "../store/outbox.ts";
import { topology } from "../bridge/topology.ts";
import { BrokerLink } from "../bridge/link.ts";
import { Publisher } from "../bridge/publisher.ts";
import { CommandConsumer } from "../bridge/consumer.ts";
import { Registry } from "../registry/registry.ts";
import { LocalRouter } from "../registry/local-router.ts";
import { Metrics } from "../metrics/metrics.ts";
import { loadOrCreateSecret } from "../auth/token.ts";
import { startListener } from "../listener/listener.ts";
import { readTlsFiles } from "../listener/tls-config.ts";
import { maxConnections } from "../listener/fd-limit.ts";
import { TAKEN_OVER_MESSAGE, type DeviceConnection } from "../session/connection.ts";
import type { SessionContext } from "../session/context.ts";
import { drainConnections } from "../session/drain.ts";
import { PendingLoader } from "../session/pending-loader.ts";
import { BanList } from "../auth/bans.ts";
import { Cluster } from "../registry/cluster.ts";
import { answerControl, isControlRequest } from "../control/protocol.ts";
import { secretPath } from "../cli/commands.ts";

export { readTlsFiles } from "../listener/tls-config.ts";

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
      floodThreshold: config.device.flood_threshold / workersTotal,
      floodBlockMs: config.device.flood_block_s * 1000,
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
        relayed: (seq) => cluster.relayed(seq),
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

