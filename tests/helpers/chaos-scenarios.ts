/**
 * The chaos scenarios (issue 7, items 6-9), parameterised by size so the same code runs as a
 * bounded CI test (tests/chaos-*.test.ts) and at full size (scripts/chaos/*.ts, JSON out).
 * Each scenario returns its numbers and a list of checks; tests assert every check, scripts
 * print them.
 *
 * Every scenario uses a private RabbitMQ node ({@link PrivateBroker}); the machine's shared
 * node is never touched.
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PrivateBroker } from "./private-broker.ts";
import { BlackholeProxy, NetnsLink, netnsUnavailable } from "./blackhole-proxy.ts";
import { BrokerProxy } from "./proxy.ts";
import type { GatewayProcess } from "./gateway.ts";
import { AMQPClient } from "@cloudamqp/amqp-client";
import {
  ChaosBackend,
  Commander,
  api,
  delta,
  gaps,
  integrity,
  loadDevices,
  logsSince,
  metric,
  metricByLabel,
  r1,
  rssMiB,
  sampler,
  startChaosGateway,
  tally,
  waitConnected,
  waitLog,
  waitSettled,
  type LoadDevice,
  type Tally,
} from "./chaos-kit.ts";

/** One verified property of a scenario. */
export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** Reported, but does not make the scenario fail (a measured property, not a promise). */
  info?: boolean;
}

/** What a scenario reports. */
export interface ScenarioResult {
  scenario: string;
  ok: boolean;
  checks: Check[];
  numbers: Record<string, unknown>;
  /** The command that reproduces it (set by the scripts). */
  command?: string;
}

function check(checks: Check[], name: string, ok: boolean, detail: string, info = false): void {
  checks.push(info ? { name, ok, detail, info } : { name, ok, detail });
}

function result(scenario: string, checks: Check[], numbers: Record<string, unknown>): ScenarioResult {
  return { scenario, ok: checks.every((c) => c.ok || c.info), checks, numbers };
}

/** The checks that failed (informational ones excluded), for assertions. */
export function failedChecks(r: ScenarioResult): Check[] {
  return r.checks.filter((c) => !c.ok && !c.info);
}

/** Prints a scenario's numbers and every check (test output). */
export function printScenario(r: ScenarioResult): void {
  console.log(`${r.scenario}: ${JSON.stringify(r.numbers)}`);
  for (const c of r.checks) console.log(`  ${c.ok ? "ok  " : c.info ? "info" : "FAIL"} ${c.name}: ${c.detail}`);
}

/** Size of the device load. */
export interface LoadSpec {
  devices: number;
  /** Each device publishes one message every `everyMs`. */
  everyMs: number;
  /** The back-end sends one command every `cmdEveryMs` (round-robin over devices). */
  cmdEveryMs: number;
  /** Load before the fault, ms. */
  warmupMs: number;
  /** Load after recovery, ms. */
  afterMs: number;
}

/** A private broker plus a back-end consuming everything its gateways publish. */
export interface ChaosEnv {
  broker: PrivateBroker;
  backend: ChaosBackend;
  prefix: string;
}

/** Boots a private broker and the back-end. */
export async function openEnv(tag: string): Promise<ChaosEnv> {
  const prefix = "chaos.";
  const broker = await PrivateBroker.start({ tag, prefix });
  const backend = await new ChaosBackend(broker.url(), prefix, broker.backendQueue).start();
  return { broker, backend, prefix };
}

/** Stops the back-end and the private broker. */
export async function closeEnv(env: ChaosEnv | undefined): Promise<void> {
  if (!env) return;
  await env.backend.stop().catch(() => {});
  await env.broker.stop();
}

function rand(): string {
  return Math.random().toString(36).slice(2, 7);
}

/** Ms from `t0` to the latest of each worker's first log line (so: all workers noticed). */
function allWorkersBy(lines: { t: string; worker?: unknown }[], t0: number): number {
  const first = new Map<unknown, number>();
  for (const l of lines) {
    const t = Date.parse(l.t);
    if (!first.has(l.worker) || t < first.get(l.worker)!) first.set(l.worker, t);
  }
  return Math.max(...[...first.values()].map((t) => t - t0));
}

/** Waits until the gateway's outbox is empty; returns ms waited (or -1 on timeout). */
async function waitOutboxEmpty(gw: GatewayProcess, timeoutMs: number): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    const d = await metric(gw, "owsla_outbox_depth").catch(() => null);
    if (d === 0) return Date.now() - start;
    await Bun.sleep(100);
  }
  return -1;
}

function tallyNumbers(t: Tally): Record<string, unknown> {
  return {
    acked: t.acked,
    delivered: t.delivered,
    lost: t.lost,
    lost_sample: t.lostSample,
    duplicated: t.duplicated,
    backend_redeliveries: t.backendRedeliveries,
    reordered: t.reordered,
    reordered_sample: t.reorderedSample,
    refused_server_busy: t.refusedBusy,
    refused_rate_limited: t.refusedLimited,
    commands_confirmed: t.cmdsConfirmed,
    commands_lost: t.cmdsLost,
    commands_lost_sample: t.cmdsLostSample,
    commands_repeated: t.cmdsRepeated,
  };
}

// ---------------------------------------------------------------------------------------------
// Item 6: broker failures under load

/** The broker failures of item 6. */
export type BrokerFault = "stop_app" | "stop_app_wipe" | "sigkill" | "blackhole" | "netns_drop";

/** Options for {@link brokerFault}. */
export interface BrokerFaultOptions {
  load: LoadSpec;
  /** How long the fault lasts (from its start), ms. */
  outageMs: number;
  heartbeatS?: number;
  reconnectMaxMs?: number;
  workers?: number;
}

/**
 * One broker failure under load, on a fresh gateway: stop_app/start_app (optionally with a
 * `reset` during the outage, which deletes every exchange and queue), SIGKILL of the broker VM
 * and a reboot, or a silent drop of the gateway-broker link (userspace blackhole proxy, or real
 * packet drop in a network namespace).
 */
