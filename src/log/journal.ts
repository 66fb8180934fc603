/**
 * journald detection and priorities. systemd sets `JOURNAL_STREAM=<dev>:<inode>` for a service
 * whose stdout or stderr is connected to the journal; a program compares it with the descriptor
 * it writes to (sd-daemon(3)). A line written there that starts with `<N>` is stored with
 * syslog priority N (journald's SyslogLevelPrefix, on by default), so `journalctl -p warning`
 * shows warnings and errors only.
 *
 * @module
 */
import { fstatSync } from "node:fs";
import type { Level } from "./logger.ts";

/** syslog priority of each log level: err, warning, info, debug. */
export const JOURNAL_PRIORITY: Readonly<Record<Level, number>> = { error: 3, warn: 4, info: 6, debug: 7 };

/**
 * Whether descriptor `fd` is the journal stream named by `journalStream` (the value of
 * `JOURNAL_STREAM`). False when the variable is unset or malformed, or `fd` cannot be read.
 */
export function isJournalStream(fd: number, journalStream: string | undefined): boolean {
  if (!journalStream) return false;
  const m = /^(\d+):(\d+)$/.exec(journalStream.trim());
  if (!m) return false;
  try {
    const st = fstatSync(fd, { bigint: true });
    return st.dev === BigInt(m[1]!) && st.ino === BigInt(m[2]!);
  } catch {
    return false;
  }
}

/** The `<N>` prefix journald reads as the line's priority. */
export function journalPrefix(level: Level): string {
  return `<${JOURNAL_PRIORITY[level]}>`;
}

/**
 * `text` as a line for stderr at `level`: with the priority prefix on every line when stderr is
 * the journal, so what is written before any logger exists (an invalid config, the API token
 * notice) still has its priority under `journalctl -p`.
 */
export function stderrLine(text: string, level: Level = "error", env: Record<string, string | undefined> = process.env): string {
  const prefix = isJournalStream(2, env.JOURNAL_STREAM) ? journalPrefix(level) : "";
  return text.split("\n").map((l) => prefix + l).join("\n");
}
