/**
 * The supervisor ⇄ worker IPC protocol. Messages are JSON objects tagged by `t`; the tags
 * below are reserved, any other message is application traffic and is passed through.
 *
 * supervisor → worker: `{t:"ping", n}` every heartbeat, `{t:"shutdown"}` on stop.
 * worker → supervisor: `{t:"pong", n}` answering a ping, `{t:"ready"}` once listening.
 */

/** A heartbeat probe; the worker answers with a {@link Pong} carrying the same `n`. */
export type Ping = { t: "ping"; n: number };
/** Answer to a {@link Ping}. */
export type Pong = { t: "pong"; n: number };
/** The worker is listening and can take connections. */
export type Ready = { t: "ready" };
/** Stop gracefully: stop accepting, drain, exit. */
export type Shutdown = { t: "shutdown" };

/** Tags reserved by the supervisor protocol. */
export const RESERVED_TAGS: ReadonlySet<string> = new Set(["ping", "pong", "ready", "shutdown"]);

/** Returns the `t` tag of a message when it is one of the reserved protocol tags, else undefined. */
export function protocolTag(msg: unknown): "ping" | "pong" | "ready" | "shutdown" | undefined {
  if (typeof msg !== "object" || msg === null) return undefined;
  const t = (msg as { t?: unknown }).t;
  return typeof t === "string" && RESERVED_TAGS.has(t) ? (t as "ping" | "pong" | "ready" | "shutdown") : undefined;
}
