/** CPU time of a process from /proc, for telling a busy worker from a hung one. */
import { readFileSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on Linux). */
export const CLOCK_TICKS = 100;

/** User + system CPU time of `pid` in clock ticks, or NaN when it cannot be read. */
export function cpuTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(f[11]) + Number(f[12]);
  } catch {
    return Number.NaN;
  }
}

/** CPU ticks (NaN when unreadable) and scheduler state (R running, S sleeping, D disk wait, T stopped, ...) of `pid`. */
export function cpuState(pid: number): { ticks: number; state: string } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { ticks: Number(f[11]) + Number(f[12]), state: f[0] ?? "?" };
  } catch {
    return { ticks: Number.NaN, state: "?" };
  }
}
