/**
 * The worker's end of the supervisor IPC channel (see supervisor.ts).
 *
 * Answers pings, reports readiness, and turns every way the supervisor can ask for an end —
 * a `{t:"shutdown"}` message, SIGTERM, or the channel closing because the supervisor died —
 * into one call of `onShutdown`. Under a supervisor, SIGINT is ignored: Ctrl-C in a terminal
 * reaches the whole process group, and the supervisor decides how its workers stop.
 *
 * Exceptions thrown by `onShutdown` or `onMessage` are not caught: a worker that fails crashes,
 * and its supervisor restarts it.
 */

import type { Logger } from "../log/logger.ts";
import { protocolTag, type Pong, type Ready } from "./protocol.ts";

/** Options for {@link connectToSupervisor}. */
export interface WorkerLinkOptions {
  /** Called once when the worker should stop: shutdown message, SIGTERM, or supervisor gone. */
  onShutdown: () => void;
  /** Called with every message from the supervisor that is not a protocol message. Optional. */
  onMessage?: (msg: unknown) => void;
  /** Logger for link events (lost supervisor, signals). Optional; default: silent. */
  log?: Logger;
}

/** A worker's link to its supervisor. */
export interface WorkerLink {
  /** Sends a message to the supervisor; dropped silently when not connected. */
  send(msg: unknown): void;
  /** Tells the supervisor this worker is listening (`{t:"ready"}`). */
  ready(): void;
  /** Whether the IPC channel to a supervisor is open. False when run without a supervisor. */
  readonly connected: boolean;
  /** Removes the link's listeners and closes the channel so the process can exit; onShutdown is not called. */
  close(): void;
}

/**
 * Connects to the supervisor over the IPC channel Bun opened for this process. Without one
 * (the worker was started by hand) the link is inert: `connected` is false, sends are dropped,
 * and no signal handlers are installed.
 */
export function connectToSupervisor(opts: WorkerLinkOptions): WorkerLink {
  const supervised = typeof process.send === "function";
  let closed = !supervised;
  let shutdownCalled = false;

  const send = (msg: unknown) => {
    if (closed || !process.connected) return;
    try {
      process.send!(msg);
    } catch {
      // Channel closing; the disconnect event follows.
    }
  };

  const shutdown = (why: string) => {
    if (shutdownCalled) return;
    shutdownCalled = true;
    opts.log?.info("Shutting down at the supervisor's request", { why });
    opts.onShutdown();
  };

  const onMessage = (msg: unknown) => {
    switch (protocolTag(msg)) {
      case "ping":
        send({ t: "pong", n: (msg as { n: number }).n } satisfies Pong);
        return;
      case "shutdown":
        shutdown("shutdown_message");
        return;
      case undefined:
        opts.onMessage?.(msg);
        return;
      default:
        return; // a reserved tag that only flows the other way
    }
  };
  const onDisconnect = () => {
    if (closed) return;
    closed = true;
    opts.log?.warn("IPC channel to the supervisor closed (supervisor gone); shutting down to avoid an orphan worker");
    shutdown("supervisor_gone");
  };
  const onSigterm = () => shutdown("SIGTERM");
  const onSigint = () => opts.log?.debug("Ignoring SIGINT: the supervisor decides when workers stop");

  if (supervised) {
    process.on("message", onMessage);
    process.on("disconnect", onDisconnect);
    process.on("SIGTERM", onSigterm);
    process.on("SIGINT", onSigint);
    // Spawned with IPC but the channel is already gone: the supervisor died while we started.
    if (!process.connected) setTimeout(onDisconnect, 0);
  }

  return {
    send,
    ready: () => send({ t: "ready" } satisfies Ready),
    get connected() {
      return !closed && process.connected === true;
    },
    close: () => {
      if (!supervised) return;
      closed = true;
      process.off("message", onMessage);
      process.off("disconnect", onDisconnect);
      process.off("SIGTERM", onSigterm);
      // The supervisor sends SIGTERM along with the shutdown message: one arriving after the
      // graceful stop must not kill the exiting worker by the default action.
      process.on("SIGTERM", () => {});
      process.off("SIGINT", onSigint);
      try {
        if (process.connected) process.disconnect?.();
      } catch {
        // already closed
      }
    },
  };
}
