/**
 * Counters the simulator processes report (cumulative, so a lost tick loses nothing) and how
 * the coordinator adds them up.
 */
import type { HistogramData } from "./histogram.ts";

/** Cumulative counters of one client process (gauges are marked). */
export interface ClientCounters {
  /** Devices with an open, welcomed connection now (gauge). */
  connected: number;
  /** Devices welcomed at least once (gauge). */
  everWelcomed: number;
  /** Handshakes started and not yet finished (gauge). */
  handshaking: number;
  /** `pub` frames (door.ack included) sent and not yet acknowledged (gauge). */
  outstanding: number;
  /** Connection attempts. */
  attempts: number;
  /** Welcomes, reconnections included. */
  welcomes: number;
  /** Reconnection attempts scheduled after a refusal or drop. */
  retries: number;
  /** `pub` frames sent on topic `load` (door.ack pubs are counted apart). */
  pubs: number;
  /** Gateway acks of those pubs. */
  acks: number;
  /** RPC replies (a `cmd` whose `corr` is one of our refs). */
  replies: number;
  /** `cmd` frames received (replies included). */
  cmds: number;
  /** `door.ack` pubs sent for back-end-initiated commands. */
  doorAcks: number;
  pings: number;
  /** Errors and failures by kind: gateway error codes, `connect_failed`, `dropped`, ... */
  errors: Record<string, number>;
}

/** Histograms a client process keeps. */
export interface ClientHistograms {
  /** Socket connect start -> welcome, per successful attempt. */
  handshake: HistogramData;
  /** First attempt of a device -> its first welcome (includes waiting and retries). */
  timeToWelcome: HistogramData;
  /** `pub` -> gateway `ack`. */
  pubAck: HistogramData;
  /** `pub` -> the back-end's RPC reply arriving as `cmd`. */
  roundTrip: HistogramData;
  /** Back-end publish of a command -> device receipt (wall clocks of one machine). */
  cmdDelivery: HistogramData;
  /** How late this process's 10 ms timer fired (its own event-loop lag). */
  loopLag: HistogramData;
}

/** What a client process reports at the end. */
export interface ClientFinal {
  counters: ClientCounters;
  histograms: ClientHistograms;
  /** Wall-clock ms when the last of this process's devices got its first welcome (0: not all did). */
  allWelcomedAt: number;
  /** This process's resident memory, in bytes. */
  rssBytes: number;
}

/** Cumulative counters of the back-end simulator. */
export interface BackendCounters {
  /** Device messages received (presence included). */
  received: number;
  presence: number;
  replies: number;
  /** Devices currently known connected (from presence; gauge). */
  devices: number;
  cmdsSent: number;
  /** `door.ack` messages matched to a command. */
  doorAcks: number;
  /** Commands without a `door.ack` within the timeout. */
  cmdTimeouts: number;
  errors: Record<string, number>;
}

/** What the back-end simulator reports at the end. */
export interface BackendFinal {
  counters: BackendCounters;
  /** Command publish -> `door.ack` received (back-end -> device -> back-end). */
  doorUnlock: HistogramData;
  /** How late the simulator's 10 ms timer fired (its own event-loop lag). */
  loopLag: HistogramData;
  rssBytes: number;
}

/** Fresh client counters. */
export function zeroClientCounters(): ClientCounters {
  return { connected: 0, everWelcomed: 0, handshaking: 0, outstanding: 0, attempts: 0, welcomes: 0, retries: 0, pubs: 0, acks: 0, replies: 0, cmds: 0, doorAcks: 0, pings: 0, errors: {} };
}

/** Fresh back-end counters. */
export function zeroBackendCounters(): BackendCounters {
  return { received: 0, presence: 0, replies: 0, devices: 0, cmdsSent: 0, doorAcks: 0, cmdTimeouts: 0, errors: {} };
}

/** Adds `b` into `a` (error maps merged by kind). */
export function addErrors(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  for (const [k, n] of Object.entries(b)) a[k] = (a[k] ?? 0) + n;
  return a;
}

/** The sum of several processes' counters. */
export function sumClientCounters(parts: ClientCounters[]): ClientCounters {
  const total = zeroClientCounters();
  for (const p of parts) {
    for (const k of Object.keys(total) as (keyof ClientCounters)[]) {
      if (k === "errors") addErrors(total.errors, p.errors);
      else total[k] += p[k];
    }
  }
  return total;
}

/** Total of an error map. */
export function errorTotal(e: Record<string, number>): number {
  let n = 0;
  for (const v of Object.values(e)) n += v;
  return n;
}
