/**
 * What `owsla load` reads from /proc: resident memory of processes, the gateway's process
 * tree (from its supervisor pid, or from who has its database open), and kernel memory
 * (slab, TCP socket buffers). Linux only; every reader returns null or [] when /proc is
 * unreadable instead of throwing.
 */
import { CLOCK_TICKS, cpuTicks } from "../supervisor/cpu-time.ts";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { resolve } from "node:path";

/** Resident memory of `pid` in bytes (VmRSS), or null when the process is gone. */
export function rssBytes(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

function allPids(): number[] {
  try {
    return readdirSync("/proc").filter((n) => /^\d+$/.test(n)).map(Number);
  } catch {
    return [];
  }
}

function parentOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 4, after the command name in parentheses (which may contain spaces).
    const after = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(after[1]);
  } catch {
    return null;
  }
}

/** `pid` and all its descendants (a supervisor and its workers). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const p of allPids()) {
    const pp = parentOf(p);
    if (pp === null) continue;
    if (!children.has(pp)) children.set(pp, []);
    children.get(pp)!.push(p);
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(children.get(p) ?? []));
  }
  return out;
}

/**
 * Processes that have `file` open (the gateway's supervisor and workers all hold
 * `<data>/owsla.db`). Reads every process's descriptor table: do it before the load starts.
 */
export function pidsHoldingFile(file: string): number[] {
  const want = resolve(file);
  const found: number[] = [];
  for (const p of allPids()) {
    if (p === process.pid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${p}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${p}/fd/${fd}`) === want) {
          found.push(p);
          break;
        }
      } catch {
        // closed meanwhile
      }
    }
  }
  return found;
}

/** Sum of VmRSS over `pids` that still exist, in bytes. */
export function totalRss(pids: number[]): number {
  let sum = 0;
  for (const p of pids) sum += rssBytes(p) ?? 0;
  return sum;
}

/** Kernel memory figures that grow with open sockets. */
export interface KernelMemory {
  /** Slab from /proc/meminfo, in bytes (socket and inode structures live there). */
  slabBytes: number;
  /** TCP socket buffer memory from /proc/net/sockstat (`mem`, pages), in bytes. */
  tcpBufferBytes: number;
  /** TCP sockets in use (both ends of a loopback connection count). */
  tcpInUse: number;
}

/** Reads {@link KernelMemory}; null when /proc is unreadable. */
export function kernelMemory(): KernelMemory | null {
  try {
    const meminfo = readFileSync("/proc/meminfo", "utf8");
    const slab = /^Slab:\s+(\d+) kB/m.exec(meminfo);
    const sockstat = readFileSync("/proc/net/sockstat", "utf8");
    const tcp = /^TCP: inuse (\d+) .*mem (\d+)/m.exec(sockstat);
    return {
      slabBytes: slab ? Number(slab[1]) * 1024 : 0,
      tcpBufferBytes: tcp ? Number(tcp[2]) * 4096 : 0,
      tcpInUse: tcp ? Number(tcp[1]) : 0,
    };
  } catch {
    return null;
  }
}

/** User + system CPU time of `pids` together, in seconds (processes that are gone count 0). */
export function totalCpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const p of pids) {
    const t = cpuTicks(p);
    if (Number.isFinite(t)) ticks += t;
  }
  return ticks / CLOCK_TICKS;
}
