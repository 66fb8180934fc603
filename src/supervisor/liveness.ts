/**
 * Telling a hung worker from a busy one. A worker answers the supervisor's pings from its
 * event loop; under a stampede the loop is late but makes progress. Silence alone is therefore
 * not enough: a silent worker that used CPU since it last answered, or is running or waiting
 * for the disk right now, is busy and gets `busyTimeoutMs`; one that is blocked, stopped or
 * deadlocked (no CPU) is hung at `hangTimeoutMs`. Time the supervisor's own loop was stalled
 * (its pongs wait unread in the pipe) is not counted as anyone's silence.
 */
import { cpuState } from "./cpu-time.ts";

/** What the liveness check keeps per worker. */
export interface LivenessState {
  pid: number;
  startedAt: number;
  lastPongAt: number;
  /** CPU ticks when this silence was first noticed; null while the worker answers. */
  cpuMark: number | null;
  /** Time the supervisor itself was stalled since the last pong. */
  deafMs: number;
}

/** Timeouts of the check, in ms. */
export interface LivenessLimits {
  heartbeatMs: number;
  hangTimeoutMs: number;
  busyTimeoutMs: number;
}

/** The verdict on one worker at one heartbeat. */
export type Verdict = { kind: "ok" } | { kind: "busy" | "hung"; silentMs: number; busy: boolean; state: string };

/** Judges `w` at `now`; `probe` reads its CPU ticks and scheduler state (from /proc by default). */
export function judge(w: LivenessState, now: number, l: LivenessLimits, probe: (pid: number) => { ticks: number; state: string } = cpuState): Verdict {
  const silentMs = now - Math.max(w.startedAt, w.lastPongAt) - w.deafMs;
  if (silentMs <= l.heartbeatMs) {
    w.cpuMark = null;
    return { kind: "ok" };
  }
  const { ticks, state } = probe(w.pid);
  if (w.cpuMark === null) w.cpuMark = ticks;
  const busy = ticks > w.cpuMark || state === "R" || state === "D";
  if (silentMs <= l.hangTimeoutMs) return { kind: "ok" };
  if (busy && silentMs <= l.busyTimeoutMs) return { kind: "busy", silentMs, busy, state };
  return { kind: "hung", silentMs, busy, state };
}
