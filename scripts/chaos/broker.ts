/**
 * Issue 7, item 6 at full size: broker failures under load on a private RabbitMQ node.
 * Scenarios: stop_app/start_app; stop_app + `reset` during the outage (topology wiped);
 * SIGKILL of the broker VM + reboot; silent drop of the gateway-broker link for 10 s and 30 s,
 * once with the userspace blackhole proxy and once with real kernel packet drop (netns + veth;
 * skipped with a note when the machine does not allow it).
 *
 * Usage: node_modules/.bin/bun scripts/chaos/broker.ts [--only stop_app,stop_app_wipe,sigkill,blackhole,netns_drop]
 *          [--drops-s 10,30] [--outage-s 10] [--devices 50] [--every-ms 50] [--cmd-every-ms 10]
 *          [--workers 2] [--heartbeat-s 2]
 * Prints one JSON object; exit 0 when every check passed.
 */
import { netnsUnavailable } from "../../tests/helpers/blackhole-proxy.ts";
import { brokerFault, closeEnv, openEnv, type BrokerFault, type ChaosEnv, type ScenarioResult } from "../../tests/helpers/chaos-scenarios.ts";
import { commandLine, progress, runSuite } from "./lib.ts";

const DEFAULTS = {
  only: "stop_app,stop_app_wipe,sigkill,blackhole,netns_drop",
  drops_s: "10,30",
  outage_s: 10,
  devices: 50,
  every_ms: 50,
  cmd_every_ms: 10,
  workers: 2,
  heartbeat_s: 2,
  reconnect_max_ms: 2000,
  warmup_s: 3,
  after_s: 2,
};
const USAGE = `
Usage: node_modules/.bin/bun scripts/chaos/broker.ts [flags]
  --only LIST          scenarios: stop_app,stop_app_wipe,sigkill,blackhole,netns_drop (default all)
  --drops-s LIST       silent-drop durations in seconds (default 10,30)
  --outage-s N         stop_app / sigkill outage in seconds (default 10)
  --devices N          load devices (default 50)
  --every-ms N         each device publishes every N ms (default 50)
  --cmd-every-ms N     the back-end sends a command every N ms (default 10)
  --workers N          gateway workers (default 2)
  --heartbeat-s N      AMQP heartbeat (default 2)
  --reconnect-max-ms N reconnect backoff cap (default 2000)
`;

await runSuite("broker-failures", DEFAULTS, USAGE, async (o) => {
  const load = { devices: o.devices, everyMs: o.every_ms, cmdEveryMs: o.cmd_every_ms, warmupMs: o.warmup_s * 1000, afterMs: o.after_s * 1000 };
  const common = { heartbeatS: o.heartbeat_s, reconnectMaxMs: o.reconnect_max_ms, workers: o.workers };
  const base = ["--devices", String(o.devices), "--every-ms", String(o.every_ms), "--cmd-every-ms", String(o.cmd_every_ms), "--workers", String(o.workers)];
  const only = o.only.split(",").map((s) => s.trim()) as BrokerFault[];
  const drops = o.drops_s.split(",").map(Number);
  const results: ScenarioResult[] = [];
  let env: ChaosEnv | undefined;
  try {
    env = await openEnv("broker");
    const runOne = async (fault: BrokerFault, outageS: number, args: string[]) => {
      progress(`${fault} (${outageS} s) ...`);
      try {
        const r = await brokerFault(env!, fault, { ...common, load, outageMs: outageS * 1000 });
        r.scenario = `${r.scenario}:${outageS}s`;
        r.command = commandLine("scripts/chaos/broker.ts", [...args, ...base]);
        results.push(r);
      } catch (e) {
        results.push({ scenario: `broker:${fault}:${outageS}s`, ok: false, checks: [{ name: "scenario ran", ok: false, detail: (e as Error).stack ?? String(e) }], numbers: {} });
      }
    };
    for (const f of ["stop_app", "stop_app_wipe", "sigkill"] as const) {
      if (only.includes(f)) await runOne(f, o.outage_s, ["--only", f, "--outage-s", String(o.outage_s)]);
    }
    for (const f of ["blackhole", "netns_drop"] as const) {
      if (!only.includes(f)) continue;
      if (f === "netns_drop") {
        const why = netnsUnavailable();
        if (why) {
          results.push({ scenario: "broker:netns_drop", ok: true, checks: [{ name: "real packet drop available", ok: true, info: true, detail: `skipped: ${why}` }], numbers: { skipped: why } });
          continue;
        }
      }
      for (const s of drops) await runOne(f, s, ["--only", f, "--drops-s", String(s)]);
    }
  } finally {
    await closeEnv(env);
  }
  return results;
});
