/** The `--help` text, generated from the schema so it lists every key. */

import { SCHEMA, SECTIONS, expectation, type KeySpec } from "./schema.ts";
import { liveHelp } from "./live.ts";

/** Environment variable naming the config file. */
export const CONFIG_ENV = "OWSLA_CONFIG";

/** Variables the supervisor sets for its workers; not settings, but not typos either. */
export const INTERNAL_ENV = ["OWSLA_WORKER_ID", "OWSLA_WORKERS_TOTAL"] as const;

/** Prefix reserved for test harnesses (`OWSLA_TEST_BINARY`, ...); such variables are ignored. */
export const TEST_ENV_PREFIX = "OWSLA_TEST_";

function placeholder(spec: KeySpec): string {
  if (spec.type === "enum") return `<${(spec.values ?? []).join("|")}>`;
  if (spec.type === "bool") return "<true|false>";
  return `<${spec.type}>`;
}

function shownDefault(spec: KeySpec): string {
  if (spec.defaultDoc) return spec.defaultDoc;
  return typeof spec.default === "string" ? JSON.stringify(spec.default) : String(spec.default);
}

function describeKey(spec: KeySpec): string[] {
  const flags = [`--${spec.flag} ${placeholder(spec)}`];
  if (spec.alias) flags.push(`--${spec.alias}`);
  const rule = spec.type === "int" || spec.type === "number" || spec.pattern ? `; ${expectation(spec, true)}` : "";
  return [
    `  ${flags.join(", ")}`,
    `      ${spec.doc}`,
    `      env ${spec.env}; TOML [${spec.section}] ${spec.key}; default ${shownDefault(spec)}${rule}`,
  ];
}

/** Help for `command` (e.g. `owsla run`): every flag with its env var, TOML key, default and doc. */
export function helpText(command: string): string {
  const lines = [
    `Usage: ${command} [options]`,
    "",
    "Settings come from built-in defaults, then the TOML file named by --config or",
    `${CONFIG_ENV} (none is read otherwise), then OWSLA_* environment variables, then`,
    "flags; later sources win. Every flag takes a value: --device-port 7070 or --device-port=7070.",
    `An OWSLA_* variable that names no setting is an error (${TEST_ENV_PREFIX}* excepted).`,
    "",
    "  -h, --help",
    "      Show this help and exit.",
    "  --config <path>",
    `      TOML configuration file; an empty path reads none.`,
    `      env ${CONFIG_ENV}; default none`,
  ];
  for (const section of SECTIONS) {
    lines.push("", `[${section}]`);
    for (const spec of SCHEMA) if (spec.section === section) lines.push(...describeKey(spec));
  }
  if (command === "serve") lines.push("", ...liveHelp());
  return lines.join("\n") + "\n";
}
