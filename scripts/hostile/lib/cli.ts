/** Command-line handling shared by the scripts in scripts/hostile/ and scripts/chaos/. */

/** Parses `--name value` flags against `defaults` (numbers and strings; `--x=1` works too). */
export function parseFlags<T extends Record<string, number | string | boolean>>(argv: string[], defaults: T, usage: string): T {
  const out: Record<string, number | string | boolean> = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "-h" || a === "--help") {
      process.stdout.write(usage.trim() + "\n");
      process.exit(0);
    }
    if (!a.startsWith("--")) throw new Error(`Unexpected argument "${a}"\n${usage}`);
    const eq = a.indexOf("=");
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    let value: string | undefined = eq > 0 ? a.slice(eq + 1) : undefined;
    const key = name.replace(/-/g, "_");
    if (!(key in defaults)) throw new Error(`Unknown flag --${name}\n${usage}`);
    const d = defaults[key];
    if (typeof d === "boolean" && value === undefined) {
      out[key] = true;
      continue;
    }
    value ??= argv[++i];
    if (value === undefined) throw new Error(`Flag --${name} needs a value\n${usage}`);
    if (typeof d === "number") {
      const n = Number(value);
      if (!Number.isFinite(n)) throw new Error(`Invalid --${name} ${value}: expected a number`);
      out[key] = n;
    } else if (typeof d === "boolean") out[key] = value === "true" || value === "1";
    else out[key] = value;
  }
  return out as T;
}

/**
 * Runs a scenario from the command line: parses flags, runs, prints one JSON object on stdout
 * (progress goes to stderr), and exits 0 when every check passed, 1 when one failed, 2 on a
 * usage error or a crash of the scenario itself.
 */
export async function runCli<T extends Record<string, number | string | boolean>>(
  defaults: T,
  usage: string,
  run: (opts: T, log: (msg: string) => void) => Promise<{ ok: boolean }>,
): Promise<never> {
  let opts: T;
  try {
    opts = parseFlags(process.argv.slice(2), defaults, usage);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(2);
  }
  const log = (msg: string) => void process.stderr.write(`[${new Date().toISOString()}] ${msg}\n`);
  try {
    const result = await run(opts, log);
    process.stdout.write(JSON.stringify(result, null, 2) + "\n");
    process.exit(result.ok ? 0 : 1);
  } catch (e) {
    process.stdout.write(JSON.stringify({ ok: false, error: (e as Error).stack ?? String(e) }, null, 2) + "\n");
    process.exit(2);
  }
}

/** A named pass/fail check with the numbers behind it. */
export interface Check {
  ok: boolean;
  detail: string;
}

/** Collects checks; `ok` is true when all passed. */
export class Checks {
  readonly all: Record<string, Check> = {};
  check(name: string, ok: boolean, detail: string): boolean {
    this.all[name] = { ok, detail };
    return ok;
  }
  get ok(): boolean {
    return Object.values(this.all).every((c) => c.ok);
  }
  /** Names and details of the failed checks. */
  failed(): string[] {
    return Object.entries(this.all)
      .filter(([, c]) => !c.ok)
      .map(([n, c]) => `${n}: ${c.detail}`);
  }
}

/** What every scenario's `run()` returns (and its script prints as JSON). */
export type ScenarioResult = Record<string, any> & { scenario: string; ok: boolean; checks: Record<string, Check> };
