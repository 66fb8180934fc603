/**
 * Welcome stampede: N devices (default 20000) connect at once and each does hello with a valid
 * token; measures welcomes per second, time until all are welcomed, and errors. Devices refused
 * with `server_busy` (or `rate_limited`) retry after `retry_after` with backoff.
 *
 * The load comes from several client processes (scripts/bench-welcomes-client.ts), each holding
 * fewer than 20000 sockets and connecting to its own 127.0.0.x destination address (the server
 * listens on 0.0.0.0), so 4-tuples stay unique.
 *
 * Two rounds against each server:
 *  1. first connect: devices the gateway has never seen;
 *  2. reconnect: all close, then all come back at once (the stampede after an outage).
 *
 * Baseline in the same run: a bare Bun TCP server (2 processes, reusePort) that answers each
 * line with a welcome-like line, driven by the same clients. The ratio gateway / baseline is the
 * result; absolute numbers depend on the machine (clients, broker and servers share the CPUs).
 *
 * Usage: bun scripts/bench-welcomes.ts [--devices 20000] [--clients 4] [--window 200]
 *   --window: handshakes in flight per client process (0 = all at once). The default keeps the
 *   total (clients x window) under the two listen backlogs (512 each): past that, the kernel drops
 *   handshakes (TcpExt ListenOverflows, reported per round) and clients wait for SYN retransmits
 *   (1 s, 3 s, ...), which then dominate the times instead of the server.
 * Prints one JSON object.
 */
import { serveBareWelcomes } from "./bench-lib/bare-welcome.ts";
import type { Subprocess } from "bun";
import { Database } from "bun:sqlite";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, removeDir, ROOT, startGateway, type GatewayProcess } from "../tests/helpers/gateway.ts";
import { TestBackend } from "../tests/helpers/backend.ts";

function flag(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isInteger(v) || v < 0) throw new Error(`Invalid --${name} ${process.argv[i + 1]}: expected a non-negative integer`);
  return v;
}

// ---- baseline server role: `bun scripts/bench-welcomes.ts --baseline-server <port>` ----
if (process.argv.includes("--baseline-server")) {
  const port = Number(process.argv[process.argv.indexOf("--baseline-server") + 1]);
  serveBareWelcomes(port);
  console.log("listening");
  await new Promise(() => {});
}

const DEVICES = flag("devices", 20000);
const CLIENTS = flag("clients", 4);
const WINDOW = flag("window", 200);
/** Longest a round may take, in ms. */
const ROUND_TIMEOUT_MS = 180_000;

const children = new Set<Subprocess>();
const now = () => performance.timeOrigin + performance.now();

/** The kernel's count of connections dropped because a listen queue was full (TcpExt ListenOverflows). */
function listenOverflows(): number {
  try {
    const lines = readFileSync("/proc/net/netstat", "utf8").split("\n").filter((l) => l.startsWith("TcpExt:"));
    const names = lines[0]!.split(/\s+/);
    const values = lines[1]!.split(/\s+/);
    return Number(values[names.indexOf("ListenOverflows")]);
  } catch {
    return Number.NaN;
  }
}

/** Spawns a child process and resolves once it printed `listening` on stdout. */
async function spawnServer(port: number): Promise<Subprocess<"ignore", "pipe", "inherit">> {
  const p = Bun.spawn([process.execPath, import.meta.path, "--baseline-server", String(port)], { stdin: "ignore", stdout: "pipe", stderr: "inherit" });
  children.add(p);
  const reader = p.stdout.getReader();
  const { value } = await reader.read();
  if (!new TextDecoder().decode(value).includes("listening")) throw new Error("Baseline server did not start");
  reader.releaseLock();
  return p;
}

/** The load: CLIENTS processes, each with its share of devices and its own destination address. */
class Load {
  private readonly procs: Subprocess[] = [];
  private waiting = new Map<number, (m: any) => void>();
  private inbox: any[][] = [];

  private constructor() {}

  static async start(port: number, firstAddr: number, secretFile?: string): Promise<Load> {
    const load = new Load();
    const per = Math.ceil(DEVICES / CLIENTS);
    if (per >= 19_000) throw new Error(`${per} devices per client process exceeds the descriptor limit; use more --clients`);
    const ready: Promise<unknown>[] = [];
    for (let c = 0; c < CLIENTS; c++) {
      const count = Math.min(per, DEVICES - c * per);
      load.inbox.push([]);
      const p = Bun.spawn(
        [process.execPath, join(ROOT, "scripts/bench-welcomes-client.ts"), `127.0.0.${firstAddr + c}`, String(port), String(c * per), String(count), String(WINDOW), ...(secretFile ? [secretFile] : [])],
        { stdin: "ignore", stdout: "inherit", stderr: "inherit", serialization: "json", ipc: (m) => load.deliver(c, m) },
      );
      children.add(p);
      load.procs.push(p);
      ready.push(load.next(c, "ready"));
    }
    await Promise.all(ready);
    return load;
  }

  private deliver(c: number, m: any): void {
    const w = this.waiting.get(c);
    if (w) {
      this.waiting.delete(c);
      w(m);
    } else this.inbox[c]!.push(m);
  }

