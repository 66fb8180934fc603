/** Starts real gateway processes for black-box tests. */
import type { Subprocess } from "bun";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadOrCreateSecret, mintToken } from "../../src/auth/token.ts";
import { TestDevice } from "./device.ts";
import { forEachLine } from "./lines.ts";

/** Repository root. */
export const ROOT = resolve(import.meta.dir, "../..");

/**
 * The command that runs Owsla: the compiled binary named by OWSLA_TEST_BINARY (CI runs the
 * black-box tests against dist/owsla-linux-x64 too), else `bun main.ts` from the sources.
 */
export function owslaCommand(): string[] {
  const bin = process.env.OWSLA_TEST_BINARY;
  return bin ? [resolve(ROOT, bin)] : [process.execPath, join(ROOT, "main.ts")];
}

/** Broker URL used by tests. */
export const BROKER_URL = process.env.OWSLA_TEST_BROKER ?? "amqp://guest:guest@127.0.0.1:5672";

/** A free TCP port on loopback (bound then released). */
export function freePort(): number {
  const s = Bun.listen({ hostname: "0.0.0.0", port: 0, socket: { data() {} } });
  const p = s.port;
  s.stop(true);
  return p;
}

/**
 * A free port other than `taken`. A port just released (the device port of a gateway the test
 * killed) is free, and the kernel may hand it out again for a port-0 bind: the restarted
 * gateway's control API once took its own device port that way, and its workers could not
 * listen.
 */
export function freePortExcept(taken: number[]): number {
  for (;;) {
    const p = freePort();
    if (!taken.includes(p)) return p;
  }
}

/** A unique name prefix so tests sharing one broker never see each other's traffic. */
export function uniquePrefix(tag: string): string {
  return `t-${tag}-${process.pid}-${Math.random().toString(36).slice(2, 8)}.`;
}

/** Options for {@link startGateway}. */
export interface GatewayOptions {
  dir?: string;
  gatewayId?: string;
  prefix?: string;
  port?: number;
  /** Extra command-line flags. */
  args?: string[];
  env?: Record<string, string>;
  /** Wait for the broker link (default true). */
  waitBroker?: boolean;
}

/** The value of `--flag N` (or `--flag=N`) in `args`, if given. */
function flagValue(args: string[], flag: string): number | undefined {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === flag && i + 1 < args.length) return Number(args[i + 1]);
    if (args[i]!.startsWith(`${flag}=`)) return Number(args[i]!.slice(flag.length + 1));
  }
  return undefined;
}

/** A gateway process under test. */
export class GatewayProcess {
  logs: string[] = [];
  proc!: Subprocess<"ignore", "pipe", "pipe">;
  /**
   * The MQTT port every worker listens on: picked free like `port` (never 0: with SO_REUSEPORT
   * each worker would get its own), or the one given with `--mqtt-port` in `args`.
   */
  readonly mqttPort: number;
  /** The MQTT-over-TLS port (served only when the device TLS files are configured). */
  readonly mqttTlsPort: number;
  constructor(
    readonly dir: string,
    readonly gatewayId: string,
    readonly prefix: string,
    readonly port: number,
    readonly args: string[],
    readonly env: Record<string, string>,
  ) {
    this.mqttPort = flagValue(args, "--mqtt-port") ?? freePort();
    this.mqttTlsPort = flagValue(args, "--mqtt-tls-port") ?? freePort();
  }

  /** The device token for `hardwareId` under this gateway's site secret. */
  token(hardwareId: string): string {
    return mintToken(loadOrCreateSecret(join(this.dir, "site.secret")), hardwareId);
  }

  /** Connects a device and completes hello with a valid token. */
  async device(hardwareId: string): Promise<{ dev: TestDevice; welcome: Record<string, any> }> {
    const dev = await TestDevice.connect(this.port);
    const welcome = await dev.hello({ device: hardwareId, token: this.token(hardwareId) });
    return { dev, welcome };
  }

  /** Worker count from the args (default: the machine's CPUs, as the gateway does). */
  get workers(): number {
    const i = this.args.indexOf("--workers");
    return i >= 0 ? Number(this.args[i + 1]) : navigator.hardwareConcurrency;
  }

