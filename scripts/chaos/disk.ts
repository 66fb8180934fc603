/**
 * Issue 7, item 9 at full size: the data directory fills up (8 MiB tmpfs) or turns read-only
 * (ext4 on a loop device, errors=remount-ro, injected fs error) under the running gateway while
 * the broker is unreachable. Checks: server_busy instead of ack (never a false ack), a clear
 * log line, GET /readyz 503 with the store error, recovery (readyz 200, acks resume) when space
 * returns / after fsck, nothing acked lost. Needs root.
 *
 * Usage: node_modules/.bin/bun scripts/chaos/disk.ts [--only full,read_only] [--fault-s 30]
 *          [--devices 50] [--every-ms 50] [--pad-bytes 1000] [--workers 2]
 */
import { closeEnv, diskFull, diskReadOnly, diskUnavailable, openEnv, type ChaosEnv, type ScenarioResult } from "../../tests/helpers/chaos-scenarios.ts";
import { commandLine, progress, runSuite } from "./lib.ts";

const DEFAULTS = { only: "full,read_only", fault_s: 30, devices: 50, every_ms: 50, pad_bytes: 1000, workers: 2, warmup_s: 3, after_s: 2 };
const USAGE = `
Usage: node_modules/.bin/bun scripts/chaos/disk.ts [flags]
  --only LIST      full,read_only (default both)
  --fault-s N      how long the disk stays full / read-only (default 30)
  --devices N      load devices (default 50)
  --every-ms N     each device publishes every N ms (default 50)
  --pad-bytes N    padding per message, to fill the WAL faster (default 1000)
  --workers N      gateway workers (default 2)
`;

await runSuite("disk-trouble", DEFAULTS, USAGE, async (o) => {
  const why = diskUnavailable();
  if (why) return [{ scenario: "disk", ok: true, checks: [{ name: "mounts possible", ok: true, info: true, detail: `skipped: ${why}` }], numbers: { skipped: why } }];
  const only = o.only.split(",").map((s) => s.trim());
  const load = { devices: o.devices, everyMs: o.every_ms, cmdEveryMs: 1000, warmupMs: o.warmup_s * 1000, afterMs: o.after_s * 1000 };
  const base = ["--fault-s", String(o.fault_s), "--devices", String(o.devices), "--every-ms", String(o.every_ms)];
  const results: ScenarioResult[] = [];
  let env: ChaosEnv | undefined;
  try {
    env = await openEnv("disk");
    for (const kind of ["full", "read_only"]) {
      if (!only.includes(kind)) continue;
      progress(`disk ${kind} for ${o.fault_s} s ...`);
      try {
        const opts = { load, faultMs: o.fault_s * 1000, padBytes: o.pad_bytes, workers: o.workers };
        const r = kind === "full" ? await diskFull(env, opts) : await diskReadOnly(env, opts);
        r.scenario = `${r.scenario}:${o.fault_s}s`;
        r.command = commandLine("scripts/chaos/disk.ts", ["--only", kind, ...base]);
        results.push(r);
      } catch (e) {
        results.push({ scenario: `disk:${kind}`, ok: false, checks: [{ name: "scenario ran", ok: false, detail: (e as Error).stack ?? String(e) }], numbers: {} });
      }
    }
  } finally {
    await closeEnv(env);
  }
  return results;
});
