/** Hiding secrets (the broker password, the API token) before anything is logged or shown. */

import { SCHEMA, type KeySpec } from "./schema.ts";
import { splitUrlList } from "./url-list.ts";
import type { Config } from "./types.ts";

/** What replaces a hidden secret. */
export const REDACTED = "***";

/**
 * Returns `url` with the password of its user info replaced by `***`:
 * `amqp://guest:guest@host:5672` → `amqp://guest:***@host:5672`. A URL without a
 * password is returned unchanged; a comma-separated list has each URL redacted. Parsing is deliberately loose so that a malformed
 * URL hides too much rather than too little.
 */
export function redactUrl(url: string): string {
  const list = splitUrlList(url);
  if (list.length > 1) return list.map(redactOne).join(",");
  return redactOne(url);
}

function redactOne(url: string): string {
  const scheme = url.indexOf("://");
  const head = scheme < 0 ? "" : url.slice(0, scheme + 3);
  const rest = scheme < 0 ? url : url.slice(scheme + 3);
  const at = rest.lastIndexOf("@");
  if (at < 0) return url;
  const colon = rest.indexOf(":");
  if (colon < 0 || colon > at) return url;
  return `${head}${rest.slice(0, colon)}:${REDACTED}${rest.slice(at)}`;
}

/** A value of `spec` made safe to show: secrets hidden, everything else as is. */
export function redactValue(spec: KeySpec, value: unknown): unknown {
  if (spec.secret === "url" && typeof value === "string") return redactUrl(value);
  if (spec.secret === "url" && Array.isArray(value)) return value.map((v) => (typeof v === "string" ? redactUrl(v) : REDACTED));
  if (spec.secret === "value") return value === "" ? "" : REDACTED;
  return value;
}

/** The configuration as plain sections, with secrets hidden; for the startup log line. */
export function describeConfig(c: Config): Record<string, unknown> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const spec of SCHEMA) {
    const section = c[spec.section] as unknown as Record<string, unknown>;
    (out[spec.section] ??= {})[spec.key] = redactValue(spec, section[spec.key]);
  }
  return out;
}
