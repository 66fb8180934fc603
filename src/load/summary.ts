/**
 * The JSON summary `owsla load` prints on stdout at the end: held connections, welcome rate,
 * errors by kind, latency percentiles from the merged histograms, gateway and kernel memory.
 */
import { mergeAll } from "./histogram.ts";
import { DEVICES_PER_ADDRESS, type LoadOptions } from "./options.ts";
import type { KernelMemory } from "./procfs.ts";
import { backendSummary } from "./report.ts";
import { sumClientCounters, type BackendFinal, type ClientCounters, type ClientFinal } from "./stats.ts";

/** A moment of the run at which memory was sampled. */
export interface Snapshot {
  /** Wall-clock ms. */
  at: number;
  connected: number;
  gatewayRss: number | null;
  /** User + system CPU time of the gateway's processes so far, in s. */
  gatewayCpuS: number | null;
  /** Gateway processes found (supervisor and workers). */
  gatewayProcesses: number;
  kernel: KernelMemory | null;
}

/** Everything the coordinator observed, from which the summary is built. */
export interface RunFacts {
  opts: LoadOptions;
  goAt: number;
  endAt: number;
  /** When every device had been welcomed once (wall-clock ms), or null. */
  allWelcomedAt: number | null;
  peakWelcomesPerS: number;
  /** Most devices connected at once, from the one-second reports. */
  peakConnected: number;
  before: Snapshot;
  /** Taken `settle` seconds after all were welcomed (or when messages started regardless). */
  held: Snapshot | null;
  end: Snapshot;
  gatewayRssPeak: number | null;
  /** Gateway processes at the held snapshot (or at start). */
  gatewayPids: number;
  /** Counters summed when messages started, and when they started (wall-clock ms). */
  msgStart: { at: number; counters: ClientCounters } | null;
  clients: ClientFinal[];
  backend: BackendFinal | null;
  problems: string[];
}

const r1 = (x: number) => Math.round(x * 10) / 10;