  /** The next message of type `t` from client `c`. */
  private next(c: number, t: string): Promise<any> {
    const queued = this.inbox[c]!.shift();
    const got = queued ? Promise.resolve(queued) : new Promise<any>((r) => this.waiting.set(c, r));
    return Promise.race([
      got.then((m) => {
        if (m.t !== t) throw new Error(`Client ${c} sent ${m.t}, expected ${t}`);
        return m;
      }),
      Bun.sleep(ROUND_TIMEOUT_MS).then(() => {
        throw new Error(`Client ${c} sent no ${t} within ${ROUND_TIMEOUT_MS} ms`);
      }),
    ]);
  }

  /** One stampede: every device connects and says hello at once; returns the round's figures. */
  async round(): Promise<Record<string, unknown>> {
    const overflowsBefore = listenOverflows();
    const goAt = now();
    for (const p of this.procs) p.send({ t: "go" });
    const results = await Promise.all(this.procs.map((_, c) => this.next(c, "done")));
    const at: number[] = results.flatMap((r) => r.welcomedAt).sort((a, b) => a - b);
    const lat: number[] = results.flatMap((r) => r.latencyMs).sort((a, b) => a - b);
    const errors: Record<string, number> = {};
    for (const r of results) for (const [k, v] of Object.entries(r.errors as Record<string, number>)) errors[k] = (errors[k] ?? 0) + v;
    const allMs = at.length ? at.at(-1)! - goAt : Number.NaN;
    let peak = 0;
    for (let i = 0, j = 0; i < at.length; i++) {
      while (at[i]! - at[j]! > 1000) j++;
      peak = Math.max(peak, i - j + 1);
    }
    const pct = (p: number) => Math.round(lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))]!);
    return {
      welcomed: at.length,
      failed: results.reduce((s, r) => s + r.failed, 0),
      time_to_all_welcomed_ms: Math.round(allMs),
      welcomes_per_s: Math.round(at.length / (allMs / 1000)),
      peak_welcomes_in_1s: peak,
      handshake_ms: { p50: pct(50), p99: pct(99), max: Math.round(lat.at(-1) ?? Number.NaN) },
      retries: results.reduce((s, r) => s + r.retries, 0),
      errors,
      kernel_listen_overflows: listenOverflows() - overflowsBefore,
    };
  }

  /** Closes every device connection. */
  async closeAll(): Promise<void> {
    for (const p of this.procs) p.send({ t: "close" });
    await Promise.all(this.procs.map((_, c) => this.next(c, "closed")));
  }

  async stop(): Promise<void> {
    for (const p of this.procs) {
      try {
        p.send({ t: "exit" });
      } catch {}
    }
    await Promise.all(this.procs.map((p) => Promise.race([p.exited, Bun.sleep(3000)])));
    for (const p of this.procs) if (p.exitCode === null) p.kill("SIGKILL");
  }
}

/** Devices the gateway holds, from its control API. */
async function connectedRows(gw: GatewayProcess): Promise<number> {
  return (await gw.connectedDevices()).size;
}

const dir = mkdtempSync(join(tmpdir(), "owsla-bench-"));
let gw: GatewayProcess | null = null;
let exitCode = 0;
try {
  // Baseline: bare Bun TCP server, 2 processes sharing the port.
  const basePort = freePort();
  const servers = [await spawnServer(basePort), await spawnServer(basePort)];
  const base = await Load.start(basePort, 2);
  const baseline1 = await base.round();
  await base.closeAll();
  await Bun.sleep(1000);
  const baseline2 = await base.round();
  await base.closeAll();
  await base.stop();
  for (const s of servers) {
    s.kill("SIGTERM");
    await s.exited;
    children.delete(s);
  }

  // The gateway, 2 workers.
  gw = await startGateway({ dir, gatewayId: "bench-welcomes", args: ["--workers", "2"] });
  const load = await Load.start(gw.port, 2 + CLIENTS, join(gw.dir, "site.secret"));
  const first = await load.round();
  await load.closeAll();
  const settleStart = Date.now();
  while ((await connectedRows(gw)) > 0 && Date.now() - settleStart < 60_000) await Bun.sleep(100);
  const settleMs = Date.now() - settleStart;
  await Bun.sleep(500);
  const reconnect = await load.round();
  const heldAfter = await connectedRows(gw);
  await load.closeAll();
  await load.stop();

  const ratio = (a: Record<string, unknown>, b: Record<string, unknown>) => Math.round(((a.welcomes_per_s as number) / (b.welcomes_per_s as number)) * 100) / 100;
  console.log(
    JSON.stringify(
      {
        bench: "welcomes",
        devices: DEVICES,
        client_processes: CLIENTS,
        handshakes_in_flight_per_client: WINDOW || "all",
        workers: 2,
        cpus: navigator.hardwareConcurrency,
        bun: Bun.version,
        baseline_bare_bun_server: { round1: baseline1, round2: baseline2 },
        gateway: { first_connect: first, reconnect, disconnects_recorded_after_close_ms: settleMs, connected_rows_after_reconnect: heldAfter },
        gateway_over_baseline_welcomes_per_s: { first_connect: ratio(first, baseline1), reconnect: ratio(reconnect, baseline2) },
      },
      null,
      2,
    ),
  );
} catch (e) {
  console.error(`bench-welcomes failed: ${(e as Error).message}`);
  exitCode = 1;
} finally {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  if (gw) {
    const stopped = await Promise.race([gw.stop(), Bun.sleep(40_000).then(() => null)]);
    if (stopped === null) await gw.kill();
    const backend = await new TestBackend(gw.prefix).start("none.#");
    await backend.stop([gw.gatewayId]);
  }
  removeDir(dir);
}
process.exit(exitCode);
