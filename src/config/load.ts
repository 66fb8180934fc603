/**
 * Loads the configuration: embedded defaults < TOML file < `OWSLA_*` environment < flags.
 *
 * The file is read only when named by `--config <path>` or `OWSLA_CONFIG`. Every value
 * is validated where it is read, so a bad value is reported with its source even when a
 * later source overrides it. Unknown flags, sections, TOML keys and `OWSLA_*` environment
 * variables are errors (except the gateway's own internal ones and `OWSLA_TEST_*`).
 */

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { CONFIG_ENV, INTERNAL_ENV, TEST_ENV_PREFIX } from "./help.ts";
import { tomlErrorLine } from "./toml-line.ts";
import { redactUrl, redactValue } from "./redact.ts";
import { splitUrlList } from "./url-list.ts";
import { SCHEMA, SECTIONS, checkValue, defaultValue, findKey, type KeySpec, type Value } from "./schema.ts";
import type { Config } from "./types.ts";

export { helpText } from "./help.ts";
export { describeConfig, redactUrl } from "./redact.ts";

/** A configuration problem; the message names the key, its source and what is expected. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Result of {@link loadConfig}. */
export interface LoadResult {
  /** The resolved configuration; only embedded defaults when `help` is true. */
  config: Config;
  /** Arguments that are not flags, in order (e.g. a sub-command). */
  positionals: string[];
  /** `-h` or `--help` was given; nothing but the flags was read. */
  help: boolean;
  /** Where each key's value came from (`section.key` -> "default", "from OWSLA_DEVICE_PORT", ...). */
  sources: Record<string, string>;
}

interface Resolved {
  value: Value;
  /** Where the value came from, as shown in messages: `from OWSLA_DEVICE_PORT`, `default`. */
  source: string;
}

type Values = Map<string, Resolved>;

const BY_FLAG = new Map<string, KeySpec>();
for (const spec of SCHEMA) {
  BY_FLAG.set(spec.flag, spec);
  if (spec.alias) BY_FLAG.set(spec.alias, spec);
}

const FLAG_OPTIONS = {
  help: { type: "boolean" as const, short: "h" },
  config: { type: "string" as const },
  /** Shorthand for `--mqtt-enabled false`. */
  "no-mqtt": { type: "boolean" as const },
  ...Object.fromEntries([...BY_FLAG.keys()].map((f) => [f, { type: "string" as const }])),
};

function show(spec: KeySpec, raw: unknown): string {
  const safe = redactValue(spec, raw);
  try {
    return JSON.stringify(safe) ?? String(safe);
  } catch {
    return String(safe);
  }
}

function set(values: Values, spec: KeySpec, raw: unknown, text: boolean, source: string): void {
  const checked = checkValue(spec, raw, text);
  if (!checked.ok) {
    throw new ConfigError(`Invalid config: ${spec.name} = ${show(spec, raw)} (${source}) must be ${checked.expected}`);
  }
  values.set(spec.name, { value: checked.value, source });
}

function parseFlags(args: string[]) {
  try {
    return parseArgs({ args, options: FLAG_OPTIONS, strict: true, allowPositionals: true, tokens: true });
  } catch (err) {
    const msg = (err as Error).message;
    const flag = /'(?:-\w, )?(-[^' ]+)/.exec(msg)?.[1] ?? "";
    const code = (err as { code?: string }).code;
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      throw new ConfigError(`Invalid config: unknown flag ${flag}; run with --help to list the flags`);
    }
    if (msg.includes("does not take an argument")) {
      throw new ConfigError(`Invalid config: flag ${flag} takes no value`);
    }
    if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
      throw new ConfigError(`Invalid config: flag ${flag} needs a value; write ${flag}=<value> for a value starting with -`);
    }
    throw new ConfigError(`Invalid config: ${msg}`);
  }
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

function readToml(path: string, via: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`Invalid config: cannot read config file ${path} (from ${via}): ${(err as Error).message}`);
  }
  try {
    return Bun.TOML.parse(text) as Record<string, unknown>;
  } catch (err) {
    const line = tomlErrorLine(text);
    const where = line === null ? "" : ` line ${line} (${JSON.stringify(text.split("\n")[line - 1]!.slice(0, 80))})`;
    const why = (err as Error).message.replace(/^TOML Parse error: /, "");
    throw new ConfigError(`Invalid config: cannot parse config file ${path} (from ${via}) at${where || " an unknown line"}: ${why}`);
  }
}

function applyFile(values: Values, path: string, via: string): void {
  const source = `from ${path}`;
  for (const [section, table] of Object.entries(readToml(path, via))) {
    if (!(SECTIONS as readonly string[]).includes(section)) {
      const what = isTable(table) ? `section [${section}]` : `key ${section} outside any section`;
      throw new ConfigError(`Invalid config: unknown ${what} in ${path}; sections are ${SECTIONS.join(", ")}`);
    }
    if (!isTable(table)) {
      throw new ConfigError(`Invalid config: ${section} in ${path} must be a [${section}] table`);
    }
    for (const [key, raw] of Object.entries(table)) {
      const spec = findKey(section, key);
      if (!spec) {
        const known = SCHEMA.filter((s) => s.section === section).map((s) => s.key);
        throw new ConfigError(
          `Invalid config: unknown key ${section}.${key} in ${path}; keys in [${section}] are ${known.join(", ")}`,
        );
      }
      set(values, spec, raw, false, source);
    }
  }
}

const KNOWN_ENV = new Set<string>([CONFIG_ENV, ...INTERNAL_ENV, ...SCHEMA.map((s) => s.env)]);