  /** Spawns the gateway and waits until all workers listen (and, by default, have the broker). */
  async start(waitBroker = true, timeoutMs = 20000): Promise<void> {
    const need = waitBroker ? this.workers : 0;
    let brokerUps = 0;
    let ready = false;
    const waitFor = "Gateway ready";
    this.logs = [];
    const apiPort = freePortExcept([this.port, this.mqttPort, this.mqttTlsPort]);
    this.proc = Bun.spawn(
      [...owslaCommand(), "serve", "--data", this.dir, "--port", String(this.port), "--gateway", this.gatewayId, "--broker-prefix", this.prefix, "--broker", BROKER_URL, "--log-format", "json", "--api-port", String(apiPort), "--mqtt-port", String(this.mqttPort), "--mqtt-tls-port", String(this.mqttTlsPort), ...this.args],
      { stdout: "pipe", stderr: "pipe", stdin: "ignore", env: { ...process.env, ...this.env } },
    );
    const seen = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Gateway did not log "${waitFor}" within ${timeoutMs} ms:\n${this.logs.slice(-20).join("\n")}`)), timeoutMs);
      const onLine = (line: string) => {
        this.logs.push(line);
        if (process.env.OWSLA_TEST_VERBOSE) console.log(line);
        // The gateway queue's links (the supervisor's site-events link logs the same line).
        if (line.includes("Broker link up") && line.includes("owsla.gw.")) brokerUps++;
        if (line.includes(waitFor)) ready = true;
        if (ready && brokerUps >= need) {
          clearTimeout(timer);
          resolve();
        }
      };
      void forEachLine(this.proc.stdout, onLine);
      void forEachLine(this.proc.stderr, onLine);
      void this.proc.exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`Gateway exited with ${code} before "${waitFor}":\n${this.logs.slice(-20).join("\n")}`));
      });
    });
    await seen;
  }

  /** Process ids of the supervisor's workers. */
  workerPids(): number[] {
    const r = Bun.spawnSync(["pgrep", "-P", String(this.proc.pid)]);
    return r.stdout.toString().split("\n").filter(Boolean).map(Number);
  }

  /** SIGKILL of the whole gateway (supervisor and every worker at once), as a power cut would. */
  async kill(): Promise<void> {
    const pids = [this.proc.pid, ...this.workerPids()];
    for (const p of pids) {
      try {
        process.kill(p, "SIGKILL");
      } catch {}
    }
    await this.proc.exited;
    for (let i = 0; i < 100 && pids.some((p) => alive(p)); i++) await Bun.sleep(20);
  }

  /** SIGTERM and wait for exit; returns the exit code. */
  async stop(): Promise<number> {
    if (this.proc.exitCode !== null) return this.proc.exitCode;
    this.proc.kill("SIGTERM");
    return await this.proc.exited;
  }

  /** Log lines parsed as JSON (non-JSON lines skipped). */
  /**
   * Connected devices and the worker holding each, from the control API (connection state is
   * live state in the workers; the site database does not keep it).
   */
  async connectedDevices(): Promise<Map<string, number>> {
    const line = this.json().findLast((l) => l.msg === "Control API listening");
    if (!line?.url) throw new Error(`No "Control API listening" line in the gateway log:\n${this.logs.slice(-20).join("\n")}`);
    const base = String(line.url).replace(/\/$/, "");
    const token = readFileSync(join(this.dir, "api.token"), "utf8").trim();
    const out = new Map<string, number>();
    let cursor: string | null = null;
    do {
      const res = await fetch(`${base}/api/v1/devices?connected=true&limit=1000${cursor ? `&cursor=${cursor}` : ""}`, { headers: { authorization: `Bearer ${token}` } });
      if (res.status !== 200) throw new Error(`GET /api/v1/devices answered ${res.status}: ${await res.text()}`);
      const page = (await res.json()) as { devices: { id: string; worker: number }[]; next_cursor: string | null };
      for (const d of page.devices) out.set(d.id, d.worker);
      cursor = page.next_cursor;
    } while (cursor);
    return out;
  }

  json(): Record<string, any>[] {
    return this.logs.flatMap((l) => {
      try {
        return [JSON.parse(l)];
      } catch {
        return [];
      }
    });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Creates and starts a gateway with a fresh data dir, port and name prefix. */
export async function startGateway(opts: GatewayOptions = {}): Promise<GatewayProcess> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "owsla-test-"));
  // A port picked by freePort() can be taken by another process before the gateway binds it
  // (a busy machine running several suites): then try again with a new one.
  for (let attempt = 1; ; attempt++) {
    const gw = new GatewayProcess(dir, opts.gatewayId ?? "gw1", opts.prefix ?? uniquePrefix("gw"), opts.port ?? freePort(), opts.args ?? [], opts.env ?? {});
    try {
      await gw.start(opts.waitBroker !== false);
      return gw;
    } catch (e) {
      const lostPortRace = opts.port === undefined && /Cannot listen|Failed to listen|EADDRINUSE|is not free/i.test((e as Error).message);
      if (!lostPortRace || attempt >= 3) throw e;
      await gw.stop().catch(() => {});
    }
  }
}

/** Removes a test data directory. */
export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
