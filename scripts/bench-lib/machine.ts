/**
 * The machine a benchmark ran on, and how busy it was: CPU, memory, kernel, Bun, RabbitMQ and
 * amqp-client versions; a wait for a quiet CPU before heavy phases; and CPU seconds used during
 * a phase by the broker and by processes outside the benchmark (other users of a shared box).
 */
import { readdirSync, readFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { ROOT } from "../../tests/helpers/gateway.ts";

/** Static facts about the machine and software. */
export function machineInfo() {
  const rabbit = Bun.spawnSync(["rabbitmqctl", "version"], { stderr: "ignore" }).stdout.toString().trim().split("\n").at(-1) ?? "unknown";
  const amqp = JSON.parse(readFileSync(`${ROOT}/node_modules/@cloudamqp/amqp-client/package.json`, "utf8")).version as string;
  const read = (p: string) => {
    try {
      return readFileSync(p, "utf8").trim();
    } catch {
      return "unknown";
    }
  };
  return {
    cpu_model: cpus()[0]?.model ?? "unknown",
    cores: navigator.hardwareConcurrency,
    ram_gib: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: read("/proc/sys/kernel/osrelease"),
    os: /PRETTY_NAME="([^"]+)"/.exec(read("/etc/os-release"))?.[1] ?? "unknown",
    bun: Bun.version,
    rabbitmq: rabbit,
    amqp_client: amqp,
    fd_limit_per_process: Number(/Max open files\s+(\d+)/.exec(read("/proc/self/limits"))?.[1] ?? 0),
    ephemeral_ports: read("/proc/sys/net/ipv4/ip_local_port_range").replace(/\s+/g, "-"),
    somaxconn: Number(read("/proc/sys/net/core/somaxconn")),
    git_commit: Bun.spawnSync(["git", "rev-parse", "--short", "HEAD"], { cwd: ROOT }).stdout.toString().trim(),
  };
}

/** Cumulative busy and total CPU jiffies of the whole machine. */
function cpuJiffies(): { busy: number; total: number } {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.split(/\s+/).slice(1).map(Number);
  const idle = f[3]! + (f[4] ?? 0);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** Fraction of CPU that was idle over the last `ms` milliseconds. */
export async function idleFraction(ms: number): Promise<number> {
  const a = cpuJiffies();
  await Bun.sleep(ms);
  const b = cpuJiffies();
  return 1 - (b.busy - a.busy) / Math.max(1, b.total - a.total);
}

/**
 * Waits until the machine is at least `minIdle` idle over 5 s, for at most `maxWaitMs`.
 * Returns what was seen, so a result measured on a busy box says so.
 */
export async function waitForQuiet(minIdle: number, maxWaitMs: number, log: (s: string) => void) {
  const start = Date.now();
  let idle = await idleFraction(5000);
  while (idle < minIdle && Date.now() - start < maxWaitMs) {
    log(`machine ${(idle * 100).toFixed(0)}% idle (other processes are busy); waiting for ${(minIdle * 100).toFixed(0)}%`);
    idle = await idleFraction(5000);
  }
  return { idle_before: Math.round(idle * 100) / 100, waited_s: Math.round((Date.now() - start) / 1000), loadavg: readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ") };
}

interface ProcCpu {
  ppid: number;
  jiffies: number;
  comm: string;
}

function processCpu(): Map<number, ProcCpu> {
  const out = new Map<number, ProcCpu>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      const f = stat.slice(close + 2).split(" ");
      out.set(Number(name), { ppid: Number(f[1]), jiffies: Number(f[11]) + Number(f[12]), comm: stat.slice(stat.indexOf("(") + 1, close) });
    } catch {
      // exited
    }
  }
  return out;
}

/**
 * Measures CPU seconds used between `start()` and `stop()` by three groups: this benchmark
 * (descendants of this process), the broker (beam.smp processes), and everything else.
 * Processes are sampled every 2 s, so one that exits is counted up to its last sample.
 */
export function cpuAccounting() {
  const hz = 100;
  const first = processCpu();
  /** pid -> [jiffies at first sight, latest jiffies, group]. */
  const seen = new Map<number, { from: number; last: number; group: "bench" | "broker" | "other" }>();
  const sample = () => {
    const now = processCpu();
    const mine = new Set<number>([process.pid]);
    for (let changed = true; changed; ) {
      changed = false;
      for (const [pid, p] of now) if (!mine.has(pid) && mine.has(p.ppid)) (mine.add(pid), (changed = true));
    }
    for (const [pid, p] of now) {
      const e = seen.get(pid);
      if (e) e.last = p.jiffies;
      else seen.set(pid, { from: first.get(pid)?.jiffies ?? 0, last: p.jiffies, group: mine.has(pid) ? "bench" : p.comm.startsWith("beam") ? "broker" : "other" });
    }
  };
  sample();
  const timer = setInterval(sample, 2000);
  const t0 = performance.now();
  return {
    stop() {
      clearInterval(timer);
      sample();
      const sum = { bench: 0, broker: 0, other: 0 };
      for (const e of seen.values()) sum[e.group] += Math.max(0, e.last - e.from) / hz;
      const wallS = (performance.now() - t0) / 1000;
      const r = (x: number) => Math.round(x * 10) / 10;
      return { wall_s: r(wallS), cpu_s_benchmark: r(sum.bench), cpu_s_broker: r(sum.broker), cpu_s_other_processes: r(sum.other), cpu_s_available: r(wallS * navigator.hardwareConcurrency) };
    },
  };
}
