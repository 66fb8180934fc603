/**
 * Validation of path ids, query parameters and JSON bodies. Every function throws an
 * {@link ApiError} `bad_request` whose message names the offending field and what it must be.
 *
 * @module
 */
import type { Context } from "hono";
import { isUuid } from "../identity/identity.ts";
import { HARDWARE_ID_RULE, isHardwareId } from "../protocol/hardware-id.ts";
import { ApiError } from "./errors.ts";
import { UUID_EXAMPLE } from "./limits.ts";

/** A JSON object read from a request body. */
export type JsonObject = Record<string, unknown>;

function bad(message: string): ApiError {
  return new ApiError("bad_request", message);
}

/** A short, safe rendering of a received value for an error message. */
export function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v);
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  return String(v);
}

function isPlainObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The `:id` path parameter as a lower-case UUID. */
export function deviceIdParam(c: Context): string {
  const id = c.req.param("id") ?? "";
  if (!isUuid(id)) throw bad(`Invalid device id ${show(id)}: it must be a UUID such as ${UUID_EXAMPLE}`);
  return id.toLowerCase();
}

/**
 * Reads the body as a JSON object whose keys are all in `allowed`.
 * Rejects an empty body, invalid JSON, a non-object and unknown fields.
 */
export async function readJsonObject(c: Context, allowed: readonly string[]): Promise<JsonObject> {
  const fields = allowed.join(", ");
  const text = await c.req.text();
  if (text.trim() === "") throw bad(`Request body is empty; send a JSON object with the fields ${fields}`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw bad(`Request body is not valid JSON; send a JSON object with the fields ${fields}`);
  }
  if (!isPlainObject(value)) throw bad(`Request body must be a JSON object, got ${show(value)}; use the fields ${fields}`);
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw bad(`Unknown field ${show(key)} in request body; allowed fields: ${fields}`);
  }
  return value;
}

function fieldError(name: string, what: string, v: unknown): ApiError {
  return v === undefined
    ? bad(`Field "${name}" is missing; it must be ${what}`)
    : bad(`Field "${name}" must be ${what}, got ${show(v)}`);
}

/**
 * Whether `v` is a string of `1..max` characters that is well-formed Unicode (a lone UTF-16
 * surrogate cannot be encoded as UTF-8: SQLite would store U+FFFD instead, hashing throws).
 */
function isText(v: unknown, max: number): v is string {
  return typeof v === "string" && v.length >= 1 && v.length <= max && v.isWellFormed();
}

/** A required hardware id field (the device protocol's rule: no control characters). */
export function hardwareIdField(o: JsonObject, name: string): string {
  const v = o[name];
  if (!isHardwareId(v)) throw fieldError(name, HARDWARE_ID_RULE, v);
  return v;
}

/** An optional string field of `1..max` characters; `null` is kept (it clears the value). */
export function optionalText(o: JsonObject, name: string, max: number): string | null | undefined {
  const v = o[name];
  if (v === undefined || v === null) return v;
  if (!isText(v, max)) throw fieldError(name, `a well-formed string of 1 to ${max} characters, or null`, v);
  return v;
}

/** An optional JSON object field. */
export function optionalObject(o: JsonObject, name: string): JsonObject | undefined {
  const v = o[name];
  if (v === undefined) return undefined;
  if (!isPlainObject(v)) throw fieldError(name, "a JSON object", v);
  return v;
}

/** An optional integer field in `min..max`. */
export function optionalInt(o: JsonObject, name: string, min: number, max: number): number | undefined {
  const v = o[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw fieldError(name, `an integer from ${min} to ${max}`, v);
  }
  return v;
}

/** An optional field matching `pattern` with at most `max` characters. */
export function optionalPattern(
  o: JsonObject,
  name: string,
  pattern: RegExp,
  max: number,
  what: string,
): string | undefined {
  const v = o[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string" || v.length > max || !pattern.test(v)) throw fieldError(name, what, v);
  return v;
}

/** A query parameter as a string; absent or empty reads as undefined. */
export function queryString(c: Context, name: string): string | undefined {
  const v = c.req.query(name);
  return v === undefined || v === "" ? undefined : v;
}

/** An integer query parameter in `min..max`, `fallback` when absent. */
export function queryInt(c: Context, name: string, min: number, max: number, fallback: number): number {
  const v = queryString(c, name);
  if (v === undefined) return fallback;
  const n = /^\d{1,15}$/.test(v) ? Number(v) : Number.NaN;
  if (!(n >= min && n <= max)) {
    throw bad(`Query parameter "${name}" must be an integer from ${min} to ${max}, got ${show(v)}`);
  }
  return n;
}

/** A `true`/`false` query parameter; undefined when absent. */
export function queryBool(c: Context, name: string): boolean | undefined {
  const v = queryString(c, name);
  if (v === undefined) return undefined;
  if (v === "true") return true;
  if (v === "false") return false;
  throw bad(`Query parameter "${name}" must be true or false, got ${show(v)}`);
}

/** A query parameter that must be one of `values`; undefined when absent. */
export function queryEnum<T extends string>(c: Context, name: string, values: readonly T[]): T | undefined {
  const v = queryString(c, name);
  if (v === undefined) return undefined;
  if (!(values as readonly string[]).includes(v)) {
    throw bad(`Query parameter "${name}" must be ${values.join(" or ")}, got ${show(v)}`);
  }
  return v as T;
}
