/**
 * The supervisor's face to systemd (sd_notify(3) protocol, no libsystemd): `READY=1` once every
 * worker listens, `STATUS=` lines with connections and the broker link, `RELOADING=1` around a
 * SIGHUP reload, `STOPPING=1` on stop, and `WATCHDOG=1` keep-alives, sent only while every
 * worker answers the supervisor's heartbeat. When a worker stops answering, the keep-alives stop:
 * the supervisor's own hang detection restarts that worker first, and if the gateway as a whole
 * is wedged (or the supervisor's loop is), systemd restarts the service after `WatchdogSec`.
 *
 * Without `$NOTIFY_SOCKET` (not started by systemd with Type=notify) everything here is inert.
 *
 * @module
 */
import type { Logger } from "../log/logger.ts";
import type { WorkerInfo } from "./supervisor.ts";
import { openNotifySocket, type NotifySocket } from "./notify-socket.ts";

/** The environment variables systemd passes to a notify service. */
export const SYSTEMD_ENV = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] as const;

/** How often STATUS= is refreshed, in ms. */
export const STATUS_INTERVAL_MS = 10_000;

/** Options for {@link ServiceManager}. */
export interface ServiceManagerOptions {
  /** Where NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID are read (normally process.env). */
  env: Record<string, string | undefined>;
  /** This process's pid (WATCHDOG_PID must match it when set). */
  pid: number;
  log: Logger;
  /** Why the gateway should not feed the watchdog now (e.g. a worker that stopped answering), or null when healthy. */
  unhealthy: () => string | null;
  /** The STATUS= text (connections, broker link); refreshed every {@link STATUS_INTERVAL_MS}. */
  status: () => Promise<string>;
  /** Opens the notify socket; default {@link openNotifySocket}. For tests. */
  open?: (address: string) => NotifySocket;
  /**
   * The longest silence the supervisor tolerates before it restarts a worker itself
   * (`workers.busy_timeout_s`), in ms. A `WatchdogSec` not longer than this plus
   * {@link WATCHDOG_MARGIN_MS} is warned about. Default 0 (no check).
   */
  supervisorGraceMs?: number;
}

/** How much longer than the supervisor's own grace `WatchdogSec` should be (a worker restart), in ms. */
export const WATCHDOG_MARGIN_MS = 10_000;

/**
 * Workers that do not answer: not running, or no pong for longer than `answerWithinMs` (counted
 * from the process start until its first pong). Returns a sentence naming them, or null.
 */
export function silentWorkers(workers: readonly WorkerInfo[], now: number, answerWithinMs: number): string | null {
  const silent = workers.filter((w) => !w.up || now - Math.max(w.startedAt, w.lastPongAt) > answerWithinMs);
  if (silent.length === 0) return null;
  const names = silent.map((w) => (w.up ? `worker ${w.id} (no answer for ${now - Math.max(w.startedAt, w.lastPongAt)} ms)` : `worker ${w.id} (not running)`));
  return `${names.join(", ")} did not answer the heartbeat within ${answerWithinMs} ms`;
}

/** The supervisor's notifications to systemd. */
export class ServiceManager {
  private socket: NotifySocket | null = null;
  private watchdog: ReturnType<typeof setInterval> | null = null;
  private statusTimer: ReturnType<typeof setInterval> | null = null;
  private withheld: string | null = null;
  private sendFailed = false;
  /** Watchdog keep-alive interval in ms (half of WatchdogSec), or 0 when the watchdog is off. */
  readonly watchdogMs: number;

  constructor(private readonly o: ServiceManagerOptions) {
    const address = o.env.NOTIFY_SOCKET;
    const usec = Number(o.env.WATCHDOG_USEC ?? "");
    const forUs = o.env.WATCHDOG_PID === undefined || Number(o.env.WATCHDOG_PID) === o.pid;
    this.watchdogMs = address && Number.isFinite(usec) && usec > 0 && forUs ? Math.max(1, Math.floor(usec / 2000)) : 0;
    const grace = (o.supervisorGraceMs ?? 0) + WATCHDOG_MARGIN_MS;
    if (this.watchdogMs > 0 && o.supervisorGraceMs && this.watchdogMs * 2 < grace) {
      o.log.warn(
        `WatchdogSec=${(this.watchdogMs * 2) / 1000}s is shorter than workers.busy_timeout_s plus a restart (${grace / 1000} s): ` +
          "systemd may restart the whole gateway while the supervisor still lets a busy worker finish. Raise WatchdogSec in the unit",
      );
    }
    if (!address) return;
    try {
      this.socket = (o.open ?? openNotifySocket)(address);
    } catch (err) {
      o.log.error("Cannot open the systemd notification socket; systemd will not learn that the gateway is ready (Type=notify times out). Run with Type=simple or fix NOTIFY_SOCKET", { err: err as Error, notify_socket: address });
    }
  }