export async function brokerFault(env: ChaosEnv, fault: BrokerFault, o: BrokerFaultOptions): Promise<ScenarioResult> {
  const hb = o.heartbeatS ?? 2;
  const reconnectMaxMs = o.reconnectMaxMs ?? 2000;
  const workers = o.workers ?? 2;
  const wipe = fault === "stop_app_wipe";
  const gwId = `gw-${fault.replace(/_/g, "-")}-${rand()}`;
  const checks: Check[] = [];
  const numbers: Record<string, unknown> = { fault, outage_ms: o.outageMs, heartbeat_s: hb, reconnect_max_ms: reconnectMaxMs, workers, devices: o.load.devices, msgs_per_s: Math.round((o.load.devices * 1000) / o.load.everyMs) };
  let proxy: BlackholeProxy | null = null;
  let link: NetnsLink | null = null;
  let url = env.broker.url();
  if (fault === "blackhole") {
    proxy = new BlackholeProxy(env.broker.port).up();
    url = proxy.url();
    numbers.drop_method = "userspace blackhole proxy (sockets kept open, nothing forwarded either way)";
  } else if (fault === "netns_drop") {
    const why = netnsUnavailable();
    if (why) throw new Error(`real packet drop unavailable: ${why}`);
    link = await NetnsLink.create(env.broker.port);
    url = link.url();
    numbers.drop_method = "kernel packet drop: netns + veth, pfifo limit 0 on both veth ends";
  }
  let gw: GatewayProcess | null = null;
  let devices: LoadDevice[] = [];
  let cmd: Commander | null = null;
  try {
    gw = await startChaosGateway({ brokerUrl: url, prefix: env.prefix, gatewayId: gwId, workers, heartbeatS: hb, reconnectMaxMs });
    const g = gw;
    devices = loadDevices(g, gwId, o.load.devices, o.load.everyMs);
    await waitConnected(devices);
    cmd = new Commander(env.broker.url(), env.prefix, gwId).start(() => devices, o.load.cmdEveryMs);
    await Bun.sleep(o.load.warmupMs);
    if (wipe) {
      // A reset destroys what the broker holds; let it hand everything over first.
      for (const d of devices) d.pause();
      cmd.pause();
      await waitSettled(devices, env.backend, cmd, 15_000);
    }
    const before = tally(devices, env.backend, cmd);
    const fallbacksBefore = await metricByLabel(g, "owsla_publish_fallbacks_total");
    const drainedBefore = (await metric(g, "owsla_outbox_drained_total")) ?? 0;
    const held = sampler(() => metric(g, "owsla_outbox_depth"), 200);

    // --- the fault
    const ackedAtFault = devices.reduce((s, d) => s + d.acked.size, 0);
    const t0 = Date.now();
    if (fault === "stop_app" || wipe) await env.broker.stopApp();
    else if (fault === "sigkill") await env.broker.sigkill();
    else if (proxy) proxy.blackhole();
    else if (link) link.drop();
    if (wipe) for (const d of devices) d.resume();
    const down = await waitLog(g, "Broker link down", t0, workers, Math.max(o.outageMs, 4 * hb * 1000) + 5000);
    const detectMs = allWorkersBy(down, t0);
    numbers.detect_ms = detectMs;
    check(checks, "dead link detected within 2x heartbeat", detectMs <= 2 * hb * 1000, `all ${workers} workers logged "Broker link down" ${detectMs} ms after the fault (limit ${2 * hb * 1000} ms)`);
    if (wipe) {
      await env.broker.reset();
      numbers.wiped = "rabbitmqctl reset during the outage (every exchange, queue and binding deleted)";
    }
    const left = t0 + o.outageMs - Date.now();
    if (left > 0) await Bun.sleep(left);

    // --- recovery
    if (link) numbers.packets_dropped = link.droppedPackets();
    const tHeal = Date.now();
    if (fault === "stop_app" || wipe) await env.broker.startApp();
    else if (fault === "sigkill") await env.broker.boot();
    else if (proxy) proxy.heal();
    else if (link) link.heal();
    const tReady = Date.now();
    numbers.broker_back_ms = tReady - tHeal;
    numbers.outage_total_ms = tReady - t0;
    // Acks while the broker was unreachable can only come from the outbox.
    const ackedDuringOutage = devices.reduce((s, d) => s + d.acked.size, 0) - ackedAtFault;
    if (proxy) numbers.bytes_held_by_proxy = proxy.heldBytes;
    let reconnectMs = -1;
    try {
      const up = await waitLog(g, "Broker link up", tHeal, workers, 90_000);
      // start_app/boot return only once rabbitmqctl has seen the node up; the gateway may get in first (0).
      reconnectMs = Math.max(0, allWorkersBy(up, tReady));
    } catch (e) {
      numbers.reconnect_error = (e as Error).message.split("\n")[0];
    }
    numbers.reconnect_ms = reconnectMs;
    check(checks, "gateway reconnects after the broker is back", reconnectMs >= 0 && reconnectMs <= reconnectMaxMs + 2 * hb * 1000 + 3000, reconnectMs >= 0 ? `all workers logged "Broker link up" ${reconnectMs} ms after the broker was reachable again` : `not relinked: ${numbers.reconnect_error}`);
    const attempts = logsSince(g, "Cannot connect to broker", t0).filter((l) => Date.parse(l.t) <= tReady + Math.max(0, reconnectMs));
    const byWorker = new Map<unknown, typeof attempts>();
    for (const a of attempts) byWorker.set(a.worker, [...(byWorker.get(a.worker) ?? []), a]);
    const gapList = [...byWorker.values()].map((ls) => gaps(ls));
    const maxGap = Math.max(0, ...gapList.flat());
    numbers.reconnect_attempts = attempts.length;
    numbers.reconnect_attempt_gaps_ms = gapList.map((g2) => g2.slice(0, 12));
    const outageS = (tReady - t0) / 1000;
    // Without backoff a worker would retry every reconnect_min_ms (100 ms); with it, attempts
    // thin out towards reconnect_max_ms.
    const perWorker = attempts.length / workers;
    check(
      checks,
      "reconnects with backoff",
      perWorker <= Math.max(3, (outageS * 1000) / 400) && maxGap <= reconnectMaxMs + 2 * hb * 1000 + 1500,
      `${attempts.length} failed attempts by ${workers} workers in ${r1(outageS)} s (a fixed 100 ms retry would be ~${Math.round(outageS * 10)} per worker); largest gap ${maxGap} ms (cap ${reconnectMaxMs} ms + connect timeout)`,
    );
    // Topology: a wiped broker has none of it; all of it must be back.
    const want = [`${env.prefix}owsla.up`, `${env.prefix}owsla.down`, `${env.prefix}owsla.dead`];
    const ex = await env.broker.exchanges();
    const qs = await env.broker.queues();
    const missing = [...want.filter((x) => !ex.includes(x)), ...[`${env.prefix}owsla.gw.${gwId}`, `${env.prefix}owsla.dead`].filter((q) => !qs.has(q))];
    check(checks, wipe ? "topology redeclared after the broker was wiped" : "topology present after recovery", missing.length === 0, missing.length ? `missing: ${missing.join(", ")}` : `exchanges ${want.join(", ")} and queue ${env.prefix}owsla.gw.${gwId} exist`);
    if (wipe) cmd.resume();
    const drainMs = await waitOutboxEmpty(g, 60_000);
    const heldMax = await held.stop();
    numbers.outbox_peak = heldMax;
    numbers.outbox_drained_ms = drainMs >= 0 ? Date.now() - tReady : -1;
    check(checks, "outbox drains", drainMs >= 0, drainMs >= 0 ? `outbox empty ${numbers.outbox_drained_ms} ms after the broker was back (peak ${heldMax} rows held)` : "outbox not empty after 60 s");
    await Bun.sleep(o.load.afterMs);
    for (const d of devices) d.pause();
    cmd.pause();
    const settled = await waitSettled(devices, env.backend, cmd, 30_000);
    const t = delta(settled.tally, before);
    Object.assign(numbers, tallyNumbers(t));
    numbers.acked_during_outage = ackedDuringOutage;
    const fallbacks = await metricByLabel(g, "owsla_publish_fallbacks_total");
    numbers.resent_unconfirmed = Object.values(fallbacks).reduce((a, b) => a + b, 0) - Object.values(fallbacksBefore).reduce((a, b) => a + b, 0);
    numbers.resent_unconfirmed_by_reason = Object.fromEntries(Object.entries(fallbacks).map(([k, v]) => [k.replace(/^reason="(.*)"$/, "$1"), v - (fallbacksBefore[k] ?? 0)]));
    numbers.outbox_drained_msgs = ((await metric(g, "owsla_outbox_drained_total")) ?? 0) - drainedBefore;
    numbers.recovered_s = r1(Math.max(reconnectMs, drainMs >= 0 ? (numbers.outbox_drained_ms as number) : 0) / 1000);
    check(checks, "no device-acked message lost", settled.tally.lost === 0, `${settled.tally.acked} acked in total, ${settled.tally.lost} missing ${settled.tally.lostSample.join(" ")}`);
    check(checks, "no broker-confirmed command lost", settled.tally.cmdsLost === 0, `${settled.tally.cmdsConfirmed} confirmed, ${settled.tally.cmdsLost} never reached their device ${settled.tally.cmdsLostSample.join(" ")}`);
    check(checks, "per-device order kept", t.reordered === 0, `${t.reordered} messages arrived after a later message of the same device`);
    check(checks, "devices kept getting acks during the outage (outbox)", ackedDuringOutage > 0, `${ackedDuringOutage} acks during the outage`);
    numbers.worker_restarts = logsSince(g, "Worker exited").length;
    check(checks, "no worker crashed", numbers.worker_restarts === 0, `${numbers.worker_restarts} worker exits`);
    return result(`broker:${fault}`, checks, numbers);
  } finally {
    await Promise.all(devices.map((d) => d.stop()));
    await cmd?.stop();
    if (gw) {
      await gw.stop().catch(() => {});
      rmSync(gw.dir, { recursive: true, force: true });
    }
    proxy?.down();
    link?.destroy();
    // Leave the broker running for the next scenario whatever happened.
    if (wipe || fault === "stop_app") await env.broker.ctl(["start_app"]).catch(() => {});
    if (fault === "sigkill" && !env.broker.pid()) await env.broker.boot().catch(() => {});
    await purgeGatewayQueue(env, gwId);
  }
}

