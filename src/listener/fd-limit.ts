/** Derives the per-process connection limit from the file-descriptor limit. */
import { readFileSync } from "node:fs";

/** Descriptors kept free for the database, the broker, logs and the API. */
export const FD_RESERVE = 256;

/** The soft RLIMIT_NOFILE of this process (from /proc), or `fallback` when unreadable. */
export function fdLimit(fallback = 1024): number {
  try {
    const m = /Max open files\s+(\d+|unlimited)/.exec(readFileSync("/proc/self/limits", "utf8"));
    if (!m) return fallback;
    return m[1] === "unlimited" ? 1 << 20 : Number(m[1]);
  } catch {
    return fallback;
  }
}

/** `configured` when non-zero, else the fd limit minus {@link FD_RESERVE}. */
export function maxConnections(configured: number): number {
  if (configured > 0) return configured;
  return Math.max(16, fdLimit() - FD_RESERVE);
}
