/**
 * Limits and defaults of the control API, each a named constant (used by the routes,
 * their validation and the OpenAPI document).
 *
 * @module
 */

/** Largest request body in bytes; larger bodies get 413 `payload_too_large`. */
export const MAX_BODY_BYTES = 64 * 1024;

/** Devices listed by `GET /api/v1/outbox` when `limit` is not given. */
export const DEFAULT_OUTBOX_DEVICES = 20;
/** Largest `limit` of `GET /api/v1/outbox`. */
export const MAX_OUTBOX_DEVICES = 1000;

/** Devices per page when `limit` is not given. */
export const DEFAULT_PAGE_LIMIT = 100;
/** Largest `limit` of a device list. */
export const MAX_PAGE_LIMIT = 1000;

/** Time `wait=ack` waits for the device's ack when `timeout_ms` is not given, in ms. */
export const DEFAULT_ACK_TIMEOUT_MS = 10_000;
/** Largest `timeout_ms` of `wait=ack`, in ms. */
export const MAX_ACK_TIMEOUT_MS = 60_000;

/** Longest `hardware_id`, in characters (as in the device `hello`). */
export { MAX_HARDWARE_ID } from "../protocol/hardware-id.ts";
/** Longest `room`, `kind` or `label`, in characters. */
export const MAX_META_TEXT = 256;
/** Longest command `topic`, in characters (as in the device protocol). */
export const MAX_TOPIC = 200;
/** Longest command `corr`, in characters. */
export const MAX_CORR = 128;
/** Largest command `ttl_s` (30 days, as `broker.command_ttl_s`). */
export const MAX_TTL_S = 30 * 86_400;

/** Topic syntax of the device protocol: `[A-Za-z0-9_-]` segments joined by `.`. */
export const TOPIC_PATTERN = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/;
/** Topic of a command sent without one. */
export const DEFAULT_COMMAND_TOPIC = "cmd";

/** An example UUID for error messages and documentation. */
export const UUID_EXAMPLE = "0b9e7c1e-3f4a-4c1d-9a7b-2e5f6a7b8c9d";
