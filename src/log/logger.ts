/**
 * Structured logging: JSON lines on stdout, or a readable line when stdout is a TTY. When stdout
 * is the journal (see journal.ts), every line starts with its syslog priority (`<3>` … `<7>`).
 */
import { isJournalStream, journalPrefix } from "./journal.ts";

/** Log levels in increasing severity. */
export type Level = "debug" | "info" | "warn" | "error";

const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Extra structured fields attached to a log line. */
export type Fields = Record<string, unknown>;

/** The logger every module receives as an argument (never imported as a global). */
export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: Fields): Logger;
  /** Whether `level` would be written; guards costly field building on hot paths. */
  enabled(level: Level): boolean;
}

/** Options for {@link createLogger}. */
export interface LoggerOptions {
  /** Lowest level written. Default `info`. */
  level?: Level;
  /** Human-readable lines instead of JSON. Default: whether stdout is a TTY. */
  pretty?: boolean;
  /** Where lines go. Default: process.stdout. */
  write?: (line: string) => void;
  /** Fields on every line (e.g. `{ worker: 0 }`). */
  base?: Fields;
  /**
   * Prefix each line with its syslog priority for journald (`<4>` for warn, ...). Default:
   * whether stdout is the journal stream named by `JOURNAL_STREAM`.
   */
  journal?: boolean;
}

/** A root logger: its level can change while running (reload), for it and all its children. */
export interface RootLogger extends Logger {
  /** Sets the lowest level written, from now on, by this logger and every child. */
  setLevel(level: Level): void;
}

/** Returns true for a valid level name. */
export function isLevel(s: string): s is Level {
  return s in RANK;
}

function render(v: unknown): unknown {
  if (v instanceof Error) return { name: v.name, message: v.message };
  return v;
}

/** Creates a logger. Lines are `{"t":ISO,"level":..,"msg":..,...fields}`. */
export function createLogger(opts: LoggerOptions = {}): RootLogger {
  let min = RANK[opts.level ?? "info"];
  const journal = opts.journal ?? isJournalStream(1, process.env.JOURNAL_STREAM);
  const pretty = opts.pretty ?? Boolean(process.stdout.isTTY);
  const write = opts.write ?? ((line: string) => void process.stdout.write(line + "\n"));
  const make = (base: Fields): Logger => {
    const emit = (level: Level, msg: string, fields?: Fields) => {
      if (RANK[level] < min) return;
      const all: Fields = { ...base, ...fields };
      for (const k in all) all[k] = render(all[k]);
      try {
        if (pretty) {
          const extra = Object.entries(all)
            .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
            .join(" ");
          write(`${journal ? journalPrefix(level) : ""}${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${msg}${extra ? " " + extra : ""}`);
        } else {
          write(`${journal ? journalPrefix(level) : ""}${JSON.stringify({ t: new Date().toISOString(), level, msg, ...all })}`);
        }
      } catch {
        // Logging must never take the process down (e.g. EPIPE or EMFILE on stdout).
      }
    };
    return {
      debug: (m, f) => emit("debug", m, f),
      info: (m, f) => emit("info", m, f),
      warn: (m, f) => emit("warn", m, f),
      error: (m, f) => emit("error", m, f),
      child: (f) => make({ ...base, ...f }),
      enabled: (l) => RANK[l] >= min,
    };
  };
  return Object.assign(make(opts.base ?? {}), {
    setLevel: (level: Level) => {
      min = RANK[level];
    },
  });
}

/** A logger that records lines in memory; for tests. */
export function memoryLogger(level: Level = "debug"): Logger & { lines: Fields[] } {
  const lines: Fields[] = [];
  const log = createLogger({ level, pretty: false, journal: false, write: (l) => lines.push(JSON.parse(l)) });
  return Object.assign(log, { lines });
}
