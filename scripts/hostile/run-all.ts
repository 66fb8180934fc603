/**
 * Runs every hostile scenario one after the other (each as its own process, so one that dies
 * does not take the others along) and prints one JSON object: `{ ok, scenarios: { name:
 * { exit_code, ok, result } } }`. With --quick, the sizes of the CI tests are used.
 *
 * Usage: bun scripts/hostile/run-all.ts [--quick] [--only fuzz,slowloris,...] [--fuzz-duration-s N]
 * Exit 0 when every scenario passed, 1 otherwise.
 */
import { join } from "node:path";

const argv = process.argv.slice(2);
if (argv.includes("-h") || argv.includes("--help")) {
  process.stdout.write(`Usage: bun scripts/hostile/run-all.ts [--quick] [--only a,b] [--fuzz-duration-s N]
Runs fuzz, mqtt-fuzz, backend-fuzz, huge-frames, slowloris, flood, brute-force and api-hardening in turn; prints JSON.
  --quick              CI sizes (about 2 minutes in all) instead of the full sizes
  --only a,b           only these scenarios
  --fuzz-duration-s N  fuzzing time (default 600, or 20 with --quick)
`);
  process.exit(0);
}
const quick = argv.includes("--quick");
const flag = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const only = flag("only")?.split(",");
const fuzzS = flag("fuzz-duration-s") ?? (quick ? "20" : "600");

/** Scenario name → script and its arguments (full size unless --quick). */
const SCENARIOS: Record<string, [string, string[]]> = {
  "huge-frames": ["huge-frames.ts", quick ? ["--mb", "10"] : []],
  slowloris: ["slowloris.ts", quick ? ["--silent", "2000", "--drip", "200", "--drip-ms", "500", "--hello-timeout-ms", "3000", "--holders", "2"] : []],
  flood: ["flood.ts", quick ? ["--before-s", "3", "--flood-s", "8", "--after-s", "2", "--emfile-measure-s", "3"] : []],
  "brute-force": ["brute-force.ts", quick ? ["--failures", "5", "--duration-s", "3", "--extra-attempts", "10"] : []],
  "api-hardening": ["api-hardening.ts", []],
  fuzz: ["fuzz.ts", ["--duration-s", fuzzS, ...(quick ? ["--concurrency", "32", "--settle-s", "8", "--rss-margin-mb", "100"] : [])]],
  "mqtt-fuzz": ["mqtt-fuzz.ts", ["--duration-s", fuzzS, ...(quick ? ["--concurrency", "32", "--settle-s", "8"] : [])]],
  "backend-fuzz": ["backend-fuzz.ts", ["--duration-s", fuzzS, ...(quick ? ["--settle-s", "20"] : [])]],
};

const unknown = (only ?? []).filter((n) => !(n in SCENARIOS));
if (unknown.length) {
  process.stderr.write(`Unknown scenario ${unknown.join(", ")}; known: ${Object.keys(SCENARIOS).join(", ")}\n`);
  process.exit(2);
}

const out: Record<string, { exit_code: number | null; ok: boolean; result: unknown }> = {};
for (const [name, [script, args]] of Object.entries(SCENARIOS)) {
  if (only && !only.includes(name)) continue;
  process.stderr.write(`[run-all] ${name} ${args.join(" ")}\n`);
  const p = Bun.spawn([process.execPath, join(import.meta.dir, script), ...args], { stdout: "pipe", stderr: "inherit", stdin: "ignore" });
  const text = await new Response(p.stdout).text();
  const code = await p.exited;
  let result: any = null;
  try {
    result = JSON.parse(text);
  } catch {
    result = { unparsable_output: text.slice(0, 2000) };
  }
  out[name] = { exit_code: code, ok: code === 0 && result?.ok === true, result };
}
const ok = Object.values(out).every((s) => s.ok);
process.stdout.write(JSON.stringify({ ok, scenarios: out }, null, 2) + "\n");
process.exit(ok ? 0 : 1);
