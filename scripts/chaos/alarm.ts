/**
 * Issue 7, item 7 at full size: a RabbitMQ memory alarm (set_vm_memory_high_watermark 0.0001,
 * later 0.4) blocks every publisher on a private node for 60 s while devices keep publishing.
 * Commands published before the alarm are parked in a TTL queue that dead-letters them into
 * the gateway queue a third into the alarm (the broker's internal dead-lettering is not
 * blocked; a back-end's own publishes are), so they must reach devices while the gateway's
 * publishing is blocked. Checks: publishing held in the outbox, RSS bounded, parked commands
 * delivered during the alarm, nothing lost after release.
 *
 * Usage: node_modules/.bin/bun scripts/chaos/alarm.ts [--alarm-s 60] [--devices 50] [--every-ms 50]
 *          [--cmd-every-ms 10] [--queued-commands 1000] [--workers 2] [--rss-budget-mib 150]
 */
import { closeEnv, openEnv, resourceAlarm, type ChaosEnv } from "../../tests/helpers/chaos-scenarios.ts";
import { commandLine, progress, runSuite } from "./lib.ts";

const DEFAULTS = { alarm_s: 60, devices: 50, every_ms: 50, cmd_every_ms: 10, queued_commands: 1000, workers: 2, rss_budget_mib: 150, warmup_s: 3, after_s: 2 };
const USAGE = `
Usage: node_modules/.bin/bun scripts/chaos/alarm.ts [flags]
  --alarm-s N            alarm duration (default 60)
  --devices N            load devices (default 50)
  --every-ms N           each device publishes every N ms (default 50)
  --cmd-every-ms N       the back-end commands every N ms before/after the alarm (default 10)
  --queued-commands N    commands parked before the alarm (default 1000)
  --workers N            gateway workers (default 2)
  --rss-budget-mib N     allowed RSS growth of the gateway during the alarm (default 150)
`;

await runSuite("resource-alarm", DEFAULTS, USAGE, async (o) => {
  let env: ChaosEnv | undefined;
  try {
    env = await openEnv("alarm");
    progress(`memory alarm for ${o.alarm_s} s ...`);
    const r = await resourceAlarm(env, {
      load: { devices: o.devices, everyMs: o.every_ms, cmdEveryMs: o.cmd_every_ms, warmupMs: o.warmup_s * 1000, afterMs: o.after_s * 1000 },
      alarmMs: o.alarm_s * 1000,
      queuedCommands: o.queued_commands,
      workers: o.workers,
      rssBudgetMiB: o.rss_budget_mib,
    });
    r.scenario = `${r.scenario}:${o.alarm_s}s`;
    r.command = commandLine("scripts/chaos/alarm.ts", ["--alarm-s", String(o.alarm_s), "--devices", String(o.devices), "--every-ms", String(o.every_ms)]);
    return [r];
  } finally {
    await closeEnv(env);
  }
});
