/**
 * Device tokens: an HMAC-SHA256 of the hardware id under the site secret, so the listener
 * verifies a token without any lookup. The secret lives in a file in the data directory,
 * created on first start; gateways of one site share it by copying that file.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { closeSync, fsyncSync, openSync, readFileSync, writeSync } from "node:fs";
import { makePrivateDir } from "../store/private-files.ts";

/** Creates `path` exclusively with `text`, mode 0600, and fsyncs it (it must survive a power cut). */
function writeNewFileDurably(path: string, text: string): void {
  const fd = openSync(path, "wx", 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    const dir = openSync(dirname(path), "r");
    fsyncSync(dir);
    closeSync(dir);
  } catch {
    // Directory fsync is best effort.
  }
}
import { dirname } from "node:path";

/** MAC context of generation-0 tokens (the original format, kept so issued tokens keep working). */
const CONTEXT_V1 = "owsla-device-token/v1:";
/** MAC context of tokens of generation 1 and above. */
const CONTEXT_V2 = "owsla-device-token/v2\0";

/**
 * Mints the token for `hardwareId` under `secret`. Generation 0 is the original token;
 * revoking a device raises its generation, and only tokens of the current generation work.
 * Tokens of generation g > 0 look like `<g>.<mac>`.
 *
 * Generation 0 MACs `v1:<hardware id>` (unambiguous: nothing else follows the id). Generation
 * g > 0 MACs an encoding that cannot be confused with another (id, generation) pair or with a
 * generation-0 input: its own context, the id's UTF-8 length as 4 bytes, the id, and g as 8
 * bytes. (Before, `<id>#<g>` let the token of id `lock-9#1000` pass as generation 1000 of
 * `lock-9`.)
 */
export function mintToken(secret: Uint8Array, hardwareId: string, generation = 0): string {
  if (generation === 0) return createHmac("sha256", secret).update(CONTEXT_V1 + hardwareId).digest("base64url");
  return `${generation}.${createHmac("sha256", secret).update(macInputV2(hardwareId, generation)).digest("base64url")}`;
}

/** The MAC input of a generation-g token (g > 0): context, id length, id, generation. */
function macInputV2(hardwareId: string, generation: number): Buffer {
  const id = Buffer.from(hardwareId, "utf8");
  const head = Buffer.alloc(CONTEXT_V2.length + 4);
  head.write(CONTEXT_V2, 0, "latin1");
  head.writeUInt32BE(id.length, CONTEXT_V2.length);
  const gen = Buffer.alloc(8);
  gen.writeBigUInt64BE(BigInt(generation));
  return Buffer.concat([head, id, gen]);
}

/** The generation a token claims (0 for an original token), or -1 when malformed. */
export function tokenGeneration(token: string): number {
  const dot = token.indexOf(".");
  if (dot < 0) return 0;
  const g = Number(token.slice(0, dot));
  return Number.isSafeInteger(g) && g > 0 ? g : -1;
}

/**
 * Checks `token` for `hardwareId` in constant time. Only a token of `generation` (the device's
 * current one, 0 unless it was revoked) is accepted: older ones were revoked, newer ones were
 * never issued.
 */
export function verifyToken(secret: Uint8Array, hardwareId: string, token: string, generation = 0): boolean {
  if (tokenGeneration(token) !== generation) return false;
  const want = Buffer.from(mintToken(secret, hardwareId, generation));
  const got = Buffer.from(token);
  return got.length === want.length && timingSafeEqual(got, want);
}

/**
 * Reads the API bearer token from `path`, creating it (random, mode 0600) when missing.
 * Returns the token and whether it was created now.
 */
export function loadOrCreateApiToken(path: string): { token: string; created: boolean } {
  try {
    return { token: readFileSync(path, "utf8").trim(), created: false };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  makePrivateDir(dirname(path), false);
  // Hex: a token must work as a separate command-line argument (`--api-token TOKEN`), and the
  // argument parser takes a value starting with "-" (1 base64url token in 64) for a flag.
  const token = randomBytes(24).toString("hex");
  try {
    writeNewFileDurably(path, token + "\n");
    return { token, created: true };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") {
      throw new Error(`Cannot create API token file ${path}: ${(e as Error).message}; check that the data directory is writable`);
    }
    return { token: readFileSync(path, "utf8").trim(), created: false };
  }
}

/**
 * Reads the site secret from `path`, creating it (32 random bytes, hex, mode 0600) when
 * missing. Safe when several processes start at once: creation is exclusive.
 */
export function loadOrCreateSecret(path: string): Uint8Array {
  const read = (): Uint8Array | null => {
    try {
      const text = readFileSync(path, "utf8").trim();
      if (!/^[0-9a-f]{64,}$/i.test(text)) {
        throw new Error(`Site secret file ${path} is malformed: expected at least 64 hex characters; restore it from a backup or delete it to create a new one (existing device tokens then stop working)`);
      }
      return Buffer.from(text, "hex");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw e;
    }
  };
  const existing = read();
  if (existing) return existing;
  makePrivateDir(dirname(path), false);
  try {
    writeNewFileDurably(path, randomBytes(32).toString("hex") + "\n");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") {
      throw new Error(`Cannot create site secret ${path}: ${(e as Error).message}; check that the data directory is writable`);
    }
  }
  const created = read();
  if (!created) throw new Error(`Site secret ${path} vanished while starting; check what else writes to the data directory`);
  return created;
}
