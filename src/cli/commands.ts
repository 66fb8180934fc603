/**
 * The command-line commands that do not run the gateway: the admin commands (thin clients of
 * the control API). `token` is in token.ts.
 */
import { Database } from "bun:sqlite";
import { readFileSync } from "node:fs";
import { databaseFiles, hasOutbox } from "../store/db-files.ts";
import { summarizeOutbox, type OutboxSummary } from "../store/outbox-summary.ts";
import { join } from "node:path";
import { loadConfig, ConfigError } from "../config/load.ts";
import type { Config } from "../config/types.ts";
import { ADMIN_USAGE, EXIT, extractAdminFlags, runAdmin } from "./admin.ts";

/** Path of the site secret for `config`. */
export function secretPath(config: Config): string {
  return config.auth.secret_file || join(config.store.dir, "site.secret");
}

/** The outbox summary read straight from the database files in `dir` (gateway not running); null without any. */
function readLocalOutbox(dir: string, limit: number): { summary: OutboxSummary; source: string } | null {
  const files = databaseFiles(dir);
  if (!files.length) return null;
  const dbs = files.map((f) => new Database(f, { readonly: true }));
  try {
    return { summary: summarizeOutbox(dbs.filter(hasOutbox), limit), source: files.join(", ") };
  } finally {
    for (const db of dbs) db.close();
  }
}

/** Runs an admin command against the running gateway's control API. */
export async function adminCommand(command: string, argv: string[]): Promise<number> {
  const err = (t: string) => void process.stderr.write(t + "\n");
  const out = (t: string) => void process.stdout.write(t + "\n");
  let split;
  try {
    split = extractAdminFlags(argv);
  } catch (e) {
    err(`${(e as Error).message}\n${ADMIN_USAGE[command]}`);
    return EXIT.usage;
  }
  let loaded;
  try {
    loaded = loadConfig(split.rest, process.env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    err(e.message);
    return EXIT.usage;
  }
  if (loaded.help) {
    out(`${ADMIN_USAGE[command]}\n\nConnection options (also from the config file and OWSLA_* variables):\n  --api-host HOST   control API address (default 127.0.0.1)\n  --api-port PORT   control API port (default 8080)\n  --api-token TOKEN bearer token (default: read from <data>/api.token)\n  --data DIR        data directory holding api.token (default ./data)\n  --json            print JSON instead of text\nExit codes: 0 ok, 1 refused by the gateway (not found, not connected, timeout, rate limited), 2 usage, 3 gateway unreachable, 4 unauthorized.`);
    return EXIT.ok;
  }
  const c = loaded.config;
  let token = c.api.token;
  if (!token) {
    try {
      token = readFileSync(join(c.store.dir, "api.token"), "utf8").trim();
    } catch {
      err(`No API token: ${join(c.store.dir, "api.token")} is missing. Pass --api-token, or --data pointing at the gateway's data directory.`);
      return EXIT.unauthorized;
    }
  }
  const host = c.api.host === "0.0.0.0" ? "127.0.0.1" : c.api.host.includes(":") ? `[${c.api.host}]` : c.api.host;
  return await runAdmin(command, loaded.positionals, split.flags, {
    baseUrl: `http://${host}:${c.api.port}`,
    token,
    json: split.flags.json,
    out,
    err,
    localOutbox: (limit) => readLocalOutbox(c.store.dir, limit),
  });
}
