/**
 * Device identity: a hardware id maps to the same UUID (v5 in the site namespace) on every
 * gateway of the site; anonymous devices get a random UUID they can present again as `resume`.
 */
import { parse as parseUuid, v4 as uuidv4, v7 as uuidv7, validate } from "uuid";

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const utf8 = new TextEncoder();
let nsCache: { text: string; bytes: Uint8Array } | null = null;

/**
 * The UUID of the device with `hardwareId` in the site whose namespace is `siteNamespace`:
 * UUID v5 (RFC 9562: SHA-1 of namespace and name, version and variant bits set). Computed
 * here with Bun's native SHA-1 instead of the `uuid` package's, which costs several
 * allocations per call on the welcome path; `identity.test.ts` checks both agree.
 */
export function deviceUuid(siteNamespace: string, hardwareId: string): string {
  if (nsCache?.text !== siteNamespace) nsCache = { text: siteNamespace, bytes: parseUuid(siteNamespace) };
  const h = new Bun.CryptoHasher("sha1");
  h.update(nsCache.bytes);
  h.update(utf8.encode(hardwareId));
  const b = h.digest() as Uint8Array;
  b[6] = (b[6]! & 0x0f) | 0x50;
  b[8] = (b[8]! & 0x3f) | 0x80;
  return (
    HEX[b[0]!]! + HEX[b[1]!]! + HEX[b[2]!]! + HEX[b[3]!]! + "-" + HEX[b[4]!]! + HEX[b[5]!]! + "-" + HEX[b[6]!]! + HEX[b[7]!]! + "-" +
    HEX[b[8]!]! + HEX[b[9]!]! + "-" + HEX[b[10]!]! + HEX[b[11]!]! + HEX[b[12]!]! + HEX[b[13]!]! + HEX[b[14]!]! + HEX[b[15]!]!
  );
}

/** A fresh identity for an anonymous device. */
export function freshDeviceUuid(): string {
  return uuidv4();
}

/** A new time-ordered message id (UUID v7). */
export function messageId(): string {
  return uuidv7();
}

/** A new connection id (random UUID v4, from the runtime's native generator). */
export function connectionId(): string {
  return crypto.randomUUID();
}

/** Whether `s` is a UUID. */
export function isUuid(s: string): boolean {
  return validate(s);
}