  /** Whether notifications go anywhere. */
  get active(): boolean {
    return this.socket !== null;
  }

  /** Sends one notification (newline-separated KEY=VALUE assignments). */
  notify(state: string): void {
    if (!this.socket) return;
    try {
      this.socket.send(state);
      this.sendFailed = false;
    } catch (err) {
      if (this.sendFailed) return; // said once until a send works again
      this.sendFailed = true;
      this.o.log.warn("Cannot send a notification to systemd; continuing", { err: err as Error, state: state.split("\n")[0] });
    }
  }

  /** Every worker listens: READY=1 with a status line, and from now on the watchdog and STATUS refreshes. */
  async ready(): Promise<void> {
    this.notify(`READY=1\nSTATUS=${await this.statusText()}\nMAINPID=${this.o.pid}`);
    if (!this.socket) return;
    if (this.watchdogMs > 0) this.watchdog = setInterval(() => this.feed(), this.watchdogMs);
    this.statusTimer = setInterval(() => void this.refreshStatus(), STATUS_INTERVAL_MS);
  }

  /** A reload begins (SIGHUP). */
  reloading(): void {
    // MONOTONIC_USEC lets systemd match this to the reload it asked for (Type=notify-reload).
    this.notify(`RELOADING=1\nSTATUS=Reloading settings\nMONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`);
  }

  /** The reload finished (applied or refused): back to ready. */
  async reloaded(): Promise<void> {
    this.notify(`READY=1\nSTATUS=${await this.statusText()}`);
  }

  /** The gateway is stopping: no more keep-alives. */
  stopping(reason: string): void {
    this.close();
    if (!this.socket) return;
    this.notify(`STOPPING=1\nSTATUS=Stopping: ${oneLine(reason)}`);
  }

  /** Stops the timers and closes the socket. */
  dispose(): void {
    this.close();
    this.socket?.close();
    this.socket = null;
  }

  private close(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    if (this.statusTimer) clearInterval(this.statusTimer);
    this.watchdog = this.statusTimer = null;
  }

  private feed(): void {
    let why: string | null;
    try {
      why = this.o.unhealthy();
    } catch (err) {
      why = `the health check failed: ${(err as Error).message}`;
    }
    if (why === null) {
      if (this.withheld !== null) this.o.log.info("Every worker answers again; feeding the systemd watchdog again");
      this.withheld = null;
      this.notify("WATCHDOG=1");
      return;
    }
    if (this.withheld === null) {
      this.o.log.warn(`Not feeding the systemd watchdog: ${why}. systemd restarts the service if this lasts WatchdogSec`, { watchdog_ms: this.watchdogMs * 2 });
      this.notify(`STATUS=Unhealthy: ${oneLine(why)}`);
    }
    this.withheld = why;
  }

  private async refreshStatus(): Promise<void> {
    if (this.withheld === null) this.notify(`STATUS=${await this.statusText()}`);
  }

  private async statusText(): Promise<string> {
    try {
      return oneLine(await this.o.status());
    } catch (err) {
      return `Status unavailable: ${oneLine((err as Error).message)}`;
    }
  }
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, " ");
}

/** STATUS= text from the workers' view: devices connected and how many workers have the broker. */
export function statusLine(workers: readonly { up: boolean; connections: number | null; broker: string | null }[]): string {
  const up = workers.filter((w) => w.up);
  const devices = up.reduce((n, w) => n + (w.connections ?? 0), 0);
  const linked = up.filter((w) => w.broker === "up").length;
  const broker = linked === workers.length ? "broker link up" : linked === 0 ? "broker link down (messages kept in the outbox)" : `broker link up on ${linked} of ${workers.length} workers`;
  return `${devices} device${devices === 1 ? "" : "s"} connected on ${up.length} of ${workers.length} workers; ${broker}`;
}
