/** The supervisor's options, its view of each worker, and its interface (see supervisor.ts). */
import type { Logger } from "../log/logger.ts";

/** Options for {@link startSupervisor}. All are required unless marked optional. */
export interface SupervisorOptions {
  /** Number of workers (integer ≥ 1). */
  count: number;
  /** Argv to spawn for a worker; called at every (re)start, e.g. `[process.execPath, "main.ts", "worker", "--worker-id", "0"]`. */
  command: (workerId: number) => string[];
  /** Extra environment for workers, merged over `process.env`. Default: none. */
  env?: Record<string, string>;
  /** Environment for one worker (e.g. its id), merged over `env`. Optional. */
  workerEnv?: (workerId: number) => Record<string, string>;
  /** Restart intensity: more than `maxRestarts` restarts (of all workers together) within `periodMs` → give up. */
  maxRestarts: number;
  /** Window of the restart intensity, in ms. */
  periodMs: number;
  /** Interval between pings to each worker, in ms. */
  heartbeatMs: number;
  /** A worker silent (no pong) for this long is SIGKILLed and restarted, in ms. Must exceed `heartbeatMs`. */
  hangTimeoutMs: number;
  /** Silence allowed to a worker whose CPU time keeps growing (busy), in ms. Default: `hangTimeoutMs` (no grace). */
  busyTimeoutMs?: number;
  /** On stop, time between shutdown + SIGTERM and SIGKILL, in ms. */
  shutdownDeadlineMs: number;
  /** Logger; lines about one worker carry a `worker` field. */
  log: Logger;
  /** Called with every IPC message from a worker that is not a supervisor protocol message. Optional. */
  onMessage?: (workerId: number, msg: unknown) => void;
  /** Called after a worker process exited (before any restart). Optional. */
  onWorkerExit?: (workerId: number, code: number | null, signal: string | null) => void;
}

/** One row of {@link Supervisor.workers}. */
export interface WorkerInfo {
  /** Stable worker id, 0..count-1. */
  id: number;
  /** Pid of the current (or last) process; 0 if never spawned. */
  pid: number;
  /** How many times this worker has been restarted. */
  restarts: number;
  /** When the current process was spawned (ms since epoch). */
  startedAt: number;
  /** Whether a process is running for this worker. */
  up: boolean;
  /** Whether the current process has reported `ready`. */
  ready: boolean;
  /** When the last pong arrived (ms since epoch); 0 before the first pong of this process. */
  lastPongAt: number;
}

/** A running supervisor. */
export interface Supervisor {
  /** Sends an IPC message to one worker; false when it is not up or the send failed. */
  send(workerId: number, msg: unknown): boolean;
  /** Sends an IPC message to every worker that is up. */
  broadcast(msg: unknown): void;
  /** A snapshot of every worker. */
  workers(): WorkerInfo[];
  /** Resolves when every worker has reported ready at once; rejects if the supervisor stops first. */
  whenAllReady(): Promise<void>;
  /** Stops all workers gracefully; resolves when all have exited. Idempotent. */
  stop(reason: string): Promise<void>;
  /** Resolves once the supervisor has stopped: code 0 after stop(), 1 when restart intensity was exceeded. */
  done: Promise<{ code: number; reason: string }>;
}

/** Checks the options; throws a clear error naming the bad one. */
export function validate(o: SupervisorOptions): void {
  const bad = (msg: string) => {
    throw new Error(`Invalid supervisor options: ${msg}`);
  };
  if (!Number.isInteger(o.count) || o.count < 1) bad(`count ${o.count} must be an integer of at least 1`);
  if (!Number.isInteger(o.maxRestarts) || o.maxRestarts < 0) bad(`maxRestarts ${o.maxRestarts} must be an integer of at least 0`);
  for (const k of ["periodMs", "heartbeatMs", "hangTimeoutMs"] as const) {
    if (!(o[k] > 0)) bad(`${k} ${o[k]} must be a positive number of milliseconds`);
  }
  if (!(o.shutdownDeadlineMs >= 0)) bad(`shutdownDeadlineMs ${o.shutdownDeadlineMs} must be 0 or more milliseconds`);
  if (o.hangTimeoutMs <= o.heartbeatMs) bad(`hangTimeoutMs ${o.hangTimeoutMs} must exceed heartbeatMs ${o.heartbeatMs}`);
  if (typeof o.command !== "function") bad("command must be a function returning the argv for a worker id");
}
