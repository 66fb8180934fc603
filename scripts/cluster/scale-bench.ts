/**
 * Many buildings, measured: a 3-node RabbitMQ cluster of our own, `--gateways` gateways (ids
 * gw-01.., separate process trees, every node in broker.url, quorum queues) with `--devices`
 * simulated devices each (`owsla load`, one process tree per gateway), and one back-end
 * (`owsla load --backend`) that learns devices from presence events and sends commands to
 * devices on every gateway. Reads the cluster (per-node VM memory and CPU, connections,
 * channels, queues) idle, with the gateways connected, with all devices connected, and over a
 * message window, and prints a JSON report: per gateway and per message what the cluster pays.
 *
 *   bun scripts/cluster/scale-bench.ts [--gateways 20] [--devices 2000]
 *     [--msg-rate 50] [--cmd-rate 100] [--duration 60] [--ramp 30] [--nodes 3]
 *
 * --msg-rate is per gateway (device messages per second), --cmd-rate for the whole site.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { BrokerCluster } from "../../tests/helpers/broker-cluster.ts";
import { GatewayProcess, removeDir } from "../../tests/helpers/gateway.ts";
import { loadArgv, spawnJson, startBackend, stopAll } from "../bench-lib/procs.ts";
import { readCluster, totals, type ClusterReading } from "./broker-costs.ts";

const { values: v } = parseArgs({
  options: {
    gateways: { type: "string", default: "20" },
    devices: { type: "string", default: "2000" },
    "msg-rate": { type: "string", default: "50" },
    "cmd-rate": { type: "string", default: "100" },
    duration: { type: "string", default: "60" },
    ramp: { type: "string", default: "30" },
    nodes: { type: "string", default: "3" },
  },
});
const G = Number(v.gateways);
const D = Number(v.devices);
const MSG = Number(v["msg-rate"]);
const CMD = Number(v["cmd-rate"]);
const DURATION = Number(v.duration);
const RAMP = Number(v.ramp);
const PREFIX = "bench.";

const t0 = Date.now();
const say = (s: string) => console.error(`[${((Date.now() - t0) / 1000).toFixed(0)}s] ${s}`);
const mb = (b: number) => Math.round(b / 1e5) / 10;

say(`starting a ${v.nodes}-node cluster`);
const cluster = await BrokerCluster.start(Number(v.nodes), "scale");
const gateways: GatewayProcess[] = [];
const readings: Record<string, ClusterReading> = {};
try {
  const urls = cluster.urls();
  await Bun.sleep(10_000); // the nodes settle after boot
  readings.idle = await readCluster(cluster);
  say(`cluster idle: ${mb(totals(readings.idle).rssBytes)} MB`);

  // Gateways, five at a time (each start waits for its broker links).
  for (let i = 1; i <= G; i += 5) {
    const batch = [];
    for (let j = i; j < Math.min(i + 5, G + 1); j++) {
      const id = `gw-${String(j).padStart(2, "0")}`;
      const gw = new GatewayProcess(mkdtempSync(join(tmpdir(), `owsla-scale-${id}-`)), id, PREFIX, 21000 + j, ["--workers", "1", "--broker", urls, "--device-flood-threshold", "1000000"], {});
      gateways.push(gw);
      batch.push(gw.start(true, 120_000));
    }
    await Promise.all(batch);
  }
  // Every gateway queue exists (declared on whichever node answered).
  for (let i = 0; i < 120; i++) {
    const qs = (await readCluster(cluster)).queues.filter((q) => q.name.startsWith(`${PREFIX}owsla.gw.`));
    if (qs.length >= G) break;
    await Bun.sleep(1000);
  }
  await Bun.sleep(5000);
  readings.gatewaysA = await readCluster(cluster);
  await Bun.sleep(10_000);
  readings.gatewaysB = await readCluster(cluster);
  say(`${G} gateways connected: ${readings.gatewaysB.connections} connections, ${readings.gatewaysB.channels} channels, ${readings.gatewaysB.queues.length} queues`);

  const backend = await startBackend(["--broker", cluster.nodes[0]!.url(), "--prefix", PREFIX, "--cmd-rate", String(CMD), "--no-reply", "--duration", String(RAMP + DURATION + 60)]);
  const loads = gateways.map((gw, i) =>
    spawnJson(
      loadArgv([
        "--devices", String(D), "--port", String(gw.port), "--data", gw.dir, "--id-prefix", `${gw.gatewayId}-`,
        "--host-base", `127.${10 + i}.0.1`, "--ramp", String(RAMP), "--msg-rate", String(MSG), "--duration", String(RAMP + DURATION), "--settle", "5", "--quiet",
      ]),
      { timeoutMs: (RAMP + DURATION + 300) * 1000 },
    ),
  );
  // All devices connect during the ramp; messages start once each load process has all welcomed.
  await Bun.sleep((RAMP + 15) * 1000);
  readings.devices = await readCluster(cluster);
  say(`${G * D} devices connected: cluster ${mb(totals(readings.devices).rssBytes)} MB`);
  const windowS = Math.max(10, DURATION - 25);
  readings.msgA = await readCluster(cluster);
  await Bun.sleep(windowS * 1000);
  readings.msgB = await readCluster(cluster);
  say("message window measured; waiting for the load processes");
  const summaries = await Promise.all(loads.map((l) => l.result.catch((e: Error) => ({ error: e.message }))));
  const back = await backend.stop();

  const tot = (k: string) => totals(readings[k]!);
  const gwCpuPerS = (tot("gatewaysB").cpuS - tot("gatewaysA").cpuS) / ((readings.gatewaysB!.at - readings.gatewaysA!.at) / 1000);
  const msgWindowS = (readings.msgB!.at - readings.msgA!.at) / 1000;
  const upPerS = summaries.reduce((n, s: any) => n + (s.messages?.acked_per_s ?? 0), 0);
  // The back-end sends commands at --cmd-rate once it knows devices; each is answered by a
  // door.ack device message: 2 broker messages per command besides the device messages.
  const cmdPerS = CMD;
  const brokerMsgsPerS = upPerS + 2 * cmdPerS;
  const presence = 2 * G * D; // connect + disconnect events
  const report = {
    options: v,
    cluster_nodes: readings.idle!.nodes.map((n) => n.node),
    readings: Object.fromEntries(Object.entries(readings).map(([k, r]) => [k, { connections: r.connections, channels: r.channels, queues: r.queues.length, rss_mb: mb(totals(r).rssBytes), erlang_mb: mb(totals(r).erlangBytes), cpu_s: Math.round(totals(r).cpuS * 10) / 10, queue_memory_mb: mb(totals(r).queueMemory) }])),
    per_gateway: {
      connections: (readings.gatewaysB!.connections - readings.idle!.connections) / G,
      channels: (readings.gatewaysB!.channels - readings.idle!.channels) / G,
      queues: (readings.gatewaysB!.queues.length - readings.idle!.queues.length) / G,
      cluster_rss_mb: mb((tot("gatewaysB").rssBytes - tot("idle").rssBytes) / G),
      cluster_erlang_mb: mb((tot("gatewaysB").erlangBytes - tot("idle").erlangBytes) / G),
      // CPU of the whole cluster with the gateways connected and no devices, divided by the gateways.
      cluster_cpu_ms_per_s_idle: Math.round((gwCpuPerS / G) * 1000 * 10) / 10,
    },
    devices_connected: {
      cluster_rss_mb_delta: mb(tot("devices").rssBytes - tot("gatewaysB").rssBytes),
      cluster_erlang_mb_delta: mb(tot("devices").erlangBytes - tot("gatewaysB").erlangBytes),
      presence_events: presence / 2,
    },
    message_window: {
      seconds: Math.round(msgWindowS),
      device_messages_per_s: upPerS,
      commands_per_s: cmdPerS,
      cluster_cpu_s_per_s: Math.round(((tot("msgB").cpuS - tot("msgA").cpuS) / msgWindowS) * 100) / 100,
      broker_messages_per_s: brokerMsgsPerS,
      cluster_cpu_us_per_message: brokerMsgsPerS > 0 ? Math.round((((tot("msgB").cpuS - tot("msgA").cpuS) / msgWindowS - gwCpuPerS) / brokerMsgsPerS) * 1e6) : null,
      cluster_rss_mb: mb(tot("msgB").rssBytes),
      cluster_erlang_mb: mb(tot("msgB").erlangBytes),
      per_node: readings.msgB!.nodes.map((n, i) => ({ node: n.node, rss_mb: mb(n.rssBytes), erlang_mb: mb(n.erlangBytes), cpu_s_per_s: Math.round(((n.cpuS - readings.msgA!.nodes[i]!.cpuS) / msgWindowS) * 100) / 100 })),
    },
    loads: summaries.map((s: any, i) => ({ gateway: gateways[i]!.gatewayId, welcomed: s.welcomes_total, held: s.connections_held, acked_per_s: s.messages?.acked_per_s, cmds_received: s.messages?.cmds_received, errors: s.errors ?? s.error })),
    backend: back,
  };
  console.log(JSON.stringify(report, null, 1));
} finally {
  for (const gw of gateways) {
    await Promise.race([gw.stop(), Bun.sleep(30_000)]).catch(() => {});
    removeDir(gw.dir);
  }
  await stopAll();
  await cluster.stop();
}