/** Edit distance of `a` and `b` (for "did you mean"). */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** An `OWSLA_*` variable that is no setting is a typo: reported like an unknown flag. */
function checkEnvNames(env: Record<string, string | undefined>): void {
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith("OWSLA_") || KNOWN_ENV.has(name) || name.startsWith(TEST_ENV_PREFIX) || env[name] === undefined) continue;
    let best = "";
    let bestD = Infinity;
    for (const k of KNOWN_ENV) {
      const d = distance(name, k);
      if (d < bestD) [best, bestD] = [k, d];
    }
    const hint = bestD <= 3 ? ` (did you mean ${best}?)` : "";
    throw new ConfigError(`Invalid config: unknown environment variable ${name}${hint}; run with --help to list the variables, or unset it`);
  }
}

/** Relations between keys that single-key limits cannot express. */
function crossCheck(values: Values): void {
  const rule = (a: string, b: string, ok: (x: number, y: number) => boolean, must: string) => {
    const x = values.get(a)!;
    const y = values.get(b)!;
    if (!ok(x.value as number, y.value as number)) {
      throw new ConfigError(
        `Invalid config: ${a} = ${x.value} (${x.source}) must ${must} ${b} = ${y.value} (${y.source})`,
      );
    }
  };
  rule("broker.reconnect_min_ms", "broker.reconnect_max_ms", (x, y) => x <= y, "not exceed");
  rule("workers.hang_timeout_ms", "workers.heartbeat_ms", (x, y) => x > y, "be greater than");
  deviceTlsCheck(values);
  brokerTlsCheck(values);
}

/** Broker TLS settings that only make sense together. */
function brokerTlsCheck(values: Values): void {
  const get = (k: string) => values.get(k)!;
  const cert = get("broker.tls_cert");
  const key = get("broker.tls_key");
  if ((cert.value === "") !== (key.value === "")) {
    throw new ConfigError(
      `Invalid config: broker.tls_cert (${cert.source}) and broker.tls_key (${key.source}) must be set together (PEM files of the client certificate and its key)`,
    );
  }
  const login = get("broker.login");
  if (login.value !== "external") return;
  if (cert.value === "") {
    throw new ConfigError(`Invalid config: broker.login = "external" (${login.source}) needs broker.tls_cert and broker.tls_key: the broker identifies the gateway by its client certificate`);
  }
  const url = get("broker.url");
  const plain = splitUrlList(url.value as string).filter((u) => !/^amqps:/i.test(u));
  if (plain.length > 0) {
    throw new ConfigError(
      `Invalid config: broker.login = "external" (${login.source}) needs amqps:// URLs, but broker.url (${url.source}) has ${plain.map((u) => JSON.stringify(redactUrl(u))).join(", ")}`,
    );
  }
}

function build(values: Values): Config {
  const out: Record<string, Record<string, Value>> = {};
  for (const spec of SCHEMA) (out[spec.section] ??= {})[spec.key] = values.get(spec.name)!.value;
  return out as unknown as Config;
}

function defaults(): Values {
  return new Map(SCHEMA.map((spec) => [spec.name, { value: defaultValue(spec), source: "default" }]));
}

/** The embedded defaults as a Config (gateway.id from the hostname); handy for tests. */
export function defaultConfig(): Config {
  return build(defaults());
}

/**
 * Resolves the configuration from command-line `args` (without the runtime and
 * script) and `env`. Throws {@link ConfigError} for an invalid value, an unknown flag,
 * section or key, or an unreadable or unparsable file. With `--help`, returns the
 * embedded defaults without reading the file or the environment.
 *
 * Values are returned as given: 0 for `workers.count`, `device.max_connections` and
 * the accept rates, and empty `auth.secret_file` / `api.token`, are resolved by the caller.
 */
export function loadConfig(args: string[], env: Record<string, string | undefined>): LoadResult {
  const parsed = parseFlags(args);
  const values = defaults();
  const help = parsed.values.help === true;
  const sources = () => Object.fromEntries([...values].map(([k, v]) => [k, v.source]));
  if (help) return { config: build(values), positionals: parsed.positionals, help, sources: sources() };

  const flagPath = parsed.values.config;
  const path = typeof flagPath === "string" ? flagPath : env[CONFIG_ENV];
  if (path) applyFile(values, path, typeof flagPath === "string" ? "--config" : CONFIG_ENV);

  for (const spec of SCHEMA) {
    const raw = env[spec.env];
    if (raw !== undefined) set(values, spec, raw, true, `from ${spec.env}`);
  }
  checkEnvNames(env);

  for (const token of parsed.tokens) {
    if (token.kind !== "option") continue;
    if (token.name === "no-mqtt") {
      set(values, findKey("mqtt", "enabled")!, false, false, "from --no-mqtt");
      continue;
    }
    const spec = BY_FLAG.get(token.name);
    if (spec) set(values, spec, token.value, true, `from ${token.rawName}`);
  }

  crossCheck(values);
  return { config: build(values), positionals: parsed.positionals, help, sources: sources() };
}

/** Device TLS settings that only make sense together. */
function deviceTlsCheck(values: Values): void {
  const mode = values.get("auth.mode")!;
  const ca = values.get("device.tls_client_ca")!;
  if (mode.value === "cert" && !ca.value) {
    throw new ConfigError(
      `Invalid config: auth.mode = "cert" (${mode.source}) needs device.tls_client_ca (and device.tls_cert, device.tls_key): the CA that signs the devices' certificates`,
    );
  }
  const crl = values.get("device.tls_crl")!;
  if (crl.value && !ca.value) {
    throw new ConfigError(`Invalid config: device.tls_crl (${crl.source}) needs device.tls_client_ca: the CA whose certificates the list revokes`);
  }
}
