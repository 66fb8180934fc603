/**
 * Checking one configuration value against its key's spec: type, range, pattern and lists,
 * whether it came typed from TOML or as text from the environment or a flag.
 */
import type { KeySpec, Value } from "./schema.ts";
import { splitUrlList } from "./url-list.ts";

/** What a valid value of `spec` looks like, completing "must be …". `text` = parsed from a string. */
export function expectation(spec: KeySpec, text: boolean): string {
  switch (spec.type) {
    case "int":
      return `an integer between ${spec.min} and ${spec.max}`;
    case "number":
      return `a number between ${spec.min} and ${spec.max}`;
    case "bool":
      return text ? "true, false, 1 or 0" : "true or false";
    case "enum":
      return `one of ${(spec.values ?? []).map((v) => JSON.stringify(v)).join(", ")}`;
    case "string":
      return spec.expect ?? "a string";
  }
}

const INT_TEXT = /^[+-]?\d+$/;
const NUMBER_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** Result of {@link checkValue}. */
export type Checked = { ok: true; value: Value } | { ok: false; expected: string };

/**
 * Converts and validates a raw value for `spec`. `text` says the raw value is a
 * string from the environment or a flag (so `"7070"` is an int and `"1"` a bool);
 * otherwise it is a typed TOML value and must already have the right type.
 */
export function checkValue(spec: KeySpec, raw: unknown, text: boolean): Checked {
  const bad: Checked = { ok: false, expected: expectation(spec, text) };
  const inRange = (n: number) => n >= (spec.min ?? -Infinity) && n <= (spec.max ?? Infinity);
  switch (spec.type) {
    case "int":
    case "number": {
      let n: number;
      if (typeof raw === "number") n = raw;
      else if (text && typeof raw === "string" && (spec.type === "int" ? INT_TEXT : NUMBER_TEXT).test(raw)) n = Number(raw);
      else return bad;
      if (!Number.isFinite(n) || (spec.type === "int" && !Number.isInteger(n)) || !inRange(n)) return bad;
      return { ok: true, value: n };
    }
    case "bool":
      if (typeof raw === "boolean") return { ok: true, value: raw };
      if (text && (raw === "true" || raw === "1")) return { ok: true, value: true };
      if (text && (raw === "false" || raw === "0")) return { ok: true, value: false };
      return bad;
    case "enum":
      return typeof raw === "string" && (spec.values ?? []).includes(raw) ? { ok: true, value: raw } : bad;
    case "string": {
      if (spec.list) return checkList(spec, raw, bad);
      if (typeof raw !== "string") return bad;
      return spec.pattern && !spec.pattern.test(raw) ? bad : { ok: true, value: raw };
    }
  }
}

/** A list key: a TOML array of strings or a comma-separated string, each item matching `pattern`. */
function checkList(spec: KeySpec, raw: unknown, bad: Checked): Checked {
  let items: string[];
  if (typeof raw === "string") items = splitUrlList(raw);
  else if (Array.isArray(raw) && raw.every((x) => typeof x === "string")) items = (raw as string[]).map((x) => x.trim());
  else return bad;
  if (items.length === 0 || items.some((x) => spec.pattern !== undefined && !spec.pattern.test(x))) return bad;
  return { ok: true, value: items.join(",") };
}
