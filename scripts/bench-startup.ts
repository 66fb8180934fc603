/**
 * Binary size and start-up to ready of the compiled gateway, against a bare `bun build
 * --compile` hello-world built in the same run (and a bare compiled TCP server for start-up).
 *
 * Usage: bun scripts/bench-startup.ts [--runs 7]   (builds dist/owsla-linux-x64 first if missing)
 * Prints one JSON object.
 */
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort } from "../tests/helpers/gateway.ts";

const ROOT = resolve(import.meta.dir, "..");
const runsArg = process.argv.indexOf("--runs");
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 7;
const work = mkdtempSync(join(tmpdir(), "owsla-startup-"));
const bin = join(ROOT, "dist/owsla-linux-x64");
if (!existsSync(bin)) Bun.spawnSync([process.execPath, join(ROOT, "scripts/build.ts"), "x64"], { stdout: "inherit", stderr: "inherit" });

function compile(name: string, source: string): string {
  const src = join(work, `${name}.ts`);
  const out = join(work, name);
  writeFileSync(src, source);
  const r = Bun.spawnSync([process.execPath, "build", "--compile", "--minify", src, "--outfile", out], { stderr: "pipe" });
  if (!r.success) throw new Error(`Cannot compile ${name}: ${r.stderr}`);
  return out;
}
const hello = compile("hello", `console.log("hello");`);
const bare = compile("bare-server", `const s = Bun.listen({ hostname: "0.0.0.0", port: Number(process.argv[2]), socket: { data() {} } }); console.log("listening " + s.port);`);

/** ms from spawn until `line` appears on stdout (or the process exits when line is null). */
async function timeTo(cmd: string[], line: string | null): Promise<number> {
  const t0 = performance.now();
  const p = Bun.spawn(cmd, { stdout: "pipe", stderr: "ignore" });
  if (line === null) {
    await p.exited;
    return performance.now() - t0;
  }
  const dec = new TextDecoder();
  let buf = "";
  for await (const chunk of p.stdout) {
    buf += dec.decode(chunk);
    if (buf.includes(line)) break;
  }
  const dt = performance.now() - t0;
  p.kill("SIGTERM");
  await p.exited;
  return dt;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const hw: number[] = [];
const bareT: number[] = [];
const gw1: number[] = [];
const gw2: number[] = [];
for (let i = 0; i < RUNS; i++) {
  hw.push(await timeTo([hello], null));
  bareT.push(await timeTo([bare, String(freePort())], "listening"));
  for (const [workers, into] of [[1, gw1], [2, gw2]] as const) {
    const data = join(work, `data-${workers}-${i}`);
    // Broker deliberately unreachable: ready means all workers listen, not that AMQP is up.
    into.push(await timeTo([bin, "serve", "--workers", String(workers), "--data", data, "--port", String(freePort()), "--mqtt-port", String(freePort()), "--api-port", "0", "--broker", "amqp://guest:guest@127.0.0.1:1", "--log-format", "json"], "Gateway ready"));
  }
}
const size = (p: string) => statSync(p).size;
const out = {
  bench: "startup",
  runs: RUNS,
  bun: Bun.version,
  cpus: navigator.hardwareConcurrency,
  size_bytes: { owsla_linux_x64: size(bin), hello_world: size(hello), ratio: +(size(bin) / size(hello)).toFixed(3), owsla_minus_hello: size(bin) - size(hello) },
  startup_ms_median: {
    hello_world_run_to_exit: +median(hw).toFixed(1),
    bare_server_to_listening: +median(bareT).toFixed(1),
    gateway_1_worker_to_ready: +median(gw1).toFixed(1),
    gateway_2_workers_to_ready: +median(gw2).toFixed(1),
  },
  ratio_gateway_2_workers_over_bare_server: +(median(gw2) / median(bareT)).toFixed(2),
};
console.log(JSON.stringify(out, null, 2));
rmSync(work, { recursive: true, force: true });