/** Builds the summary object (stable field names; documented in docs/benchmarks.md). */
export function buildSummary(f: RunFacts) {
  const { opts } = f;
  const total = sumClientCounters(f.clients.map((c) => c.counters));
  const h = (k: keyof ClientFinal["histograms"]) => mergeAll(f.clients.map((c) => c.histograms[k])).summary();
  const timeToAll = f.allWelcomedAt !== null ? f.allWelcomedAt - f.goAt : null;
  const msgPhaseS = f.msgStart ? (f.endAt - f.msgStart.at) / 1000 : 0;
  const m0 = f.msgStart?.counters;
  const perS = (n: number) => (msgPhaseS > 0 ? Math.round(n / msgPhaseS) : 0);
  const held = f.held;
  // Only meaningful while the gateway was alive at the snapshot (RSS 0: its processes were gone).
  const userPerConn =
    held && held.gatewayRss && f.before.gatewayRss && held.connected > 0 ? Math.round((held.gatewayRss - f.before.gatewayRss) / held.connected) : null;
  const cpuUs = (from: Snapshot | null | undefined, to: Snapshot | null | undefined, events: number) =>
    from?.gatewayCpuS != null && to?.gatewayCpuS != null && events > 0 ? r1(((to.gatewayCpuS - from.gatewayCpuS) * 1e6) / events) : null;
  const welcomesAtHeld = m0 ? m0.welcomes : total.welcomes;
  const phaseMessages = m0 ? total.pubs - m0.pubs + (total.cmds - m0.cmds) : 0;
  const kernelPerConn = held?.kernel && f.before.kernel && held.connected > 0 ? Math.round((held.kernel.slabBytes - f.before.kernel.slabBytes) / held.connected) : null;
  return {
    tool: "owsla load",
    devices: opts.devices,
    processes: opts.processes,
    duration_s: r1((f.endAt - f.goAt) / 1000),
    options: {
      connect_rate: opts.connectRate || "unlimited",
      window_per_process: opts.window,
      auth: opts.auth,
      msg_rate: opts.msgRate,
      inflight_per_device: opts.inflight,
      payload_bytes: opts.payload,
      port: opts.port,
      destinations: opts.host ? opts.host : `from ${opts.hostBase}, one address per ${DEVICES_PER_ADDRESS} devices of a process`,
    },
    connections_held: total.connected,
    connections_held_at_snapshot: held?.connected ?? null,
    connections_held_peak: f.peakConnected,
    all_welcomed: f.allWelcomedAt !== null,
    time_to_all_welcomed_ms: timeToAll !== null ? Math.round(timeToAll) : null,
    welcomes_per_s: timeToAll !== null && timeToAll > 0 ? Math.round(opts.devices / (timeToAll / 1000)) : null,
    peak_welcomes_per_s: f.peakWelcomesPerS,
    lost_devices: opts.devices - total.connected,
    never_welcomed: opts.devices - total.everWelcomed,
    connection_attempts: total.attempts,
    retries: total.retries,
    welcomes_total: total.welcomes,
    errors: total.errors,
    messages: {
      phase_s: r1(msgPhaseS),
      sent: m0 ? total.pubs - m0.pubs : total.pubs,
      acked: m0 ? total.acks - m0.acks : total.acks,
      sent_per_s: m0 ? perS(total.pubs - m0.pubs) : 0,
      acked_per_s: m0 ? perS(total.acks - m0.acks) : 0,
      rpc_replies: total.replies,
      cmds_received: total.cmds,
      door_acks_sent: total.doorAcks,
      pings: total.pings,
      unacked_at_end: total.outstanding,
    },
    latency_ms: {
      handshake: h("handshake"),
      time_to_welcome: h("timeToWelcome"),
      pub_ack: h("pubAck"),
      round_trip_pub_reply: h("roundTrip"),
      cmd_delivery: h("cmdDelivery"),
    },
    backend: f.backend ? backendSummary(f.backend, msgPhaseS) : null,
    gateway:
      f.before.gatewayRss === null
        ? null
        : {
            processes: f.gatewayPids,
            rss_bytes: { before: f.before.gatewayRss, held: held?.gatewayRss ?? null, end: f.end.gatewayRss, peak: f.gatewayRssPeak },
            user_bytes_per_connection: userPerConn,
            cpu_s: { before: f.before.gatewayCpuS, held: held?.gatewayCpuS ?? null, end: f.end.gatewayCpuS },
            /** Gateway CPU (all its processes) from the start to the held snapshot ÷ welcomes in that time. */
            cpu_us_per_welcome: cpuUs(f.before, held, welcomesAtHeld),
            /** Gateway CPU during the message phase ÷ (device pubs + commands the devices received). */
            cpu_us_per_message: cpuUs(held, f.end, phaseMessages),
          },
    kernel:
      f.before.kernel === null
        ? null
        : {
            note: "machine-wide; on one box both ends of every connection are counted",
            slab_bytes: { before: f.before.kernel.slabBytes, held: held?.kernel?.slabBytes ?? null, end: f.end.kernel?.slabBytes ?? null },
            slab_bytes_per_connection: kernelPerConn,
            tcp_buffer_bytes: { before: f.before.kernel.tcpBufferBytes, held: held?.kernel?.tcpBufferBytes ?? null },
            tcp_sockets_in_use: { before: f.before.kernel.tcpInUse, held: held?.kernel?.tcpInUse ?? null },
          },
    load_processes_rss_bytes: f.clients.reduce((s, c) => s + c.rssBytes, 0),
    /** The simulators' own event-loop lag: large values mean latencies above include the load tool's delay. */
    load_processes_event_loop_lag_ms: h("loopLag"),
    problems: f.problems,
  };
}

/** The summary's type. */
export type LoadSummary = ReturnType<typeof buildSummary>;
