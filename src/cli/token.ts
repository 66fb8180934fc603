/**
 * `owsla token <hardware-id>`: prints the token a device presents in hello, for its current
 * generation, from the site secret in the data directory. It only reads: it never creates a
 * site secret unless told to (`--create-secret`), and never clears a revocation (a revoked
 * device gets a new token through the running gateway, which records the re-issue).
 */
import { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { PROCESS_IO, loadCommandConfig, type CommandIo } from "./command-config.ts";
import type { Config } from "../config/types.ts";
import { DB_FILE } from "../store/db.ts";
import { deviceUuid } from "../identity/identity.ts";
import { loadOrCreateSecret, mintToken } from "../auth/token.ts";
import { HARDWARE_ID_RULE, isHardwareId } from "../protocol/hardware-id.ts";
import { secretPath } from "./commands.ts";

/** Usage of `owsla token`. */
export const TOKEN_USAGE = `Usage: owsla token <hardware-id> [--data DIR] [--create-secret] [--config FILE]
Prints the token a device with that hardware id presents in hello (its current generation),
from the site secret in the data directory (or auth.secret_file).
  --data DIR        the gateway's data directory (default ./data)
  --create-secret   create a new site secret when there is none (a new site: tokens minted
                    under any other secret do not work with it)
Exit codes: 0 printed, 1 refused (no site secret, device revoked), 2 usage.
A revoked device's token is re-issued by the running gateway (POST /api/v1/devices/<id>/token),
which clears the revoked mark; this command never does.`;

/** A device's token state in the site database: its generation and whether it is revoked. */
export function tokenState(dir: string, id: string): { generation: number; revoked: boolean } {
  const path = join(dir, DB_FILE);
  if (!existsSync(path)) return { generation: 0, revoked: false };
  const db = new Database(path, { readonly: true });
  try {
    const row = db.query<{ token_gen: number; revoked: number }, [string]>("SELECT token_gen, revoked FROM devices WHERE id = ?").get(id);
    return { generation: row?.token_gen ?? 0, revoked: row?.revoked === 1 };
  } finally {
    db.close();
  }
}

/** Runs `owsla token` with its arguments; returns the exit code. */
export function tokenMain(argv: string[], { out, err }: CommandIo = PROCESS_IO): number {
  const createSecret = argv.includes("--create-secret");
  const loaded = loadCommandConfig(argv.filter((a) => a !== "--create-secret"), TOKEN_USAGE, 1, { out, err });
  if (typeof loaded === "number") return loaded;
  const hw = loaded.positionals[0]!;
  if (!isHardwareId(hw)) {
    err(`Invalid hardware id ${JSON.stringify(hw)}: it must be ${HARDWARE_ID_RULE}.\n`);
    return 2;
  }
  return printToken(loaded.config, hw, createSecret, out, err);
}

function printToken(config: Config, hw: string, createSecret: boolean, out: (s: string) => void, err: (s: string) => void): number {
  const secretFile = secretPath(config);
  if (!existsSync(secretFile) && !createSecret) {
    err(
      `No site secret at ${secretFile}: ${existsSync(config.store.dir) ? "the data directory has none" : `the data directory ${config.store.dir} does not exist`}. ` +
        "Point --data at the gateway's data directory (where it keeps site.secret), or pass --create-secret to start a new site secret.\n",
    );
    return 1;
  }
  const id = deviceUuid(config.gateway.site_namespace, hw);
  const state = tokenState(config.store.dir, id);
  if (state.revoked) {
    err(
      `Device ${hw} (${id}) is revoked: its tokens no longer work, and this command does not lift that. ` +
        `Re-issue its token through the running gateway: POST /api/v1/devices/${id}/token (it then prints here too).\n`,
    );
    return 1;
  }
  out(mintToken(loadOrCreateSecret(secretFile), hw, state.generation) + "\n");
  return 0;
}
