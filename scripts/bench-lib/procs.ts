/**
 * Processes scripts/bench starts: gateways, bare baseline servers, `owsla load` runs and
 * helper scripts whose last stdout line is a JSON result. Everything started is tracked and
 * stopped by {@link stopAll}, also when a phase fails.
 */
import type { Subprocess } from "bun";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BROKER_URL, freePort, GatewayProcess, owslaCommand, removeDir, ROOT, uniquePrefix } from "../../tests/helpers/gateway.ts";
import { TestBackend } from "../../tests/helpers/backend.ts";

const started = new Set<Subprocess>();
const gateways = new Set<GatewayProcess>();

/** How a command line is shown in the report: relative to the repository, `owsla` for the gateway. */
export function show(argv: string[]): string {
  return argv
    .map((a) => a.replace(`${ROOT}/`, "").replace(/^.*node_modules\/bun\/bin\/bun(\.exe)?$/, "bun").replace(/^.*\/\.bin\/bun$/, "bun"))
    .join(" ")
    .replace(/^bun main\.ts /, "owsla ");
}

/** Options for {@link spawnJson}. */
export interface JsonRunOptions {
  /** SIGTERM after this long. */
  timeoutMs: number;
  /** Gets every stderr line (progress). */
  stderr?: (line: string) => void;
  env?: Record<string, string>;
}

/** Runs `argv` to completion and parses the last JSON object it printed on stdout. */
export function runJson(argv: string[], opts: JsonRunOptions): Promise<any> {
  return spawnJson(argv, opts).result;
}

/** Starts `argv`; `result` is the last JSON object it printed on stdout once it exits. */
export function spawnJson(argv: string[], opts: JsonRunOptions): { proc: Subprocess; result: Promise<any> } {
  const p = Bun.spawn(argv, { cwd: ROOT, stdout: "pipe", stderr: "pipe", stdin: "ignore", env: { ...process.env, ...opts.env } });
  started.add(p);
  return { proc: p, result: collect(p, argv, opts) };
}

async function collect(p: Subprocess<"ignore", "pipe", "pipe">, argv: string[], opts: JsonRunOptions): Promise<any> {
  const timer = setTimeout(() => p.kill("SIGTERM"), opts.timeoutMs);
  const errLines: string[] = [];
  const pumpErr = (async () => {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of p.stderr) {
      buf += dec.decode(chunk, { stream: true });
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        errLines.push(line);
        if (errLines.length > 200) errLines.shift();
        opts.stderr?.(line);
      }
    }
  })();
  const out = await new Response(p.stdout).text();
  const code = await p.exited;
  await pumpErr;
  clearTimeout(timer);
  started.delete(p);
  const start = out.lastIndexOf("\n{");
  const text = (start >= 0 ? out.slice(start + 1) : out).trim();
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${show(argv)} exited with ${code} without a JSON result:\n${out.slice(-2000)}\n${errLines.slice(-30).join("\n")}`);
  }
}

/** A gateway started for a phase, with what is needed to reproduce and clean it up. */
export interface BenchGateway {
  gw: GatewayProcess;
  argv: string[];
  /** Stops the gateway and cleans up; returns the warnings and errors it logged. */
  stop(): Promise<{ warnings: Record<string, number>; firstWarnings: string[] }>;
}

/** Starts a gateway with `workers` workers on a fresh data dir, port and broker prefix. */
export async function startBenchGateway(tag: string, workers: number, extra: string[] = []): Promise<BenchGateway> {
  const dir = mkdtempSync(join(tmpdir(), `owsla-bench-${tag}-`));
  const args = ["--workers", String(workers), ...extra];
  const gw = new GatewayProcess(dir, `bench-${tag}`, uniquePrefix(`bench-${tag}`), freePort(), args, {});
  gateways.add(gw);
  await gw.start(true, 120_000);
  const argv = [...owslaCommand(), "serve", "--data", dir, "--port", String(gw.port), "--gateway", gw.gatewayId, "--broker-prefix", gw.prefix, "--broker", BROKER_URL, "--api-port", "0", "--mqtt-port", String(gw.mqttPort), ...args];
  return {
    gw,
    argv,
    async stop() {
      const stopped = await Promise.race([gw.stop(), Bun.sleep(120_000).then(() => null)]);
      if (stopped === null) await gw.kill();
      gateways.delete(gw);
      // Warnings and errors the gateway logged during the phase, by message.
      const warnings: Record<string, number> = {};
      const firstWarnings: string[] = [];
      for (const l of gw.json()) {
        if (l.level !== "warn" && l.level !== "error") continue;
        warnings[`${l.level}: ${l.msg}`] = (warnings[`${l.level}: ${l.msg}`] ?? 0) + 1;
        if (firstWarnings.length < 40) firstWarnings.push(JSON.stringify(l).slice(0, 400));
      }
      const cleanup = await new TestBackend(gw.prefix).start("none.#");
      await cleanup.stop([gw.gatewayId]);
      removeDir(dir);
      return { warnings, firstWarnings };
    },
  };
}

/**
 * Bare Bun servers (the memory and welcome-rate baseline); resolves once all listen. With
 * `floor`, each is the contract floor (floor-server.ts) on that broker prefix and gateway id.
 */
export async function startBareServers(processes: number, floor?: { prefix: string; gateway: string; mqttPort?: number }): Promise<{ pid: number; port: number; argv: string[]; stop(): Promise<void> }> {
  const port = freePort();
  const argv = [process.execPath, join(ROOT, "scripts/bench-lib/bare-servers.ts"), "--port", String(port), "--processes", String(processes)];
  if (floor) argv.push("--floor", "--broker", BROKER_URL, "--prefix", floor.prefix, "--gateway", floor.gateway, ...(floor.mqttPort ? ["--mqtt-port", String(floor.mqttPort)] : []));
  const p = Bun.spawn(argv, { cwd: ROOT, stdout: "pipe", stderr: "inherit", stdin: "ignore" });
  started.add(p);
  const reader = p.stdout.getReader();
  const { value } = await reader.read();
  if (!new TextDecoder().decode(value).includes("listening")) throw new Error("Bare servers did not start");
  reader.releaseLock();
  return {
    pid: p.pid,
    port,
    argv,
    async stop() {
      p.kill("SIGTERM");
      await Promise.race([p.exited, Bun.sleep(10_000)]);
      started.delete(p);
    },
  };
}

/** The argv of `owsla load` with `args`. */
export function loadArgv(args: string[]): string[] {
  return [...owslaCommand(), "load", ...args];
}

/** Starts the standalone back-end simulator (`owsla load --backend`); `stop()` ends it and returns its JSON summary. */
export async function startBackend(args: string[]): Promise<{ argv: string[]; stop(): Promise<any> }> {
  const argv = loadArgv(["--backend", ...args]);
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  // It prints a progress line every second once it consumes.
  const { proc, result } = spawnJson(argv, { timeoutMs: 60 * 60_000, stderr: (l) => l.startsWith("backend") && ready() });
  await Promise.race([isReady, result.then(() => Promise.reject(new Error("The back-end simulator exited at start")))]);
  return {
    argv,
    async stop() {
      proc.kill("SIGTERM");
      return await result;
    },
  };
}

/** Stops everything still running (gateways killed, helpers SIGKILLed). */
export async function stopAll(): Promise<void> {
  for (const p of started) if (p.exitCode === null) p.kill("SIGKILL");
  for (const gw of gateways) await gw.kill().catch(() => {});
}
