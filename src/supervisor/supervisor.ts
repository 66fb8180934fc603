/**
 * Supervisor for the gateway's worker processes (OTP `one_for_one`, all children `permanent`).
 *
 * The gateway runs as one small supervisor process and N worker processes of the same program.
 * Every worker listens on the device port with SO_REUSEPORT, so the kernel spreads connections
 * over the workers and the supervisor never touches device traffic. The supervisor only starts
 * workers, watches them, restarts them, and stops them; it holds no gateway state, so there is
 * little in it that can fail.
 *
 * ```
 *             ┌────────────────────────────────────────┐
 *             │ supervisor (one_for_one, permanent)    │
 *             │ heartbeat timer, exit events,          │
 *             │ one restart window for all workers     │
 *             └───┬──────────────┬──────────────┬──────┘
 *   ping,         │ ▲            │ ▲            │ ▲    pong,
 *   shutdown,     ▼ │            ▼ │            ▼ │    ready,
 *   SIGTERM/KILL ┌──────────┐  ┌──────────┐  ┌──────────┐  app messages
 *                │ worker 0 │  │ worker 1 │  │worker N-1│  same program, stable ids
 *                └────┬─────┘  └────┬─────┘  └────┬─────┘
 *                     └─────────────┼─────────────┘
 *                       device port (SO_REUSEPORT)
 *
 *   worker exits ──► restarts within periodMs ≤ maxRestarts? ──yes──► respawn, same id
 *   (not stopping)                  │ no
 *                                   ▼
 *                   stop all workers; done → { code: 1, reason }
 * ```
 *
 * Semantics:
 * - one_for_one: a worker that exits for any reason (crash, signal, even exit code 0) while the
 *   supervisor is running is restarted at once, alone, with the same worker id. The others are
 *   not touched.
 * - Hangs: every `heartbeatMs` the supervisor sends `{t:"ping",n}`; a worker that has not answered
 *   with a pong for `hangTimeoutMs` (counted from its start until the first pong) is SIGKILLed,
 *   which is then an exit like any other and so a restart — unless it is busy: a silent worker
 *   whose CPU time grew since the last heartbeat is making progress under load and gets up to
 *   `busyTimeoutMs` of silence. A blocked or stopped worker uses no CPU and is killed at
 *   `hangTimeoutMs`; a worker spinning forever is killed at `busyTimeoutMs`. So load alone does
 *   not kill workers or trip the restart intensity.
 * - Restart intensity: restarts of all workers are counted in a sliding window of `periodMs`.
 *   The restart that would be number `maxRestarts + 1` in the window is not made; instead the
 *   supervisor stops every worker and `done` resolves with code 1, with a log line naming the
 *   worker, the count and the period. A crash loop thus ends the gateway instead of spinning.
 * - Stop: `stop()` sends `{t:"shutdown"}` and SIGTERM to every worker, SIGKILLs whatever is alive
 *   after `shutdownDeadlineMs`, and resolves `done` with code 0 once all have exited.
 * - Supervisor death: workers watch the IPC channel (see worker-link.ts); when it closes they
 *   shut down, so a killed supervisor leaves no orphan workers.
 * - Every callback and timer in the supervisor is guarded: an exception is logged, never thrown.
 */

import type { Subprocess } from "bun";
import type { Logger } from "../log/logger.ts";
import { protocolTag, type Ping, type Shutdown } from "./protocol.ts";
import { createRestartIntensity } from "./restart-intensity.ts";
import { judge, type LivenessState } from "./liveness.ts";
import { validate, type Supervisor, type SupervisorOptions, type WorkerInfo } from "./options.ts";

export type { Supervisor, SupervisorOptions, WorkerInfo };

/** How long to wait before retrying a spawn that threw (e.g. out of descriptors). */
const SPAWN_RETRY_MS = 100;
/** After the shutdown deadline's SIGKILL, how long to wait for exits before resolving `done` anyway. */
const REAP_GRACE_MS = 2000;

/** A supervised worker: what the API shows of it, its liveness check's state, and the process. */
interface Child extends WorkerInfo, LivenessState {
  log: Logger;
  proc: Subprocess | null;
  /** Bumped at every spawn; events from an older process are ignored. */
  gen: number;
  pingN: number;
  killedForHang: boolean;
  /** Whether this silence was reported as busy. */
  busyLogged: boolean;
  retry: ReturnType<typeof setTimeout> | null;
}

