/**
 * What a hardware id may be, for the device `hello` and the control API alike: 1 to
 * {@link MAX_HARDWARE_ID} characters of well-formed Unicode without control or format
 * characters. Ids are printed in logs, the `devices` table and the dashboard: a newline, an
 * ESC sequence or a bidi override there would forge or garble what operators read.
 *
 * @module
 */

/** Longest hardware id, in characters (UTF-16 code units). */
export const MAX_HARDWARE_ID = 256;

/**
 * Characters refused in a hardware id: controls (C0, DEL, C1: `\p{Cc}`), format characters
 * (bidi overrides, zero-width characters, BOM: `\p{Cf}`) and the line/paragraph separators.
 */
const FORBIDDEN = /[\p{Cc}\p{Cf}\u2028\u2029]/u;

/** What a valid hardware id is, completing "must be …" in error messages. */
export const HARDWARE_ID_RULE = `a string of 1 to ${MAX_HARDWARE_ID} characters without control or format characters (well-formed Unicode)`;

/** Whether `v` is a valid hardware id. */
export function isHardwareId(v: unknown): v is string {
  return typeof v === "string" && v.length >= 1 && v.length <= MAX_HARDWARE_ID && v.isWellFormed() && !FORBIDDEN.test(v);
}
