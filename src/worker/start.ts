/**
 * Wiring of one worker process: store, broker link, registry, sessions and the device
 * listener, started in order and stopped in reverse. `main.ts` calls {@link startWorker} for the
 * `worker` command (and tests call it in-process); the supervisor runs one such process per
 * worker.
 */
import type { Config } from "../config/types.ts";
import type { Logger } from "../log/logger.ts";
import { openSiteDatabase, openWorkerDatabase } from "../store/db.ts";
import { Batcher } from "../store/batcher.ts";
import { DeviceStore } from "../store/devices.ts";
import { Inbox } from "../store/inbox.ts";
import { Outbox } from "../store/outbox.ts";
import { topology } from "../bridge/topology.ts";
import { BrokerLink } from "../bridge/link.ts";
import { linkMetrics, linkOptions } from "../bridge/link-config.ts";
import { Publisher } from "../bridge/publisher.ts";
import { CommandConsumer } from "../bridge/consumer.ts";
import { deadLetterStored } from "../bridge/dead-letter-copy.ts";
import { DiskLimits, workerLimits } from "../store/disk-limits.ts";
import { InboxLimiter } from "../registry/inbox-limit.ts";
import { Registry } from "../registry/registry.ts";
import { CommandRouter, type HolderConn } from "../registry/router.ts";
import { SiteLink } from "../registry/site-link.ts";
import { Mesh, meshDir } from "../mesh/mesh.ts";
import { Metrics } from "../metrics/metrics.ts";
import { registerProcessMetrics } from "../metrics/process.ts";
import { registerQueueGauges, type QueueLevel } from "../metrics/queue-gauges.ts";
import { loadOrCreateSecret } from "../auth/token.ts";
import { startListener } from "../listener/listener.ts";
import { readTlsFiles } from "../listener/tls-config.ts";
import { maxConnections } from "../listener/fd-limit.ts";
import type { DeviceSession } from "../session/device-session.ts";
import { startMqttListeners } from "../mqtt/listen.ts";
import type { DeviceDirectory, SessionContext } from "../session/context.ts";
import { drainConnections } from "../session/drain.ts";
import { BanList } from "../auth/bans.ts";
import { answerControl, isControlRequest } from "../control/protocol.ts";
import { secretPath } from "../cli/commands.ts";
import { isReload } from "../supervisor/reload.ts";
import { AddressLog } from "../log/address-log.ts";

export { readTlsFiles } from "../listener/tls-config.ts";

/** Longest a starting worker waits for its links to the other workers before reporting ready, in ms. */
const MESH_READY_WAIT_MS = 5000;

/** A running gateway worker: listener, sessions, store and broker link of one process. */
export interface RunningWorker {
  port: number;
  /** The MQTT port (plain, or TLS when the device TLS files are set); null with MQTT off. */
  mqttPort: number | null;
  stop(): Promise<void>;
}

/** How the worker reaches its supervisor (absent when it runs alone). */
export interface SupervisorPort {
  send: (m: unknown) => void;
  /** Whether a supervisor is there. */
  enabled: boolean;
}

