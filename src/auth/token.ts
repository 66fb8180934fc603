/**
 * Device tokens: an HMAC-SHA256 of the hardware id under the site secret, so the listener
 * verifies a token without any lookup. The secret lives in a file in the data directory,
 * created on first start; gateways of one site share it by copying that file.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

const CONTEXT = "owsla-device-token/v1:";

/** Mints the token for `hardwareId` under `secret`. */
export function mintToken(secret: Uint8Array, hardwareId: string): string {
  return createHmac("sha256", secret).update(CONTEXT + hardwareId).digest("base64url");
}

/** Checks `token` for `hardwareId` in constant time. */
export function verifyToken(secret: Uint8Array, hardwareId: string, token: string): boolean {
  const want = Buffer.from(mintToken(secret, hardwareId));
  const got = Buffer.from(token);
  return got.length === want.length && timingSafeEqual(got, want);
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
  mkdirSync(dirname(path), { recursive: true });
  try {
    writeFileSync(path, randomBytes(32).toString("hex") + "\n", { flag: "wx", mode: 0o600 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") {
      throw new Error(`Cannot create site secret ${path}: ${(e as Error).message}; check that the data directory is writable`);
    }
  }
  const created = read();
  if (!created) throw new Error(`Site secret ${path} vanished while starting; check what else writes to the data directory`);
  return created;
}