/** Deletes a finished gateway's queue (and any `extra` queues) on the private broker. */
async function purgeGatewayQueue(env: ChaosEnv, gwId: string, ...extra: string[]): Promise<void> {
  try {
    const c = new AMQPClient(env.broker.url());
    await c.connect();
    const ch = await c.channel();
    for (const q of [`${env.prefix}owsla.gw.${gwId}`, ...extra]) await ch.queueDelete(q).catch(() => {});
    await c.close();
  } catch {}
}

// ---------------------------------------------------------------------------------------------
// Item 7: resource alarm

/** Options for {@link resourceAlarm}. */
export interface AlarmOptions {
  load: LoadSpec;
  /** How long the alarm lasts, ms. */
  alarmMs: number;
  /** Commands queued before the alarm and released into the gateway queue during it. */
  queuedCommands: number;
  workers?: number;
  /** Allowed growth of the gateway's RSS during the alarm, MiB. */
  rssBudgetMiB?: number;
}

/**
 * RabbitMQ blocks publishers (memory alarm) while devices keep publishing. Commands published
 * before the alarm wait in a holding queue whose TTL dead-letters them into the gateway's queue
 * in the middle of the alarm (dead-lettering is internal to the broker, so the alarm does not
 * block it): the gateway must deliver them while its own publishing is blocked.
 */
