/**
 * `owsla config check`: resolves the configuration exactly as `serve` would (defaults, file,
 * `OWSLA_*` environment, flags), checks the files it names can be read (TLS certificate, key,
 * client CA, CRL), and prints the effective configuration as TOML with each value's source and
 * the secrets hidden.
 */
import { PROCESS_IO, loadCommandConfig, type CommandIo } from "./command-config.ts";
import { redactValue } from "../config/redact.ts";
import { SCHEMA, SECTIONS } from "../config/schema.ts";
import type { Config } from "../config/types.ts";
import { readTlsFiles } from "../listener/tls-config.ts";

/** Usage of `owsla config check`. */
export const CONFIG_CHECK_USAGE = `Usage: owsla config check [--config FILE] [any serve option]
Validates the configuration as "owsla serve" would resolve it (defaults, the TOML file named by
--config or OWSLA_CONFIG, OWSLA_* variables, flags), checks that the TLS files it names can be
read, and prints the effective configuration as TOML, each value with its source, secrets (the
broker password, api.token) shown as ***.
Exit codes: 0 valid, 2 invalid (the message names the key, its source and what is expected).`;

/** The effective configuration as TOML, with sources as comments and secrets hidden. */
export function renderConfig(config: Config, sources: Record<string, string>): string {
  const lines = ["# Effective Owsla configuration (secrets shown as ***); the source of each value follows #"];
  for (const section of SECTIONS) {
    lines.push("", `[${section}]`);
    for (const spec of SCHEMA) {
      if (spec.section !== section) continue;
      const value = redactValue(spec, (config[section] as unknown as Record<string, unknown>)[spec.key]);
      lines.push(`${spec.key} = ${JSON.stringify(value)}  # ${sources[spec.name] ?? "default"}`);
    }
  }
  return lines.join("\n") + "\n";
}

/** Runs `owsla config <sub-command>`; returns the exit code. */
export function configMain(argv: string[], { out, err }: CommandIo = PROCESS_IO): number {
  const [sub, ...rest] = argv;
  if (sub === "--help" || sub === "-h") {
    out(CONFIG_CHECK_USAGE + "\n");
    return 0;
  }
  if (sub !== "check") {
    err(`${sub === undefined ? "Missing the sub-command" : `Unknown sub-command "${sub}"`} of owsla config.\n${CONFIG_CHECK_USAGE}\n`);
    return 2;
  }
  const loaded = loadCommandConfig(rest, CONFIG_CHECK_USAGE, 0, { out, err });
  if (typeof loaded === "number") return loaded;
  try {
    readTlsFiles(loaded.config);
  } catch (e) {
    err(`${(e as Error).message}\n`);
    return 2;
  }
  out(renderConfig(loaded.config, loaded.sources));
  err("Configuration OK\n");
  return 0;
}
