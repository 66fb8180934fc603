/**
 * Command-line plumbing shared by the chaos scripts: `--flag value` parsing against defaults,
 * one JSON object on stdout (progress on stderr), exit 0 when every check passed, 1 when one
 * failed, 2 on a usage error or a crash.
 */
import { availableParallelism, release } from "node:os";
import type { ScenarioResult } from "../../tests/helpers/chaos-scenarios.ts";
import { parseFlags, runCli } from "../hostile/lib/cli.ts";

export { parseFlags };

/** Logs a progress line on stderr. */
export function progress(msg: string): void {
  process.stderr.write(`[${new Date().toISOString()}] ${msg}\n`);
}

/** The command line that reproduces this run (relative to the repository root). */
export function commandLine(script: string, args: string[]): string {
  return ["node_modules/.bin/bun", script, ...args].join(" ");
}

/** Runs a suite: prints {suite, ok, …, results} as JSON and exits with 0/1/2 (see runCli). */
export function runSuite<T extends Record<string, number | string | boolean>>(
  suite: string,
  defaults: T,
  usage: string,
  run: (opts: T) => Promise<ScenarioResult[]>,
): Promise<never> {
  return runCli(defaults, usage, async (opts) => {
    const started = Date.now();
    const results = await run(opts);
    for (const r of results) {
      progress(`${r.scenario}: ${r.ok ? "ok" : "FAILED"}`);
      for (const c of r.checks) progress(`  ${c.ok ? "ok  " : c.info ? "info" : "FAIL"} ${c.name}: ${c.detail}`);
    }
    return {
      suite,
      ok: results.every((r) => r.ok),
      started_at: new Date(started).toISOString(),
      duration_s: Math.round((Date.now() - started) / 100) / 10,
      machine: { cpus: availableParallelism(), kernel: release(), bun: Bun.version },
      params: opts,
      results,
    };
  });
}
