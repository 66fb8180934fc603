/**
 * MQTT topics <-> the gateway's topic words. A device publishes on `a/b/c`, which becomes the
 * line-protocol topic `a.b.c` and the AMQP routing key `<gw>.<uuid>.a.b.c`; a command with
 * AMQP topic `x.y` reaches the device on `cmd/x/y`. Which subscriptions a device may hold is
 * decided here too. Pure functions.
 */

/** Longest upstream topic in characters: the AMQP routing key must fit in 255 bytes (as for `pub`). */
export const MAX_UP_TOPIC = 128;

/** First level of the topics the gateway writes commands to. */
export const COMMAND_ROOT = "cmd";
/** First level of the topics replies may be sent to (MQTT 5 Response Topic). */
export const REPLY_ROOT = "reply";

const LEVEL = /^[A-Za-z0-9_-]+$/;

/** Why a topic name is refused: `invalid` (MQTT 5 0x90) or `not_authorized` (0x87). */
export type TopicRefusal = { ok: false; why: "invalid" | "not_authorized"; message: string };

/** A topic name's levels, or why it is not a usable topic name. */
function levels(topic: string, maxBytes: number, what: string): string[] | TopicRefusal {
  const bad = (message: string): TopicRefusal => ({ ok: false, why: "invalid", message });
  if (Buffer.byteLength(topic) > maxBytes) return bad(`${what} is longer than ${maxBytes} bytes`);
  if (topic.startsWith("$")) return bad(`${what} ${JSON.stringify(topic)} starts with "$" (reserved for the server)`);
  const parts = topic.split("/");
  if (!parts.every((p) => LEVEL.test(p))) return bad(`${what} ${JSON.stringify(topic)} is invalid: use levels of [A-Za-z0-9_-] separated by "/", no wildcards and no empty level`);
  return parts;
}

/**
 * The gateway topic (`a.b.c`) of an upstream PUBLISH on `topic`, or why it is refused:
 * `$` topics, wildcards, empty levels and characters outside `[A-Za-z0-9_-]` are invalid;
 * `cmd/...` and `reply/...` belong to the gateway's downstream (device-to-device publishing is
 * not a gateway's job).
 */
export function upstreamTopic(topic: string, maxBytes: number): { ok: true; word: string } | TopicRefusal {
  const parts = levels(topic, Math.min(maxBytes, MAX_UP_TOPIC), "Topic");
  if (!Array.isArray(parts)) return parts;
  if (parts[0] === COMMAND_ROOT || parts[0] === REPLY_ROOT) {
    return { ok: false, why: "not_authorized", message: `Topic ${JSON.stringify(topic)} is downstream-only: devices publish neither to cmd/... nor reply/... (the gateway does not relay between devices)` };
  }
  return { ok: true, word: parts.join(".") };
}

/** Whether `topic` may be a Response Topic: a valid topic name under `reply/`. */
export function responseTopic(topic: string, maxBytes: number): { ok: true } | TopicRefusal {
  const parts = levels(topic, maxBytes, "Response Topic");
  if (!Array.isArray(parts)) return parts;
  if (parts[0] !== REPLY_ROOT || parts.length < 2) return { ok: false, why: "invalid", message: `Response Topic ${JSON.stringify(topic)} must be under reply/ (for example reply/42)` };
  return { ok: true };
}

/** The MQTT topic of a command with AMQP topic `amqpTopic` (`x.y` -> `cmd/x/y`). */
export function commandTopic(amqpTopic: string): string {
  return `${COMMAND_ROOT}/${amqpTopic.replaceAll(".", "/")}`;
}

/**
 * Whether a device may SUBSCRIBE to `filter`: only filters inside `cmd/#` or `reply/#` (its
 * own commands and replies; a device never sees another's traffic). Wildcards are allowed
 * there, as MQTT places them (`+` a whole level, `#` the last level).
 */
export function subscriptionAllowed(filter: string, maxBytes: number): boolean {
  if (Buffer.byteLength(filter) > maxBytes) return false;
  const parts = filter.split("/");
  if (parts[0] !== COMMAND_ROOT && parts[0] !== REPLY_ROOT) return false;
  return parts.every((p, i) => p === "+" || (p === "#" && i === parts.length - 1) || LEVEL.test(p));
}

/** Whether topic name `topic` matches subscription filter `filter` (MQTT wildcard rules). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split("/");
  const t = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}
