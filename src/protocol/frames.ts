/**
 * Frames of device protocol v1: their types, validation of device input, and
 * encoding of gateway output. Pure functions; nothing here throws on input.
 *
 * @module
 */

/** `hello`: must be the first frame of a connection. */
export interface HelloFrame {
  op: "hello";
  /** Protocol version; only 1 exists. */
  v: 1;
  /** The device's stable hardware id (1..256 characters). */
  device?: string;
  /** Credential minted for `device` (at most 512 characters). */
  token?: string;
  /** A UUID granted earlier, in lower case. */
  resume?: string;
}

/** `pub`: a message for the back-end. */
export interface PubFrame {
  op: "pub";
  /** Segments of `[A-Za-z0-9_-]+` joined by `.`, at most 200 characters. */
  topic: string;
  /** Any JSON value; `null` when the frame had none. */
  body: unknown;
  /** When present (1..128 characters), the gateway answers `ack` with it once the message is safe. */
  ref?: string;
}

/** `ack`, both directions: device→gateway `ref` is a `cmd` id; gateway→device `ref` is a `pub` ref. */
export interface AckFrame {
  op: "ack";
  /** 1..128 characters. */
  ref: string;
}

/** `ping`: the gateway answers `pong`. */
export interface PingFrame {
  op: "ping";
}

/** `bye`: graceful close. */
export interface ByeFrame {
  op: "bye";
}

/** Any frame a device may send. */
export type DeviceFrame = HelloFrame | PubFrame | AckFrame | PingFrame | ByeFrame;

/** `welcome`: identity granted. */
export interface WelcomeFrame {
  op: "welcome";
  /** Device UUID. */
  id: string;
  /** Fresh UUID for this connection. */
  conn: string;
  /** Gateway id. */
  gateway: string;
  /** Keepalive in seconds. */
  keepalive: number;
}

/** `cmd`: a command or reply from the back-end, delivered at least once. */
export interface CmdFrame {
  op: "cmd";
  /** Message id; the device acks it. */
  id: string;
  topic: string;
  body: unknown;
  /** Correlation id, or `null`. */
  corr: string | null;
}

/** `pong`: answer to `ping`. */
export interface PongFrame {
  op: "pong";
}

/** Every `error` code of protocol v1 (a closed set). */
export const ERROR_CODES = [
  "bad_frame",
  "frame_too_large",
  "hello_timeout",
  "keepalive_timeout",
  "unauthorized",
  "rate_limited",
  "server_busy",
  "not_ready",
  "unknown_op",
  "shutting_down",
  "taken_over",
  "slow_consumer",
] as const;

/** One of {@link ERROR_CODES}. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** `error`: a refusal or a reason for closing. */
export interface ErrorFrame {
  op: "error";
  code: ErrorCode;
  message: string;
  /** Milliseconds to wait before reconnecting (with `server_busy`, `rate_limited`, `shutting_down`). */
  retry_after?: number;
}

/** Any frame the gateway may send. */
export type GatewayFrame = WelcomeFrame | CmdFrame | AckFrame | PongFrame | ErrorFrame;

/**
 * Result of {@link parseFrame}. On failure, `close` says whether the
 * connection must be closed after the error is sent, and `ref` is the frame's
 * own valid `ref`, if it had one, so the error can be correlated.
 */
export type ParseResult =
  | { ok: true; frame: DeviceFrame }
  | { ok: false; code: "bad_frame" | "unknown_op"; message: string; close: boolean; ref?: string };

export { parseFrame } from "./parse-frame.ts";

const utf8 = new TextEncoder();

/**
 * Encodes a gateway frame as one NDJSON line (JSON, `\n`, UTF-8).
 *
 * @throws {TypeError | RangeError} If a `cmd` body cannot be serialised
 * (a BigInt, a cycle, or nesting too deep for JSON.stringify).
 */
export function encodeFrame(frame: GatewayFrame): Uint8Array {
  return utf8.encode(JSON.stringify(frame) + "\n");
}

/**
 * Builds an `error` frame.
 *
 * @param retryAfterMs Sent as `retry_after`; omitted when undefined.
 */
export function errorFrame(code: ErrorCode, message: string, retryAfterMs?: number): ErrorFrame {
  return retryAfterMs === undefined
    ? { op: "error", code, message }
    : { op: "error", code, message, retry_after: retryAfterMs };
}

/**
 * Encodes a `cmd` frame around a body that is already JSON text (as the back-end sent it),
 * without parsing and re-encoding it: numbers such as `1e999999` or large integers reach the
 * device exactly, and a deeply nested body cannot overflow the encoder's stack. `bodyJson`
 * must be valid JSON with no raw line breaks (see {@link compactJsonText}).
 */
export function encodeCommandFrame(id: string, topic: string, bodyJson: string, corr: string | null): Uint8Array {
  return utf8.encode(`{"op":"cmd","id":${JSON.stringify(id)},"topic":${JSON.stringify(topic)},"body":${bodyJson},"corr":${JSON.stringify(corr)}}\n`);
}

/**
 * Makes valid JSON text safe to embed in one NDJSON line: raw CR/LF can only be insignificant
 * whitespace in JSON (inside strings they must be escaped), so they become spaces. Everything
 * else is kept byte for byte.
 */
export function compactJsonText(json: string): string {
  return json.includes("\n") || json.includes("\r") ? json.replace(/[\r\n]/g, " ") : json;
}