/** Starts `count` workers and supervises them until stop() or until restart intensity is exceeded. */
export function startSupervisor(opts: SupervisorOptions): Supervisor {
  validate(opts);
  const log = opts.log;
  const busyTimeoutMs = Math.max(opts.hangTimeoutMs, opts.busyTimeoutMs ?? opts.hangTimeoutMs);
  const env = { ...process.env, ...opts.env };
  const intensity = createRestartIntensity(opts.periodMs);
  let state: "running" | "stopping" | "stopped" = "running";
  let result = { code: 0, reason: "" };
  let resolveDone!: (r: { code: number; reason: string }) => void;
  const done = new Promise<{ code: number; reason: string }>((r) => (resolveDone = r));
  let stopPromise: Promise<void> | null = null;
  let deadlineTimer: ReturnType<typeof setTimeout> | null = null;
  let reapTimer: ReturnType<typeof setTimeout> | null = null;
  const readyWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];

  /** Runs `fn`, logging instead of throwing: nothing a worker does may kill the supervisor. */
  const guard = (what: string, fn: () => void, l: Logger = log) => {
    try {
      fn();
    } catch (err) {
      l.error(`Supervisor caught an exception in ${what}; continuing`, { err });
    }
  };

  const children: Child[] = Array.from({ length: opts.count }, (_, id) => ({
    id,
    log: log.child({ worker: id }),
    proc: null,
    gen: 0,
    pid: 0,
    restarts: 0,
    startedAt: 0,
    up: false,
    ready: false,
    lastPongAt: 0,
    pingN: 0,
    killedForHang: false,
    cpuMark: null,
    busyLogged: false,
    deafMs: 0,
    retry: null,
  }));

  const trySend = (c: Child, msg: unknown): boolean => {
    if (!c.up || !c.proc) return false;
    try {
      c.proc.send(msg);
      return true;
    } catch {
      return false; // channel closed: the exit event follows
    }
  };

  const trySignal = (c: Child, signal: "SIGTERM" | "SIGKILL") => {
    try {
      c.proc?.kill(signal);
    } catch {
      // already gone
    }
  };

  const spawnChild = (c: Child) => {
    const gen = ++c.gen;
    c.ready = false;
    c.lastPongAt = 0;
    c.killedForHang = false;
    c.busyLogged = false;
    c.cpuMark = null;
    c.deafMs = 0;
    c.startedAt = Date.now();
    let proc: Subprocess;
    try {
      proc = Bun.spawn(opts.command(c.id), {
        env: opts.workerEnv ? { ...env, ...opts.workerEnv(c.id) } : env,
        stdin: "ignore",
        stdout: "inherit",
        stderr: "inherit",
        serialization: "json",
        ipc: (msg) => guard("a worker message handler", () => c.gen === gen && onChildMessage(c, msg), c.log),
        onExit: (_p, code, signal) =>
          guard("a worker exit handler", () => c.gen === gen && onChildExit(c, code, signal == null ? null : String(signal)), c.log),
      });
    } catch (err) {
      c.proc = null;
      c.up = false;
      c.log.error("Cannot spawn worker; will count it as a failed start and retry", { err, retryInMs: SPAWN_RETRY_MS });
      c.retry = setTimeout(() => {
        c.retry = null;
        guard("a spawn retry", () => c.gen === gen && onChildExit(c, null, null), c.log);
      }, SPAWN_RETRY_MS);
      return;
    }
    c.proc = proc;
    c.pid = proc.pid;
    c.up = true;
    c.log.info("Worker started", { pid: proc.pid, restarts: c.restarts });
  };

  const onChildMessage = (c: Child, msg: unknown) => {
    switch (protocolTag(msg)) {
      case "pong":
        c.lastPongAt = Date.now();
        c.deafMs = 0;
        c.cpuMark = null;
        if (c.busyLogged) c.log.info("Worker answers again after a busy spell", { pid: c.pid });
        c.busyLogged = false;
        return;
      case "ready":
        c.ready = true;
        c.log.info("Worker ready", { pid: c.pid });
        checkAllReady();
        return;
      default:
        if (opts.onMessage) guard("onMessage", () => opts.onMessage!(c.id, msg), c.log);
    }
  };

  const onChildExit = (c: Child, code: number | null, signal: string | null) => {
    const pid = c.pid;
    const uptimeMs = Date.now() - c.startedAt;
    c.proc = null;
    c.up = false;
    c.ready = false;
    if (opts.onWorkerExit) guard("onWorkerExit", () => opts.onWorkerExit!(c.id, code, signal), c.log);
    if (state !== "running") {
      c.log.info("Worker stopped", { pid, code, signal });
      maybeFinish();
      return;
    }
    c.log.warn("Worker exited; restarting it", { pid, code, signal, uptimeMs, hung: c.killedForHang });
    const restarts = intensity.record(Date.now());
    if (restarts > opts.maxRestarts) {
      const seconds = opts.periodMs / 1000;
      const reason =
        `Restart intensity exceeded: worker ${c.id} exited (code ${code}, signal ${signal}), which makes ` +
        `${restarts} restarts within ${seconds} s, more than maxRestarts ${opts.maxRestarts}. Giving up and stopping ` +
        `all workers. Look at the worker's last log lines for the cause of the crash loop, fix it, then start the gateway again`;
      c.log.error(reason, { restarts, periodMs: opts.periodMs, maxRestarts: opts.maxRestarts, code, signal });
      void shutdown(1, reason);
      return;
    }
    c.restarts++;
    spawnChild(c);
  };

  let lastBeat = Date.now();
  let lastStallLog = 0;
  const heartbeat = setInterval(() => {
    const now = Date.now();
    // The supervisor's own loop may be late (a starved CPU, a slow disk): pongs that arrived
    // meanwhile wait in the pipe, unread. Time the supervisor could not listen is not silence
    // (see liveness.ts).
    const late = now - lastBeat - opts.heartbeatMs;
    lastBeat = now;
    if (late > opts.heartbeatMs) {
      for (const c of children) c.deafMs += late;
      if (now - lastStallLog > 30_000) {
        lastStallLog = now;
        log.warn("Supervisor event loop was stalled; not counting that time as worker silence", { stalledMs: late });
      }
    }
    for (const c of children) {
      guard("the heartbeat", () => {
        if (!c.up || !c.proc || c.killedForHang) return;
        const v = judge(c, now, { heartbeatMs: opts.heartbeatMs, hangTimeoutMs: opts.hangTimeoutMs, busyTimeoutMs });
        if (v.kind === "busy" && !c.busyLogged) {
          c.busyLogged = true;
          c.log.warn("Worker busy: no pong within hangTimeoutMs but it is using CPU; not killing it unless silent for busyTimeoutMs", { pid: c.pid, silentMs: v.silentMs, busyTimeoutMs });
        } else if (v.kind === "hung") {
          c.killedForHang = true;
          c.log.error(v.busy ? "Worker hung: busy without answering for busyTimeoutMs; killing it with SIGKILL" : "Worker hung: no pong within hangTimeoutMs and no CPU used; killing it with SIGKILL", {
            pid: c.pid,
            silentMs: v.silentMs,
            hangTimeoutMs: opts.hangTimeoutMs,
            busyTimeoutMs,
            state: v.state,
          });
          trySignal(c, "SIGKILL");
          return;
        }
        trySend(c, { t: "ping", n: ++c.pingN } satisfies Ping);
      }, c.log);
    }
  }, opts.heartbeatMs);

  const checkAllReady = () => {
    if (readyWaiters.length === 0 || !children.every((c) => c.ready)) return;
    for (const w of readyWaiters.splice(0)) w.resolve();
  };

  const maybeFinish = () => {
    if (state !== "stopping" || children.some((c) => c.up)) return;
    finish();
  };

  const finish = () => {
    if (state === "stopped") return;
    state = "stopped";
    if (deadlineTimer) clearTimeout(deadlineTimer);
    if (reapTimer) clearTimeout(reapTimer);
    const err = new Error(`Supervisor stopped before all workers were ready: ${result.reason}`);
    for (const w of readyWaiters.splice(0)) w.reject(err);
    log.info("Supervisor stopped", { code: result.code, reason: result.reason });
    resolveDone(result);
  };

  const shutdown = (code: number, reason: string): Promise<void> => {
    if (stopPromise) return stopPromise;
    stopPromise = done.then(() => undefined);
    state = "stopping";
    result = { code, reason };
    clearInterval(heartbeat);
    log.info("Stopping workers", { reason, deadlineMs: opts.shutdownDeadlineMs });
    for (const c of children) {
      guard("stop", () => {
        if (c.retry) clearTimeout(c.retry);
        c.retry = null;
        trySend(c, { t: "shutdown" } satisfies Shutdown);
        trySignal(c, "SIGTERM");
      }, c.log);
    }
    deadlineTimer = setTimeout(() => {
      guard("the shutdown deadline", () => {
        for (const c of children) {
          if (!c.up) continue;
          c.log.warn("Worker still running at the shutdown deadline; killing it with SIGKILL", { pid: c.pid });
          trySignal(c, "SIGKILL");
        }
        reapTimer = setTimeout(() => {
          const left = children.filter((c) => c.up).map((c) => ({ worker: c.id, pid: c.pid }));
          if (left.length > 0) log.error("Workers did not exit after SIGKILL; stopping anyway", { left });
          finish();
        }, REAP_GRACE_MS);
      });
    }, opts.shutdownDeadlineMs);
    maybeFinish();
    return stopPromise;
  };

  for (const c of children) guard("the initial spawn", () => spawnChild(c), c.log);

  return {
    send: (workerId, msg) => {
      const c = children[workerId];
      return c ? trySend(c, msg) : false;
    },
    broadcast: (msg) => {
      for (const c of children) trySend(c, msg);
    },
    workers: () =>
      children.map((c) => ({
        id: c.id,
        pid: c.pid,
        restarts: c.restarts,
        startedAt: c.startedAt,
        up: c.up,
        ready: c.ready,
        lastPongAt: c.lastPongAt,
      })),
    whenAllReady: () =>
      new Promise<void>((resolve, reject) => {
        if (state === "stopped") return reject(new Error(`Supervisor stopped before all workers were ready: ${result.reason}`));
        readyWaiters.push({ resolve, reject });
        checkAllReady();
      }),
    stop: (reason) => shutdown(0, reason),
    done,
  };
}
