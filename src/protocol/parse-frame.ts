/**
 * Validation of device→gateway frames. Re-exported by `frames.ts`; import it from there.
 *
 * @module
 */

import type { AckFrame, DeviceFrame, HelloFrame, ParseResult, PubFrame } from "./frames.ts";
import { HARDWARE_ID_RULE, isHardwareId } from "./hardware-id.ts";

/** Longest `token` in characters. */
const MAX_TOKEN = 512;
/**
 * Longest `topic` in characters (ASCII only). The AMQP routing key
 * `<gateway-id>.<device-uuid>.<topic>` must fit in 255 bytes: 64 + 1 + 36 + 1 + 128 = 230.
 */
const MAX_TOPIC = 128;
/** Longest `ref` in characters. */
const MAX_REF = 128;
/** Longest `ref` of an `ack`: command ids are AMQP message ids, up to 255 bytes. */
const MAX_ACK_REF = 255;
/** Longest `ref` in UTF-8 bytes: `correlation_id` `<device-uuid>:<ref>` must fit in 255 bytes. */
const MAX_REF_BYTES = 200;

const TOPIC = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const UUID_EXAMPLE = "0b9e7c1e-3f4a-4c1d-9a7b-2e5f6a7b8c9d";
const OPS = "hello, pub, ack, ping, bye";

/** Thrown inside this module only, to stop at the first invalid field. */
class Invalid {
  constructor(readonly message: string, readonly close = false) {}
}

/** A short, safe rendering of a received value for an error message. */
function show(v: unknown): string {
  if (typeof v === "string") {
    // JSON escapes controls; format characters (bidi overrides) are escaped here as well.
    const quoted = JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v);
    return quoted.replace(/[\p{Cf}\u2028\u2029]/gu, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  }
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  return String(v);
}

/** The error for field `name` of an `op` frame, which must be `what` but holds `v`. */
function invalid(op: string, name: string, what: string, v: unknown): Invalid {
  return v === undefined
    ? new Invalid(`Invalid ${op} frame: field "${name}" is missing; it must be ${what}`)
    : new Invalid(`Invalid ${op} frame: field "${name}" must be ${what}, got ${show(v)}`);
}

/**
 * True for a well-formed string (no lone UTF-16 surrogates, which cannot be encoded as UTF-8
 * and break hashing and AMQP encoding) of `min..max` characters.
 */
function isString(v: unknown, min: number, max: number): v is string {
  return typeof v === "string" && v.length >= min && v.length <= max && v.isWellFormed();
}

function parseHello(o: Record<string, unknown>): HelloFrame {
  if (o.v !== 1) {
    const got = o.v === undefined ? `field "v" is missing` : `got ${show(o.v)}`;
    throw new Invalid(`Unsupported protocol version: ${got}; send "v":1 in hello`, true);
  }
  const frame: HelloFrame = { op: "hello", v: 1 };
  const { device, token, resume } = o;
  if (device != null) {
    if (!isHardwareId(device)) throw invalid("hello", "device", HARDWARE_ID_RULE, device);
    frame.device = device;
  }
  if (token != null) {
    if (!isString(token, 0, MAX_TOKEN)) {
      throw invalid("hello", "token", `a string of at most ${MAX_TOKEN} characters`, token);
    }
    frame.token = token;
  }
  if (resume != null) {
    if (typeof resume !== "string" || !UUID.test(resume)) {
      throw invalid("hello", "resume", `a UUID such as ${UUID_EXAMPLE}`, resume);
    }
    frame.resume = resume.toLowerCase();
  }
  return frame;
}

function parsePub(o: Record<string, unknown>): PubFrame {
  const { topic, body, ref } = o;
  if (typeof topic !== "string" || topic.length > MAX_TOPIC || !TOPIC.test(topic)) {
    const what = `segments of [A-Za-z0-9_-] joined by "." (at most ${MAX_TOPIC} characters), such as "sensors.temp"`;
    throw invalid("pub", "topic", what, topic);
  }
  const frame: PubFrame = { op: "pub", topic, body: body === undefined ? null : body };
  if (ref != null) {
    if (!isString(ref, 1, MAX_REF) || Buffer.byteLength(ref) > MAX_REF_BYTES) {
      throw invalid("pub", "ref", `a string of 1 to ${MAX_REF} characters and at most ${MAX_REF_BYTES} bytes in UTF-8`, ref);
    }
    frame.ref = ref;
  }
  return frame;
}

function parseAck(o: Record<string, unknown>): AckFrame {
  const { ref } = o;
  if (!isString(ref, 1, MAX_ACK_REF)) {
    throw invalid("ack", "ref", `a string of 1 to ${MAX_ACK_REF} characters (the id of a cmd)`, ref);
  }
  return { op: "ack", ref };
}

/** The frame's `ref` when it is a valid ref, for echoing in an error. */
function refOf(o: Record<string, unknown>): string | undefined {
  return isString(o.ref, 1, MAX_REF) && Buffer.byteLength(o.ref) <= MAX_REF_BYTES ? o.ref : undefined;
}

function fail(code: "bad_frame" | "unknown_op", message: string, close: boolean, ref?: string): ParseResult {
  return ref === undefined ? { ok: false, code, message, close } : { ok: false, code, message, close, ref };
}

/**
 * Parses and validates one line from a device.
 *
 * - Invalid JSON, a non-object, or a missing/non-string `op`: `bad_frame`, close.
 * - An unknown `op`: `unknown_op`, stay open.
 * - `hello` without `"v":1`: `bad_frame`, close.
 * - A known `op` with an invalid field: `bad_frame`, stay open; the message
 *   names the field and what it must be.
 *
 * Unknown fields are ignored and dropped from the returned frame. An absent or
 * `null` optional field counts as absent. Never throws.
 */
export function parseFrame(text: string): ParseResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const why = e instanceof RangeError ? "it is nested too deeply" : "it is not valid JSON";
    return fail("bad_frame", `Cannot parse frame: ${why}; send one JSON object per line`, true);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return fail("bad_frame", `Cannot parse frame: expected a JSON object, got ${show(value)}; send {"op":...} objects`, true);
  }
  const o = value as Record<string, unknown>;
  const op = o.op;
  if (typeof op !== "string") {
    const got = op === undefined ? `field "op" is missing` : `field "op" must be a string, got ${show(op)}`;
    return fail("bad_frame", `Cannot parse frame: ${got}; use one of ${OPS}`, true);
  }
  try {
    let frame: DeviceFrame;
    switch (op) {
      case "hello":
        frame = parseHello(o);
        break;
      case "pub":
        frame = parsePub(o);
        break;
      case "ack":
        frame = parseAck(o);
        break;
      case "ping":
        frame = { op: "ping" };
        break;
      case "bye":
        frame = { op: "bye" };
        break;
      default:
        return fail("unknown_op", `Unknown op ${show(op)}; use one of ${OPS}`, false, refOf(o));
    }
    return { ok: true, frame };
  } catch (e) {
    if (e instanceof Invalid) return fail("bad_frame", e.message, e.close, refOf(o));
    return fail("bad_frame", "Cannot parse frame: it could not be validated; send one JSON object per line", true);
  }
}
