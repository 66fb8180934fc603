/**
 * Issue 7, item 8 at full size: 20 SIGKILLs of the whole gateway (supervisor and workers at
 * once) and 20 SIGKILLs of single workers, under two-way load on a private RabbitMQ node.
 * Checks after each kill: PRAGMA integrity_check ok; at the end: no device-acked message and no
 * broker-confirmed command lost; every killed worker restarted by the supervisor.
 *
 * Usage: node_modules/.bin/bun scripts/chaos/kills.ts [--whole 20] [--worker 20] [--cycle-s 3]
 *          [--devices 50] [--every-ms 50] [--cmd-every-ms 10] [--workers 2]
 */
import { closeEnv, gatewayKills, openEnv, type ChaosEnv } from "../../tests/helpers/chaos-scenarios.ts";
import { commandLine, progress, runSuite } from "./lib.ts";

const DEFAULTS = { whole: 20, worker: 20, cycle_s: 3, devices: 50, every_ms: 50, cmd_every_ms: 10, workers: 2, warmup_s: 3, after_s: 2 };
const USAGE = `
Usage: node_modules/.bin/bun scripts/chaos/kills.ts [flags]
  --whole N          SIGKILLs of the whole gateway (default 20)
  --worker N         SIGKILLs of one worker (default 20)
  --cycle-s N        load between kills, seconds (default 3; keep worker kills under the
                     restart intensity of 5 per 10 s)
  --devices N        load devices (default 50)
  --every-ms N       each device publishes every N ms (default 50)
  --cmd-every-ms N   the back-end sends a command every N ms (default 10)
  --workers N        gateway workers (default 2)
`;

await runSuite("gateway-kills", DEFAULTS, USAGE, async (o) => {
  let env: ChaosEnv | undefined;
  try {
    env = await openEnv("kills");
    progress(`${o.whole} whole-gateway kills, then ${o.worker} worker kills ...`);
    const rs = await gatewayKills(env, {
      load: { devices: o.devices, everyMs: o.every_ms, cmdEveryMs: o.cmd_every_ms, warmupMs: o.warmup_s * 1000, afterMs: o.after_s * 1000 },
      wholeCycles: o.whole,
      workerCycles: o.worker,
      cycleMs: o.cycle_s * 1000,
      workers: o.workers,
    });
    const base = ["--cycle-s", String(o.cycle_s), "--devices", String(o.devices), "--every-ms", String(o.every_ms)];
    rs[0]!.command = commandLine("scripts/chaos/kills.ts", ["--whole", String(o.whole), "--worker", "0", ...base]);
    if (rs[1]) rs[1].command = commandLine("scripts/chaos/kills.ts", ["--whole", "0", "--worker", String(o.worker), ...base]);
    return rs;
  } finally {
    await closeEnv(env);
  }
});