export async function resourceAlarm(env: ChaosEnv, o: AlarmOptions): Promise<ScenarioResult> {
  const workers = o.workers ?? 2;
  const gwId = `gw-alarm-${rand()}`;
  const checks: Check[] = [];
  const numbers: Record<string, unknown> = { alarm_ms: o.alarmMs, devices: o.load.devices, msgs_per_s: Math.round((o.load.devices * 1000) / o.load.everyMs), workers };
  let gw: GatewayProcess | null = null;
  let devices: LoadDevice[] = [];
  let cmd: Commander | null = null;
  let alarmOn = false;
  const holding = `${env.prefix}hold.${gwId}`;
  const blockedCmd = new Commander(env.broker.url(), env.prefix, gwId, "during-alarm");
  try {
    gw = await startChaosGateway({ brokerUrl: env.broker.url(), prefix: env.prefix, gatewayId: gwId, workers });
    const g = gw;
    devices = loadDevices(g, gwId, o.load.devices, o.load.everyMs);
    await waitConnected(devices);
    cmd = new Commander(env.broker.url(), env.prefix, gwId).start(() => devices, o.load.cmdEveryMs);
    await Bun.sleep(o.load.warmupMs);
    const rssBase = rssMiB(g);
    numbers.rss_before_mib = rssBase;
    const before = tally(devices, env.backend, cmd);

    // Commands for the gateway, parked before the alarm; they expire into the gateway queue
    // about a third into the alarm.
    const releaseAfterMs = Math.max(2000, Math.floor(o.alarmMs / 3));
    const c = new AMQPClient(env.broker.url());
    await c.connect();
    const ch = await c.channel();
    await ch.confirmSelect();
    await ch.queueDeclare(holding, { durable: true }, {
      "x-message-ttl": releaseAfterMs + 1000,
      "x-dead-letter-exchange": `${env.prefix}owsla.down`,
      "x-dead-letter-routing-key": gwId,
    });
    const parked = new Map<string, string>();
    for (let i = 0; i < o.queuedCommands; i++) {
      const d = devices[i % devices.length]!;
      const id = `parked-${i}`;
      await ch.basicPublish("", holding, JSON.stringify({ id }), { headers: { device_id: d.deviceId, topic: "chaos" }, messageId: id, deliveryMode: 2 });
      parked.set(id, d.deviceId);
    }
    await c.close();
    for (const [id, dev] of parked) cmd.confirmed.set(id, dev);

    // --- the alarm
    const held = sampler(() => metric(g, "owsla_outbox_depth"), 250);
    const rss = sampler(() => rssMiB(g), 250);
    const upBefore = env.backend.received.length;
    const t0 = Date.now();
    await env.broker.setMemoryWatermark(0.0001);
    alarmOn = true;
    const ackedAt0 = devices.reduce((s, d) => s + d.acked.size, 0);
    // A back-end publishing during the alarm is blocked as well (its commands wait).
    const blockedSends = (async () => {
      let n = 0;
      while (alarmOn && n < 20) {
        const d = devices[n++ % devices.length]!;
        void blockedCmd.send(d.deviceId);
        await Bun.sleep(200);
      }
    })();
    let blockedLogged = false;
    try {
      await waitLog(g, "Broker blocks publishers", t0, 1, 10_000, false);
      blockedLogged = true;
    } catch {}
    check(checks, "gateway notices it is blocked", blockedLogged, blockedLogged ? `logged "Broker blocks publishers" ${allWorkersBy(logsSince(g, "Broker blocks publishers", t0), t0)} ms after the alarm` : "no 'Broker blocks publishers' line");
    // The parked commands reach the gateway queue mid-alarm and must reach the devices.
    const deadline = t0 + o.alarmMs;
    const parkedDelivered = () => {
      const byId = new Map(devices.map((d) => [d.deviceId, d]));
      let n = 0;
      for (const [id, dev] of parked) if (byId.get(dev)?.cmds.has(id)) n++;
      return n;
    };
    let deliveredAt = -1;
    while (Date.now() < deadline) {
      if (deliveredAt < 0 && parkedDelivered() === parked.size) deliveredAt = Date.now() - t0;
      await Bun.sleep(100);
    }
    const upDuring = env.backend.received.length - upBefore;
    const ackedDuring = devices.reduce((s, d) => s + d.acked.size, 0) - ackedAt0;
    const heldPeak = await held.stop();
    const rssPeak = await rss.stop();
    const blockedConfirmedDuring = blockedCmd.confirmed.size;
    numbers.parked_commands = parked.size;
    numbers.parked_delivered_during_alarm = parkedDelivered();
    numbers.parked_delivered_at_ms = deliveredAt;
    numbers.parked_released_at_ms = releaseAfterMs + 1000;
    numbers.backend_cmds_confirmed_during_alarm = blockedConfirmedDuring;
    numbers.upstream_msgs_during_alarm = upDuring;
    numbers.acked_during_alarm = ackedDuring;
    numbers.outbox_peak = heldPeak;
    numbers.rss_peak_mib = rssPeak;
    check(checks, "commands queued before the alarm are delivered during it", parkedDelivered() === parked.size, `${parkedDelivered()}/${parked.size} delivered to devices during the alarm (all by ${deliveredAt} ms; released into the gateway queue at ~${releaseAfterMs + 1000} ms)`);
    check(checks, "gateway stops publishing while blocked (messages go to the outbox)", heldPeak > 0, `outbox peaked at ${heldPeak} rows; ${upDuring} device messages reached the back-end during the alarm (in flight before the block)`);
    check(checks, "gateway memory bounded during the alarm", rssPeak - rssBase <= (o.rssBudgetMiB ?? 150), `RSS ${rssBase} MiB before, peak ${rssPeak} MiB (budget +${o.rssBudgetMiB ?? 150} MiB)`);
    numbers.refused_rate_limited_during = tally(devices, env.backend, cmd).refusedLimited - before.refusedLimited;

    // --- release
    const tRel = Date.now();
    await env.broker.setMemoryWatermark(0.4);
    alarmOn = false;
    await blockedSends;
    const drainMs = await waitOutboxEmpty(g, 120_000);
    numbers.outbox_drained_ms = drainMs >= 0 ? Date.now() - tRel : -1;
    check(checks, "outbox drains after the alarm", drainMs >= 0, `outbox empty ${numbers.outbox_drained_ms} ms after release`);
    await Bun.sleep(o.load.afterMs);
    for (const d of devices) d.pause();
    cmd.pause();
    // Commands the blocked back-end published during the alarm count too once confirmed.
    for (const [id, dev] of blockedCmd.confirmed) cmd.confirmed.set(id, dev);
    const settled = await waitSettled(devices, env.backend, cmd, 60_000);
    Object.assign(numbers, tallyNumbers(delta(settled.tally, before)));
    numbers.backend_cmds_blocked_then_confirmed = blockedCmd.confirmed.size - blockedConfirmedDuring;
    numbers.backend_cmd_attempts_during_alarm = blockedCmd.attempts;
    numbers.backend_cmds_refused_during_alarm = blockedCmd.failures;
    check(
      checks,
      "a back-end cannot publish commands during the alarm",
      blockedConfirmedDuring === 0,
      `${blockedCmd.attempts} publishes tried during the alarm: ${blockedConfirmedDuring} confirmed during it, ${blockedCmd.failures} refused by amqp-client ("Connection blocked by server"), ${blockedCmd.confirmed.size - blockedConfirmedDuring} confirmed after release — commands must be queued before an alarm to be delivered during it`,
      true,
    );
    numbers.recovered_s = r1((drainMs >= 0 ? (numbers.outbox_drained_ms as number) : 0) / 1000);
    check(checks, "no device-acked message lost", settled.tally.lost === 0, `${settled.tally.acked} acked, ${settled.tally.lost} missing ${settled.tally.lostSample.join(" ")}`);
    check(checks, "no broker-confirmed command lost", settled.tally.cmdsLost === 0, `${settled.tally.cmdsConfirmed} confirmed, ${settled.tally.cmdsLost} missing ${settled.tally.cmdsLostSample.join(" ")}`);
    numbers.worker_restarts = logsSince(g, "Worker exited").length;
    check(checks, "no worker crashed", numbers.worker_restarts === 0, `${numbers.worker_restarts} worker exits`);
    return result("alarm:memory", checks, numbers);
  } finally {
    if (alarmOn) await env.broker.setMemoryWatermark(0.4).catch(() => {});
    await Promise.all(devices.map((d) => d.stop()));
    await cmd?.stop();
    await blockedCmd.stop();
    if (gw) {
      await gw.stop().catch(() => {});
      rmSync(gw.dir, { recursive: true, force: true });
    }
    await purgeGatewayQueue(env, gwId, holding);
  }
}

