/**
 * A gateway under attack: starts one through the test helpers (source or the binary named by
 * OWSLA_TEST_BINARY), and reads what the scenarios check: worker pids, the control API and its
 * metrics, and crash evidence in the log.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { removeDir, startGateway, type GatewayOptions, type GatewayProcess } from "../../../tests/helpers/gateway.ts";
import { TestBackend } from "../../../tests/helpers/backend.ts";
import { RawConn } from "./raw.ts";
import { parseExposition, sumOverWorkers } from "../../../src/api/prometheus-parse.ts";

export type { GatewayProcess };

/**
 * Log lines that mean a process crashed or an error escaped: supervisor restarts, the
 * gateway's own unhandled-rejection/uncaught-exception guards, and runtime crash output.
 */
export const CRASH_PATTERN = /Worker exited|Restart intensity|unhandled promise rejection|Uncaught exception|uncaughtException|unhandledRejection|panic|Segmentation fault|SIGSEGV|out of memory|RangeError|Maximum call stack/i;

/** A started gateway and what the scenarios read from it. */
export class HostileGateway {
  /** Worker pids at start (a crash shows as a changed set). */
  readonly pidsAtStart: number[];

  private constructor(readonly gw: GatewayProcess) {
    this.pidsAtStart = gw.workerPids().sort((a, b) => a - b);
  }

  /** Starts a gateway with a fresh data dir; waits for all workers and the broker unless `waitBroker` is false. */
  static async start(opts: GatewayOptions = {}): Promise<HostileGateway> {
    const gw = await startGateway({ gatewayId: opts.gatewayId ?? "hostile", ...opts, args: opts.args ?? [] });
    const h = new HostileGateway(gw);
    if (h.pidsAtStart.length === 0) throw new Error(`Gateway started but has no worker processes:\n${gw.logs.slice(-20).join("\n")}`);
    return h;
  }

  get port(): number {
    return this.gw.port;
  }

  /** Current worker pids. */
  workerPids(): number[] {
    return this.gw.workerPids().sort((a, b) => a - b);
  }

  /** Whether every worker that was running at start still runs (no crash, no restart). */
  workersUnchanged(): boolean {
    const now = this.workerPids();
    return now.length === this.pidsAtStart.length && now.every((p, i) => p === this.pidsAtStart[i]);
  }

  /** Log lines (stdout and stderr of supervisor and workers) matching {@link CRASH_PATTERN}. */
  crashLines(): string[] {
    return this.gw.logs.filter((l) => CRASH_PATTERN.test(l));
  }

  /** Counts of warn/error log lines by message. */
  problemLines(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const l of this.gw.json()) {
      if (l.level === "warn" || l.level === "error") out[`${l.level}: ${l.msg}`] = (out[`${l.level}: ${l.msg}`] ?? 0) + 1;
    }
    return out;
  }

  /** The control API base URL (no trailing slash), from the supervisor's "Control API listening" line. */
  apiBase(): string {
    const line = this.gw.json().findLast((l) => l.msg === "Control API listening");
    if (!line?.url) throw new Error(`No "Control API listening" line in the gateway log:\n${this.gw.logs.slice(-20).join("\n")}`);
    return String(line.url).replace(/\/$/, "");
  }

  /** The API bearer token from `<data>/api.token`. */
  apiToken(): string {
    return readFileSync(join(this.gw.dir, "api.token"), "utf8").trim();
  }

  /** GET /metrics parsed into `name{labels}` → value, summed over the processes (the worker label dropped). */
  async metrics(): Promise<Map<string, number>> {
    const res = await fetch(`${this.apiBase()}/metrics`, { headers: { authorization: `Bearer ${this.apiToken()}` } });
    if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}: ${await res.text()}`);
    return sumOverWorkers(parseExposition(await res.text()));
  }

  /** Polls owsla_connections until it is 0 (at most 30 s); returns the last value. */
  async connectionsAfterRun(): Promise<number> {
    let open = Number.NaN;
    for (let i = 0; i < 60; i++) {
      open = HostileGateway.metric(await this.metrics(), "owsla_connections");
      if (open === 0) break;
      await Bun.sleep(500);
    }
    return open;
  }

  /** The value of metric `key` (e.g. `owsla_closes_total{reason="bad_frame"}`), 0 when absent. */
  static metric(m: Map<string, number>, key: string): number {
    return m.get(key) ?? 0;
  }

  /** All series of family `name` as label text → value. */
  static family(m: Map<string, number>, name: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of m) {
      if (k === name) out[""] = v;
      else if (k.startsWith(name + "{")) out[k.slice(name.length + 1, -1)] = v;
    }
    return out;
  }

  /** The device token for `hardwareId`. */
  token(hardwareId: string): string {
    return this.gw.token(hardwareId);
  }

  /**
   * A valid device round trip: connect (from `localAddress` when given), hello, pub with ref →
   * ack, ping → pong, bye. Returns the timings or the reason it failed.
   */
  async probe(hardwareId: string, opts: { localAddress?: string; host?: string; timeoutMs?: number } = {}): Promise<ProbeResult> {
    const timeout = opts.timeoutMs ?? 5000;
    const t0 = performance.now();
    let c: RawConn;
    try {
      c = await RawConn.connect({ port: this.port, host: opts.host, localAddress: opts.localAddress });
    } catch (e) {
      return { ok: false, why: `connect failed: ${(e as Error).message}` };
    }
    try {
      c.write(JSON.stringify({ op: "hello", v: 1, device: hardwareId, token: this.token(hardwareId) }) + "\n");
      const w = await c.waitFrame((f) => f.op === "welcome" || f.op === "error", timeout);
      const welcomeMs = performance.now() - t0;
      if (!w || w.op !== "welcome") return { ok: false, why: w ? `${w.code}: ${w.message}` : "no welcome" };
      const t1 = performance.now();
      c.write(JSON.stringify({ op: "pub", topic: "hostile.probe", body: { at: Date.now() }, ref: "p1" }) + "\n");
      const a = await c.waitFrame((f) => (f.op === "ack" || f.op === "error") && f.ref === "p1", timeout);
      if (!a || a.op !== "ack") return { ok: false, why: a ? `${a.code}: ${a.message}` : "no ack", welcomeMs };
      const pubAckMs = performance.now() - t1;
      c.write('{"op":"ping"}\n');
      if (!(await c.waitFrame((f) => f.op === "pong", timeout))) return { ok: false, why: "no pong", welcomeMs, pubAckMs };
      c.write('{"op":"bye"}\n');
      await c.waitClosed(1000);
      return { ok: true, welcomeMs, pubAckMs };
    } finally {
      c.terminate();
    }
  }

  /** Stops the gateway (SIGTERM, then SIGKILL after 15 s), removes its broker objects and data dir. */
  async stop(): Promise<void> {
    const exited = await Promise.race([this.gw.stop().then(() => true), Bun.sleep(15_000).then(() => false)]);
    if (!exited) await this.gw.kill();
    try {
      const b = await new TestBackend(this.gw.prefix).start();
      await b.stop([this.gw.gatewayId]);
    } catch {
      // Broker cleanup is best effort.
    }
    removeDir(this.gw.dir);
  }
}

/** Outcome of {@link HostileGateway.probe}. */
export interface ProbeResult {
  ok: boolean;
  why?: string;
  /** Connect + hello → welcome, ms. */
  welcomeMs?: number;
  /** pub → ack, ms. */
  pubAckMs?: number;
}
