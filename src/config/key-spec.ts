/**
 * The shape of one configuration key ({@link KeySpec}) and {@link def}, which derives its
 * dotted name, environment variable and flag from section and key.
 */
import type { Config } from "./types.ts";

/** Kinds of value a key can hold. */
export type ValueType = "string" | "int" | "number" | "bool" | "enum";

/** A configuration value. */
export type Value = string | number | boolean;

/** A TOML section name. */
export type Section = keyof Config;

/** The key names of one section. */
export type KeyOf<S extends Section> = keyof Config[S] & string;

/** Description of one configuration key. */
export interface KeySpec<S extends Section = Section, K extends string = string> {
  readonly section: S;
  readonly key: K;
  /** Dotted name used in messages, `device.port`. */
  readonly name: `${S}.${K}`;
  /** Environment variable, `OWSLA_DEVICE_PORT`. */
  readonly env: string;
  /** Long flag without dashes, `device-port`. */
  readonly flag: string;
  /** Short alias flag without dashes, `port`. */
  readonly alias?: string;
  readonly type: ValueType;
  /** The default, or a function computing it (e.g. from the hostname). */
  readonly default: Value | (() => Value);
  /** How help shows a computed default. */
  readonly defaultDoc?: string;
  /** One line for help and the example file. */
  readonly doc: string;
  /** Inclusive bounds for `int` and `number`. */
  readonly min?: number;
  readonly max?: number;
  /** Allowed values for `enum`. */
  readonly values?: readonly string[];
  /** Pattern a `string` must match. */
  readonly pattern?: RegExp;
  /** What `pattern` requires, in words: "must be <expect>". */
  readonly expect?: string;
  /** How the value is hidden in logs and errors: `url` hides a URL's password, `value` all of it. */
  readonly secret?: "url" | "value";
  /**
   * A `string` key that holds a list: a TOML array of strings, or one string with the items
   * separated by `, ` (environment, flags; see `url-list.ts`). Each item must match `pattern`;
   * the resolved value is the items joined by ",".
   */
  readonly list?: boolean;
}

interface Options<T> {
  type: ValueType;
  default: T | (() => T);
  defaultDoc?: string;
  doc: string;
  min?: number;
  max?: number;
  values?: readonly T[];
  pattern?: RegExp;
  expect?: string;
  secret?: "url" | "value";
  alias?: string;
  list?: boolean;
}

export function def<S extends Section, K extends KeyOf<S>>(section: S, key: K, o: Options<Config[S][K]>): KeySpec<S, K> {
  return {
    ...(o as Omit<Options<Config[S][K]>, "default" | "values">),
    default: o.default as Value | (() => Value),
    values: o.values as readonly string[] | undefined,
    section,
    key,
    name: `${section}.${key}`,
    env: `OWSLA_${section}_${key}`.toUpperCase(),
    flag: `${section}-${key}`.replaceAll("_", "-"),
  };
}