// ---------------------------------------------------------------------------------------------
// Item 8: gateway kills

/**
 * Ends a round of kills: lets the load settle, then checks the database after every kill and
 * that nothing acked or confirmed was lost. Returns the integrity counts and the tally numbers.
 */
async function endKillRound(
  env: ChaosEnv,
  devices: LoadDevice[],
  cmd: Commander,
  before: Tally,
  integrityResults: string[],
  checks: Check[],
  afterMs: number,
): Promise<{ integrity: Record<string, number>; tally: Record<string, unknown> }> {
  await Bun.sleep(afterMs);
  for (const d of devices) d.pause();
  cmd.pause();
  const settled = await waitSettled(devices, env.backend, cmd, 60_000);
  const bad = integrityResults.filter((r) => r !== "ok");
  check(checks, "PRAGMA integrity_check ok after every kill", bad.length === 0, `${integrityResults.length - bad.length}/${integrityResults.length} ok ${bad.join("; ")}`);
  check(checks, "no device-acked message lost", settled.tally.lost === 0, `${settled.tally.acked} acked, ${settled.tally.lost} missing ${settled.tally.lostSample.join(" ")}`);
  check(checks, "no broker-confirmed command lost", settled.tally.cmdsLost === 0, `${settled.tally.cmdsConfirmed} confirmed, ${settled.tally.cmdsLost} missing ${settled.tally.cmdsLostSample.join(" ")}`);
  return { integrity: { integrity_ok: integrityResults.length - bad.length, integrity_failed: bad.length }, tally: tallyNumbers(delta(settled.tally, before)) };
}

/** Options for {@link gatewayKills}. */
export interface KillOptions {
  load: LoadSpec;
  /** SIGKILLs of the whole gateway (supervisor and workers at once). */
  wholeCycles: number;
  /** SIGKILLs of one worker process. */
  workerCycles: number;
  /** Load between two kills, ms. */
  cycleMs: number;
  workers?: number;
}

/** SIGKILL of the whole gateway and of single workers, under two-way load. */
export async function gatewayKills(env: ChaosEnv, o: KillOptions): Promise<ScenarioResult[]> {
  const workers = o.workers ?? 2;
  const gwId = `gw-kill-${rand()}`;
  let gw: GatewayProcess | null = null;
  let devices: LoadDevice[] = [];
  let cmd: Commander | null = null;
  const out: ScenarioResult[] = [];
  try {
    gw = await startChaosGateway({ brokerUrl: env.broker.url(), prefix: env.prefix, gatewayId: gwId, workers });
    const g = gw;
    devices = loadDevices(g, gwId, o.load.devices, o.load.everyMs);
    await waitConnected(devices);
    cmd = new Commander(env.broker.url(), env.prefix, gwId).start(() => devices, o.load.cmdEveryMs);
    await Bun.sleep(o.load.warmupMs);

    // --- whole gateway
    {
      const checks: Check[] = [];
      const before = tally(devices, env.backend, cmd);
      const integrityResults: string[] = [];
      const restartMs: number[] = [];
      const t0 = Date.now();
      for (let i = 0; i < o.wholeCycles; i++) {
        await Bun.sleep(o.cycleMs);
        await g.kill();
        integrityResults.push(integrity(g.dir));
        const ts = Date.now();
        await g.start();
        restartMs.push(Date.now() - ts);
      }
      const end = await endKillRound(env, devices, cmd, before, integrityResults, checks, o.load.afterMs);
      const numbers: Record<string, unknown> = {
        cycles: o.wholeCycles,
        devices: o.load.devices,
        msgs_per_s: Math.round((o.load.devices * 1000) / o.load.everyMs),
        workers,
        duration_s: r1((Date.now() - t0) / 1000),
        restart_to_ready_ms_avg: Math.round(restartMs.reduce((a, b) => a + b, 0) / Math.max(1, restartMs.length)),
        restart_to_ready_ms_max: Math.max(0, ...restartMs),
        ...end.integrity,
        device_reconnects: devices.reduce((s, d) => s + d.connects, 0) - devices.length,
        recovered_s: r1(Math.max(0, ...restartMs) / 1000),
        ...end.tally,
      };
      out.push(result("kill:whole-gateway", checks, numbers));
      for (const d of devices) d.resume();
      cmd.resume();
    }

    // --- single workers
    {
      const checks: Check[] = [];
      const before = tally(devices, env.backend, cmd);
      const integrityResults: string[] = [];
      const backMs: number[] = [];
      const t0 = Date.now();
      let notRestarted = 0;
      for (let i = 0; i < o.workerCycles; i++) {
        await Bun.sleep(o.cycleMs);
        const pids = g.workerPids();
        const victim = pids[i % pids.length];
        if (!victim) {
          notRestarted++;
          continue;
        }
        const tk = Date.now();
        process.kill(victim, "SIGKILL");
        // Back = a new worker process is ready and has its broker link.
        let ok = false;
        const deadline = tk + 20_000;
        while (Date.now() < deadline) {
          const now = g.workerPids();
          if (now.length === pids.length && !now.includes(victim) && logsSince(g, "Broker link up", tk).length >= 1 && logsSince(g, "Worker ready", tk).length >= 1) {
            ok = true;
            break;
          }
          await Bun.sleep(25);
        }
        if (!ok) notRestarted++;
        backMs.push(Date.now() - tk);
        integrityResults.push(integrity(g.dir));
      }
      const alive = g.proc.exitCode === null;
      check(checks, "supervisor restarts every killed worker", notRestarted === 0 && alive, `${o.workerCycles - notRestarted}/${o.workerCycles} restarted; gateway ${alive ? "running" : `exited ${g.proc.exitCode}`}`);
      const end = await endKillRound(env, devices, cmd, before, integrityResults, checks, o.load.afterMs);
      const numbers: Record<string, unknown> = {
        cycles: o.workerCycles,
        devices: o.load.devices,
        msgs_per_s: Math.round((o.load.devices * 1000) / o.load.everyMs),
        workers,
        duration_s: r1((Date.now() - t0) / 1000),
        worker_back_ms_avg: Math.round(backMs.reduce((a, b) => a + b, 0) / Math.max(1, backMs.length)),
        worker_back_ms_max: Math.max(0, ...backMs),
        not_restarted: notRestarted,
        ...end.integrity,
        gateway_alive: g.proc.exitCode === null,
        recovered_s: r1(Math.max(0, ...backMs) / 1000),
        ...end.tally,
      };
      out.push(result("kill:single-worker", checks, numbers));
    }
    return out;
  } finally {
    await Promise.all(devices.map((d) => d.stop()));
    await cmd?.stop();
    if (gw) {
      await gw.stop().catch(() => {});
      rmSync(gw.dir, { recursive: true, force: true });
    }
    await purgeGatewayQueue(env, gwId);
  }
}