/** Wires and starts one worker process's part of the gateway. */
export async function startWorker(
  config: Config,
  workerId: number,
  log: Logger,
  sup: SupervisorPort = { send: () => {}, enabled: false },
): Promise<RunningWorker & { onSupervisorMessage: (m: unknown) => void }> {
  const metrics = new Metrics();
  registerProcessMetrics(metrics);
  const workersTotal = sup.enabled ? Math.max(1, Number(process.env.OWSLA_WORKERS_TOTAL ?? "1")) : 1;
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
    "owsla_commands_stored_total",
    "owsla_outbox_writes_total",
    "owsla_outbox_drained_total",
    "owsla_slow_consumers_total",
  );
  let lastStoreErrorLog = 0;
  // This worker's own database: its outbox and the commands it stores. One writer (us).
  const db = openWorkerDatabase(config.store.dir, workerId);
  const batcher = new Batcher(db, {
    delayMs: config.store.batch_delay_ms,
    maxOps: config.store.batch_max,
    onError: (err: Error) => {
      // One line per 30 s at most: a full disk fails every batch.
      if (Date.now() - lastStoreErrorLog < 30_000) return;
      lastStoreErrorLog = Date.now();
      log.error("Store write failed; devices get no ack for messages that need the outbox, commands for offline devices wait at the broker. Check free disk space and that store.dir is writable", { err, dir: config.store.dir });
    },
  });
  const storeError = () => batcher.lastError;
  // The site database is the supervisor's; a worker only reads it (alone, it writes it too).
  const siteDb = openSiteDatabase(config.store.dir);
  const site = new DeviceStore(siteDb);
  const inbox = new Inbox(db, batcher);
  const outbox = new Outbox(db, batcher, workerId);
  const topo = topology(config.broker.prefix, config.gateway.id);
  const link = new BrokerLink(linkOptions(config, topo, `owsla ${config.gateway.id} worker ${workerId}`, log));
  // Bounded disk use (docs/protocol-notes.md, "Store limits"): this worker's share of the limits.
  const diskLimits = new DiskLimits(workerLimits(config.store, workersTotal), config.store.dir, log);
  const publisher = new Publisher(
    link,
    outbox,
    {
      exchange: topo.up,
      window: config.broker.publish_window,
      confirmTimeoutMs: config.broker.confirm_timeout_ms,
      // broker.drain_rate is for the whole gateway: each worker drains its share.
      drainRatePerS: config.broker.drain_rate / workersTotal,
      limits: diskLimits,
      heldBytes: outbox.level().bytes,
    },
    metrics,
    log,
  );
  const inboxLimiter = new InboxLimiter({ store: inbox, limits: diskLimits, deadLetter: (c, reason) => deadLetterStored(link.up ? link.pub : null, topo.dead, c, reason), metrics, log });
  const registry = new Registry<DeviceSession>();
  const siteLink = new SiteLink(workerId, (m) => sup.send(m), sup.enabled ? null : { apply: (items) => site.applySightings(items), createIdentity: (id) => site.createIdentity(id) });
  let mesh: Mesh | null = null;
  const router = new CommandRouter({
    self: workerId,
    count: workersTotal,
    send: (peer, msg) => mesh?.send(peer, msg) ?? false,
    registry: registry as unknown as Registry<HolderConn>,
    store: inbox,
    limiter: inboxLimiter,
    known: (id) => registry.get(id) !== undefined || site.known(id),
    ackTimeoutMs: config.broker.device_ack_timeout_ms,
    metrics,
    log,
    onWatchedAck: (deviceId, cmdId) => sup.send({ t: "acked", deviceId, cmdId }),
  });
  router.resyncSelf();
  if (workersTotal > 1) {
    mesh = new Mesh({
      self: workerId,
      count: workersTotal,
      dir: meshDir(config.store.dir, config.gateway.id),
      log,
      onMessage: (from, msg) => router.onMessage(from, msg),
      onPeerUp: (peer) => router.peerUp(peer),
      onPeerDown: (peer) => router.peerDown(peer),
    });
    mesh.start();
    // Ready only once the other workers can be reached: a takeover or a command for a device
    // on another worker needs the link (a peer restarting later is caught up on reconnect).
    if (!(await mesh.whenAllUp(MESH_READY_WAIT_MS))) log.warn("Not every other worker is reachable yet; carrying on (they are caught up when their link comes up)", { waitedMs: MESH_READY_WAIT_MS });
  }
  const directory: DeviceDirectory = {
    welcomed(conn, deviceId, hardwareId) {
      router.welcomed(deviceId, conn as DeviceSession);
      siteLink.connected(deviceId, hardwareId, conn.connId, Date.now());
    },
    released(conn, deviceId, reason, lastSeen, unacked) {
      router.released(deviceId, conn as DeviceSession, unacked);
      siteLink.disconnected(deviceId, conn.connId, reason, lastSeen);
    },
    // Re-claiming is idempotent for the holder and makes the stored commands' origins send them.
    resend: (conn, deviceId) => router.welcomed(deviceId, conn as DeviceSession),
    acked: (deviceId, cmdId, route) => router.deviceAck(deviceId, cmdId, route),
    anonymousKnown(deviceId) {
      if (registry.get(deviceId)) return "anonymous";
      const row = site.get(deviceId);
      return !row ? "unknown" : row.hardware_id ? "hardware" : "anonymous";
    },
    createAnonymous: (id) => siteLink.createAnonymous(id),
    authFailed: (keys) => siteLink.announceAuthFailure(keys),
  };
  const ctx: SessionContext = {
    gatewayId: config.gateway.id,
    workerId,
    siteNamespace: config.gateway.site_namespace,
    replyTo: topo.queue,
    auth: {
      mode: config.auth.mode,
      secret: loadOrCreateSecret(secretPath(config)),
      tokenFloors: site.tokenFloors(),
      bans: new BanList({ failures: config.auth.ban_failures, windowMs: config.auth.ban_window_s * 1000, durationMs: config.auth.ban_duration_s * 1000 }),
    },
    limits: {
      maxFrameBytes: config.device.max_frame_bytes,
      helloTimeoutMs: config.device.hello_timeout_ms,
      keepaliveS: config.device.keepalive_s,
      maxOutboundBytes: config.device.max_outbound_bytes,
      maxPendingPubs: 1024,
    },
    publisher,
    directory,
    metrics,
    log,
    refusals: new AddressLog(log),
  };
  new CommandConsumer(link, topo.queue, config.broker.command_ttl_s * 1000, config.device.max_frame_bytes, router, metrics, log, topo.dead);
  const limits = {
    maxConnections: maxConnections(config.device.max_connections),
    // The rates are for the whole gateway; the kernel spreads connections evenly, so each
    // worker enforces its share.
    acceptRatePerIp: config.device.accept_rate_per_ip / workersTotal,
    acceptRateTotal: config.device.accept_rate_total / workersTotal,
    floodThreshold: config.device.flood_threshold / workersTotal,
    floodBlockMs: config.device.flood_block_s * 1000,
  };
  const tlsFiles = readTlsFiles(config);
  const listener = startListener({ ...limits, host: config.device.host, port: config.device.port, tls: tlsFiles }, ctx, registry);
  const mqtt = startMqttListeners(config, ctx, registry, limits, tlsFiles);
  const listeners = [listener, ...mqtt.all];
  const mqttPort = mqtt.all[0]?.port ?? null;
  link.start();
  linkMetrics(link, metrics);
  metrics.gauge("owsla_outbox_depth", () => publisher.outboxDepth);
  metrics.gauge("owsla_commands_awaiting_ack", () => router.inflightCount);
  metrics.gauge("owsla_home_devices", () => router.home.size);
  // While writes fail (disk full, read-only), probe every few seconds so recovery is noticed
  // (and reported by /readyz) even when no device is writing.
  const probeStmt = db.query("INSERT OR REPLACE INTO probe (worker, at) VALUES (?, ?)");
  const storeProbe = setInterval(() => {
    if (!storeError()) return;
    batcher.run(() => probeStmt.run(workerId, Date.now())).then(() => log.info("Store writable again"), () => {});
  }, 5000);
  metrics.gauge("owsla_store_ok", () => (storeError() ? 0 : 1));
  metrics.gauge("owsla_inbox_depth", () => inbox.count());
  // Fill levels, read at most once a second (a scrape reads each gauge; the queries scan).
  const cachedLevel = (read: () => QueueLevel) => {
    let at = 0;
    let last: QueueLevel = { bytes: 0, oldestAt: null };
    return () => {
      if (Date.now() - at >= 1000) {
        at = Date.now();
        try {
          last = read();
        } catch {
          // A failing store is reported by owsla_store_ok; keep the last reading.
        }
      }
      return last;
    };
  };
  registerQueueGauges(metrics, "outbox", cachedLevel(() => outbox.level()));
  registerQueueGauges(metrics, "inbox", cachedLevel(() => inbox.level()));
  const free = () => diskLimits.freeBytes();
  metrics.gauge("owsla_store_free_bytes", () => (Number.isFinite(free()) ? free() : -1));
  const limitSweep = setInterval(() => inboxLimiter.sweep().catch((err: Error) => log.warn("Cannot check stored commands for expiry and the store limits; retrying in 10 s", { err })), 10_000);
  log.info("Worker listening for devices", { host: config.device.host, port: listener.port, mqtt_port: mqttPort, mqtt_tls: mqtt.tls !== null, gateway: config.gateway.id });

  return {
    port: listener.port,
    mqttPort,
    onSupervisorMessage(m: unknown) {
      if (isReload(m)) {
        ctx.limits.helloTimeoutMs = m.helloTimeoutMs;
        try {
          for (const l of listeners) l.reload({ maxConnections: maxConnections(m.maxConnections), tls: m.tls });
          log.info("Reloaded settings applied", { tls: m.tls !== undefined });
        } catch (err) {
          log.error("Reload: cannot apply the new TLS files; the previous certificate stays in use", { err: err as Error });
        }
        return;
      }
      if (isControlRequest(m)) {
        // Sightings first: the supervisor then records them before it reads this answer.
        siteLink.flush();
        void answerControl(
          m,
          {
            stats: () => ({
              snapshot: metrics.snapshot(),
              broker: link.state,
              connections: listeners.reduce((n, l) => n + l.connections.size, 0),
              store: storeError() ? `error: ${storeError()!.message}` : "ok",
            }),
            held: ({ ids }) => {
              const out: [string, string, number][] = [];
              for (const id of Array.isArray(ids) ? ids : []) {
                const conn = registry.get(id);
                if (conn?.state === "open") out.push([id, conn.connId, conn.lastActivity]);
              }
              return out;
            },
            heldPage: ({ after, limit }) => {
              const out: [string, string, number][] = [];
              for (const [id, conn] of registry.entries()) if (conn.state === "open" && (after === null || id > after)) out.push([id, conn.connId, conn.lastActivity]);
              out.sort((a, b) => (a[0] < b[0] ? -1 : 1));
              return out.slice(0, Math.max(0, limit));
            },
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
            command: async ({ cmd, watchAckMs }) => {
              await router.acceptStored(cmd, watchAckMs);
              return true;
            },
          },
          (r) => sup.send(r),
        );
        return;
      }
      const msg = m as { t?: string; seq?: number; ok?: boolean; keys?: string[] };
      if (msg.t === "authfail" && Array.isArray(msg.keys)) for (const k of msg.keys) ctx.auth.bans.fail(k);
      else if (msg.t === "relayed" && typeof msg.seq === "number") siteLink.relayed(msg.seq);
      else if (msg.t === "anon-ok" && typeof msg.seq === "number") siteLink.anonDone(msg.seq, msg.ok === true);
    },
    async stop() {
      clearInterval(limitSweep);
      clearInterval(storeProbe);
      for (const l of listeners) l.stopAccepting();
      // device.drain_rate is for the whole gateway: each worker takes its share.
      await drainConnections(listeners.map((l) => l.connections), config.device.drain_rate / workersTotal);
      const deadline = Date.now() + 5000;
      while (publisher.inflight > 0 && Date.now() < deadline) await Bun.sleep(20);
      siteLink.flush();
      batcher.flush();
      publisher.stop();
      router.stop();
      await link.close();
      for (const l of listeners) l.close();
      mesh?.close();
      batcher.flush();
      db.close();
      siteDb.close();
    },
  };
}
