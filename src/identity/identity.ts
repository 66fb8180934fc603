/**
 * Device identity: a hardware id maps to the same UUID (v5 in the site namespace) on every
 * gateway of the site; anonymous devices get a random UUID they can present again as `resume`.
 */
import { v4 as uuidv4, v5 as uuidv5, v7 as uuidv7, validate } from "uuid";

/** The UUID of the device with `hardwareId` in the site whose namespace is `siteNamespace`. */
export function deviceUuid(siteNamespace: string, hardwareId: string): string {
  return uuidv5(hardwareId, siteNamespace);
}

/** A fresh identity for an anonymous device. */
export function freshDeviceUuid(): string {
  return uuidv4();
}

/** A new time-ordered message id (UUID v7). */
export function messageId(): string {
  return uuidv7();
}

/** A new connection id. */
export function connectionId(): string {
  return uuidv4();
}

/** Whether `s` is a UUID. */
export function isUuid(s: string): boolean {
  return validate(s);
}