// ---------------------------------------------------------------------------------------------
// Item 9: disk trouble

/** Why the disk scenarios cannot run here, or null. */
export function diskUnavailable(): string | null {
  if (process.getuid?.() !== 0) return "not root (mount needs CAP_SYS_ADMIN)";
  const dir = mkdtempSync(join(tmpdir(), "owsla-mnt-probe-"));
  try {
    const r = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir], { stderr: "pipe" });
    if (r.exitCode !== 0) return `mount failed: ${r.stderr.toString().trim()}`;
    Bun.spawnSync(["umount", dir]);
    return null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function run(cmd: string[]): string {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed (${r.exitCode}): ${r.stderr.toString().trim()}`);
  return r.stdout.toString();
}

/** Writes zeros into `file` until the file system is full; returns bytes written. */
export function fillDisk(file: string): number {
  const fd = openSync(file, "w");
  let total = 0;
  try {
    for (const size of [1 << 20, 64 << 10, 4 << 10, 512]) {
      const buf = new Uint8Array(size);
      for (;;) {
        try {
          total += writeSync(fd, buf);
        } catch {
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return total;
}

/** Options for the disk scenarios. */
export interface DiskOptions {
  load: LoadSpec;
  /** How long the disk stays full / read-only, ms. */
  faultMs: number;
  /** Padding per device message, bytes (fills the WAL faster). */
  padBytes?: number;
  workers?: number;
}

/**
 * A failing store must not flood the log (the batcher already limits itself to one line per
 * 30 s; a full log disk is the next outage): allow a few lines per worker per fault window.
 */
function checkLogRate(checks: Check[], g: GatewayProcess, t0: number, faultMs: number, workers: number): void {
  const lines = g.json().filter((l) => l.level === "error" && Date.parse(l.t) >= t0);
  const byMsg = new Map<string, number>();
  for (const l of lines) byMsg.set(String(l.msg).slice(0, 60), (byMsg.get(String(l.msg).slice(0, 60)) ?? 0) + 1);
  const limit = workers * (4 + Math.ceil(faultMs / 30_000) * 2);
  check(
    checks,
    "store errors do not flood the log",
    lines.length <= limit,
    `${lines.length} error lines in ~${Math.round((Date.now() - t0) / 1000)} s (limit ${limit}): ${[...byMsg].map(([m, n]) => `${n}x "${m}…"`).join(", ")}`,
  );
}

async function waitReady(gw: GatewayProcess, want: number, timeoutMs: number): Promise<{ ms: number; body: any }> {
  const start = Date.now();
  let last: any = null;
  while (Date.now() - start < timeoutMs) {
    try {
      const r = await api(gw, "/readyz", 3000);
      last = r.body;
      if (r.status === want) return { ms: Date.now() - start, body: r.body };
    } catch {}
    await Bun.sleep(100);
  }
  return { ms: -1, body: last };
}

/**
 * The data directory (a small tmpfs) fills up while the broker is unreachable: pubs that need
 * the outbox get `server_busy` instead of `ack`, /readyz says 503 with the store error, and
 * everything recovers once space is freed.
 */
export async function diskFull(env: ChaosEnv, o: DiskOptions): Promise<ScenarioResult> {
  const workers = o.workers ?? 2;
  const gwId = `gw-diskfull-${rand()}`;
  const checks: Check[] = [];
  const numbers: Record<string, unknown> = { fault_ms: o.faultMs, devices: o.load.devices, msgs_per_s: Math.round((o.load.devices * 1000) / o.load.everyMs), workers, data_dir: "tmpfs size=8m" };
  const mnt = mkdtempSync(join(tmpdir(), "owsla-diskfull-"));
  run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt]);
  const proxy = new BrokerProxy(env.broker.port).up();
  let gw: GatewayProcess | null = null;
  let devices: LoadDevice[] = [];
  const fill = join(mnt, "fill.bin");
  try {
    // No free-space floor: these scenarios are about the store failing under the gateway (an
    // 8 MiB tmpfs is always under the default store.min_free_bytes; tests/store-limits.test.ts
    // covers the limits).
    gw = await startChaosGateway({ brokerUrl: proxy.url(), prefix: env.prefix, gatewayId: gwId, workers, dir: mnt, args: ["--store-min-free-bytes", "0"] });
    const g = gw;
    devices = loadDevices(g, gwId, o.load.devices, o.load.everyMs, o.padBytes ?? 0);
    await waitConnected(devices);
    await Bun.sleep(o.load.warmupMs);
    const before = tally(devices, env.backend);
    const r0 = await api(g, "/readyz");
    check(checks, "ready before the fault", r0.status === 200, `GET /readyz ${r0.status}`);

    // The disk fills while the broker is up: messages are acked on the broker's confirm and
    // need no outbox, so acks go on.
    numbers.fill_bytes = fillDisk(fill);
    const ackedUp0 = devices.reduce((s, d) => s + d.acked.size, 0);
    await Bun.sleep(2000);
    const ackedBrokerUp = devices.reduce((s, d) => s + d.acked.size, 0) - ackedUp0;
    numbers.acks_full_disk_broker_up_2s = ackedBrokerUp;
    numbers.readyz_full_disk_broker_up = (await api(g, "/readyz")).status;
    check(checks, "full disk, broker up: messages acked on broker confirm", ackedBrokerUp > 0, `${ackedBrokerUp} acks in 2 s with a full disk (readyz ${numbers.readyz_full_disk_broker_up}: nothing had to be written yet)`);
    // Now the broker goes away too: every pub needs the outbox, which cannot grow.
    const t0 = Date.now();
    proxy.down();
    await waitLog(g, "Broker link down", t0 - 100, workers, 10_000);
    const ackedAt = new Map(devices.map((d) => [d, d.acked.size]));
    const busyAt = new Map(devices.map((d) => [d, d.busy.size]));
    const notReady = await waitReady(g, 503, 30_000);
    if (notReady.ms >= 0) notReady.ms = Date.now() - t0;
    numbers.readyz_503_after_ms = notReady.ms;
    numbers.readyz_body = notReady.body;
    const storeErr = String(notReady.body?.store ?? "");
    check(checks, "GET /readyz says 503 with the store error", notReady.ms >= 0 && storeErr !== "ok" && storeErr.length > 0, `503 after ${notReady.ms} ms, store: ${storeErr}`);
    const logged = logsSince(g, "Store write failed", t0);
    numbers.store_error_log = logged[0]?.err ?? logged[0]?.msg ?? null;
    check(checks, "a clear store error is logged", logged.length > 0, logged.length ? `"${logged[0]!.msg}" (${JSON.stringify(logged[0]!.err ?? "").slice(0, 120)})` : "no 'Store write failed' line");
    // Let the full disk last; note what devices are told meanwhile.
    const tBusy = Date.now();
    const ackedBusyStart = devices.reduce((s, d) => s + d.acked.size, 0);
    const busyStart = devices.reduce((s, d) => s + d.busy.size, 0);
    const left = t0 + o.faultMs - Date.now();
    if (left > 0) await Bun.sleep(left);
    const ackedWhileFull = devices.reduce((s, d) => s + d.acked.size, 0) - ackedBusyStart;
    const busyWhileFull = devices.reduce((s, d) => s + d.busy.size, 0) - busyStart;
    numbers.full_window_ms = Date.now() - tBusy;
    numbers.acks_while_full = ackedWhileFull;
    numbers.server_busy_while_full = busyWhileFull;
    numbers.acks_after_fill_before_readyz = devices.reduce((s, d) => s + d.acked.size - ackedAt.get(d)!, 0) - ackedWhileFull;
    numbers.server_busy_total_during_fault = devices.reduce((s, d) => s + d.busy.size - busyAt.get(d)!, 0);
    checkLogRate(checks, g, t0, o.faultMs, workers);
    check(checks, "full disk + broker down: pubs get server_busy, not ack", busyWhileFull > 0 && ackedWhileFull === 0, `${busyWhileFull} server_busy and ${ackedWhileFull} acks while the store was failing`);

    // --- space returns
    rmSync(fill, { force: true });
    const tFree = Date.now();
    const ready = await waitReady(g, 200, 30_000);
    numbers.readyz_200_after_free_ms = ready.ms;
    check(checks, "readyz 200 again after space is freed", ready.ms >= 0, `200 after ${ready.ms} ms`);
    const ackedFree = devices.reduce((s, d) => s + d.acked.size, 0);
    let acksResumeMs = -1;
    while (Date.now() - tFree < 20_000) {
      if (devices.reduce((s, d) => s + d.acked.size, 0) > ackedFree + devices.length) {
        acksResumeMs = Date.now() - tFree;
        break;
      }
      await Bun.sleep(50);
    }
    numbers.acks_resume_after_free_ms = acksResumeMs;
    check(checks, "acks resume (from the outbox) after space is freed", acksResumeMs >= 0, `acks flowing again ${acksResumeMs} ms after the fill file was deleted (broker still down)`);
    await Bun.sleep(1000);
    proxy.up();
    const drainMs = await waitOutboxEmpty(g, 60_000);
    numbers.outbox_drained_after_broker_ms = drainMs;
    await Bun.sleep(o.load.afterMs);
    for (const d of devices) d.pause();
    const settled = await waitSettled(devices, env.backend, undefined, 30_000);
    Object.assign(numbers, tallyNumbers(delta(settled.tally, before)));
    numbers.recovered_s = r1(Math.max(ready.ms, acksResumeMs) / 1000);
    check(checks, "never a false ack: every acked message reaches the back-end", settled.tally.lost === 0, `${settled.tally.acked} acked, ${settled.tally.lost} missing ${settled.tally.lostSample.join(" ")}`);
    numbers.worker_restarts = logsSince(g, "Worker exited").length;
    check(checks, "no worker crashed", numbers.worker_restarts === 0, `${numbers.worker_restarts} worker exits`);
    return result("disk:full", checks, numbers);
  } finally {
    await Promise.all(devices.map((d) => d.stop()));
    rmSync(fill, { force: true });
    if (gw) await gw.stop().catch(() => {});
    proxy.down();
    Bun.spawnSync(["umount", "-l", mnt]);
    rmSync(mnt, { recursive: true, force: true });
    await purgeGatewayQueue(env, gwId);
  }
}

/**
 * The data directory's file system turns read-only under the running gateway (ext4 on a loop
 * device, mounted errors=remount-ro, then an injected fs error, which is how a failing disk
 * behaves). A live tmpfs cannot be remounted read-only while the gateway has files open for
 * writing (EBUSY). Pubs that need the outbox get server_busy, /readyz says 503; an aborted ext4
 * journal cannot be remounted read-write, so recovery is the operator's: stop, fsck, mount,
 * start — readyz 200 and acks again, and the outbox drains.
 */
export async function diskReadOnly(env: ChaosEnv, o: DiskOptions): Promise<ScenarioResult> {
  const workers = o.workers ?? 2;
  const gwId = `gw-diskro-${rand()}`;
  const checks: Check[] = [];
  const numbers: Record<string, unknown> = { fault_ms: o.faultMs, devices: o.load.devices, msgs_per_s: Math.round((o.load.devices * 1000) / o.load.everyMs), workers, data_dir: "ext4 on loop (64 MiB), errors=remount-ro, fs error injected via /sys/fs/ext4/<dev>/trigger_fs_error" };
  const base = mkdtempSync(join(tmpdir(), "owsla-diskro-"));
  const img = join(base, "fs.img");
  const mnt = join(base, "data");
  mkdirSync(mnt);
  run(["truncate", "-s", "64M", img]);
  run(["mkfs.ext4", "-q", "-F", img]);
  const mount = () => run(["mount", "-o", "loop,errors=remount-ro", img, mnt]);
  mount();
  const proxy = new BrokerProxy(env.broker.port).up();
  let gw: GatewayProcess | null = null;
  let devices: LoadDevice[] = [];
  try {
    // No free-space floor: these scenarios are about the store failing under the gateway (an
    // 8 MiB tmpfs is always under the default store.min_free_bytes; tests/store-limits.test.ts
    // covers the limits).
    gw = await startChaosGateway({ brokerUrl: proxy.url(), prefix: env.prefix, gatewayId: gwId, workers, dir: mnt, args: ["--store-min-free-bytes", "0"] });
    const g = gw;
    devices = loadDevices(g, gwId, o.load.devices, o.load.everyMs, o.padBytes ?? 0);
    await waitConnected(devices);
    await Bun.sleep(o.load.warmupMs);
    const before = tally(devices, env.backend);
    // A gateway that has run for a while has its files (site secret, schema) on disk; an fs
    // that aborts seconds after the first start would lose even those (they are not fsynced).
    run(["sync", "-f", mnt]);
    proxy.down();
    await waitLog(g, "Broker link down", Date.now() - 1000, workers, 10_000);
    // Some rows in the outbox before the fault (acked from there).
    await Bun.sleep(1000);
    const dev = run(["findmnt", "-n", "-o", "SOURCE", mnt]).trim().split("/").at(-1)!;
    const t0 = Date.now();
    const ackedBefore = devices.reduce((s, d) => s + d.acked.size, 0);
    run(["sh", "-c", `echo 1 > /sys/fs/ext4/${dev}/trigger_fs_error`]);
    const notReady = await waitReady(g, 503, 30_000);
    if (notReady.ms >= 0) notReady.ms = Date.now() - t0;
    numbers.readyz_503_after_ms = notReady.ms;
    numbers.readyz_body = notReady.body;
    const storeErr = String(notReady.body?.store ?? "");
    check(checks, "GET /readyz says 503 with the store error", notReady.ms >= 0 && storeErr !== "ok" && storeErr.length > 0, `503 after ${notReady.ms} ms, store: ${storeErr}`);
    const logged = logsSince(g, "Store write failed", t0);
    numbers.store_error_log = logged[0]?.err ?? null;
    check(checks, "a clear store error is logged", logged.length > 0, logged.length ? `"${logged[0]!.msg}" (${JSON.stringify(logged[0]!.err ?? "").slice(0, 120)})` : "no 'Store write failed' line");
    const ackedStart = devices.reduce((s, d) => s + d.acked.size, 0);
    const busyStart = devices.reduce((s, d) => s + d.busy.size, 0);
    const left = t0 + o.faultMs - Date.now();
    if (left > 0) await Bun.sleep(left);
    const ackedRo = devices.reduce((s, d) => s + d.acked.size, 0) - ackedStart;
    const busyRo = devices.reduce((s, d) => s + d.busy.size, 0) - busyStart;
    numbers.acks_while_read_only = ackedRo;
    numbers.server_busy_while_read_only = busyRo;
    numbers.acks_between_fault_and_readyz = ackedStart - ackedBefore;
    numbers.error_log_lines_during_fault = g.json().filter((l) => l.level === "error" && Date.parse(l.t) >= t0).length;
    checkLogRate(checks, g, t0, o.faultMs, workers);
    check(checks, "read-only store + broker down: pubs get server_busy, not ack", busyRo > 0 && ackedRo === 0, `${busyRo} server_busy and ${ackedRo} acks while read-only`);

    // --- operator recovery: stop, fsck, mount, start
    const tFix = Date.now();
    for (const d of devices) d.pause();
    numbers.gateway_exited_during_fault = g.proc.exitCode;
    numbers.errors_during_fault = [...new Set(g.json().filter((l) => l.level === "error" && Date.parse(l.t) >= t0).map((l) => `${l.worker}: ${l.msg} ${JSON.stringify(l.err ?? "")}`.slice(0, 200)))].slice(0, 8);
    const stopCode = await g.stop().catch(() => -1);
    numbers.gateway_stop = { code: stopCode, ms: Date.now() - tFix };
    Bun.spawnSync(["umount", mnt]);
    const fsck = Bun.spawnSync(["e2fsck", "-fy", img], { stdout: "pipe", stderr: "pipe" });
    numbers.fsck_exit = fsck.exitCode;
    mount();
    numbers.recovery_steps_ms = Date.now() - tFix;
    numbers.integrity_after_fsck = integrity(mnt);
    check(checks, "database intact after the read-only episode", numbers.integrity_after_fsck === "ok", `PRAGMA integrity_check: ${numbers.integrity_after_fsck}`);
    await g.start(false);
    for (const d of devices) d.resume();
    const ready = await waitReady(g, 200, 30_000);
    numbers.readyz_200_after_restart_ms = ready.ms;
    check(checks, "readyz 200 again after recovery", ready.ms >= 0, `200 ${ready.ms} ms after the restart`);
    const ackedFix = devices.reduce((s, d) => s + d.acked.size, 0);
    let acksResumeMs = -1;
    while (Date.now() - tFix < 30_000) {
      if (devices.reduce((s, d) => s + d.acked.size, 0) > ackedFix + devices.length) {
        acksResumeMs = Date.now() - tFix;
        break;
      }
      await Bun.sleep(50);
    }
    numbers.acks_resume_after_recovery_ms = acksResumeMs;
    check(checks, "acks resume after recovery", acksResumeMs >= 0, `acks flowing ${acksResumeMs} ms after the operator started recovery (stop, fsck, mount, start)`);
    proxy.up();
    const drainMs = await waitOutboxEmpty(g, 60_000);
    numbers.outbox_drained_after_broker_ms = drainMs;
    await Bun.sleep(o.load.afterMs);
    for (const d of devices) d.pause();
    const settled = await waitSettled(devices, env.backend, undefined, 30_000);
    const t = delta(settled.tally, before);
    Object.assign(numbers, tallyNumbers(t));
    numbers.recovered_s = r1(acksResumeMs / 1000);
    // Acked from the outbox before the fs failed, but not yet written back to the device:
    // lost with the aborted journal (synchronous=NORMAL does not fsync each commit).
    check(checks, "never a false ack while read-only", ackedRo === 0, `${ackedRo} acks while the store was read-only`);
    numbers.lost_acked_before_fault = settled.tally.lost;
    check(
      checks,
      "outbox rows acked before the fs failure survive it",
      settled.tally.lost === 0,
      `${settled.tally.lost} of ${settled.tally.acked} acked messages missing ${settled.tally.lostSample.slice(0, 3).join(" ")}: outbox commits not yet written back by the kernel die with the aborted journal (store is WAL + synchronous=NORMAL: crash-safe for the process, not for the OS or the disk)`,
      true,
    );
    return result("disk:read-only", checks, numbers);
  } finally {
    await Promise.all(devices.map((d) => d.stop()));
    if (gw) await gw.stop().catch(() => {});
    proxy.down();
    Bun.spawnSync(["umount", "-l", mnt]);
    rmSync(base, { recursive: true, force: true });
    await purgeGatewayQueue(env, gwId);
  }
}
