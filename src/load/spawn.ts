/**
 * Starts child processes of `owsla load` from the same program: the compiled binary runs
 * `owsla load --child <role>`, the sources run this module's entry file directly.
 */
import type { Subprocess } from "bun";
import { resolve } from "node:path";

/** The argv that starts a child of `role` ("client" or "backend"). */
export function childCommand(role: "client" | "backend"): string[] {
  const compiled = Bun.main.startsWith("/$bunfs");
  return compiled
    ? [process.execPath, "load", "--child", role]
    : [process.execPath, resolve(import.meta.dir, "command.ts"), "--child", role];
}

/** A child process with a JSON IPC channel; `onMessage` gets everything it sends. */
export function spawnChild(role: "client" | "backend", onMessage: (m: unknown) => void, onExit: (code: number | null) => void): Subprocess {
  return Bun.spawn(childCommand(role), {
    stdin: "ignore",
    stdout: "inherit",
    stderr: "inherit",
    serialization: "json",
    ipc: (m) => onMessage(m),
    onExit: (_p, code) => onExit(code),
  });
}
