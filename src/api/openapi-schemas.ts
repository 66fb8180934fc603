/**
 * The component schemas and shared responses of the OpenAPI document (`openapi.ts` has the
 * paths). Split out to keep each file readable.
 *
 * @module
 */
import {
  DEFAULT_COMMAND_TOPIC,
  MAX_BODY_BYTES,
  MAX_CORR,
  MAX_HARDWARE_ID,
  MAX_META_TEXT,
  MAX_TOPIC,
  MAX_TTL_S,
  TOPIC_PATTERN,
} from "./limits.ts";
import { ERROR_STATUS } from "./errors.ts";

/** A JSON value of the document. */
export type Doc = Record<string, unknown>;

/** A reference to component schema `name`. */
export const ref = (name: string): Doc => ({ $ref: `#/components/schemas/${name}` });
/** A JSON response with `description` and `schema`. */
export const json = (description: string, schema: Doc): Doc => ({ description, content: { "application/json": { schema } } });
/** A nullable `type`. */
export const nullable = (type: string, extra: Doc = {}): Doc => ({ type: [type, "null"], ...extra });

const metaText = (what: string): Doc =>
  nullable("string", { minLength: 1, maxLength: MAX_META_TEXT, description: `${what}; stored in meta.${what.toLowerCase()}. null clears it.` });

const META_FIELDS: Doc = {
  room: metaText("Room"),
  kind: metaText("Kind"),
  label: metaText("Label"),
  meta: { type: "object", additionalProperties: true, description: "More metadata, merged into the device's; room, kind and label override its keys." },
};

/** Component schemas. */
export const SCHEMAS: Doc = {
  Error: {
    type: "object",
    required: ["error"],
    properties: {
      error: {
        type: "object",
        required: ["code", "message"],
        properties: {
          code: { type: "string", enum: Object.keys(ERROR_STATUS), description: "Stable code for programs." },
          message: { type: "string", description: "What went wrong and what to do, for people." },
        },
      },
    },
  },
  Device: {
    type: "object",
    required: ["id", "hardware_id", "connected", "worker", "connection_id", "first_seen", "last_seen", "last_close_reason", "revoked", "meta", "pending_commands"],
    properties: {
      id: { type: "string", format: "uuid" },
      hardware_id: nullable("string", { description: "null for anonymous devices." }),
      connected: { type: "boolean" },
      worker: nullable("integer", { description: "Worker holding the connection." }),
      connection_id: nullable("string", { format: "uuid" }),
      first_seen: { type: "string", format: "date-time" },
      last_seen: { type: "string", format: "date-time" },
      last_close_reason: nullable("string", { description: "Why the last connection closed, e.g. keepalive_timeout, taken_over, kicked." }),
      revoked: { type: "boolean" },
      meta: { type: "object", additionalProperties: true, description: "room, kind, label and other metadata." },
      pending_commands: { type: "integer", minimum: 0, description: "Commands awaiting the device's ack; 0 in lists." },
    },
  },
  DevicePage: {
    type: "object",
    required: ["devices", "next_cursor"],
    properties: {
      devices: { type: "array", items: ref("Device") },
      next_cursor: nullable("string", { description: "Pass as cursor for the next page; null on the last page." }),
    },
  },
  RegisterDevice: {
    type: "object",
    required: ["hardware_id"],
    additionalProperties: false,
    properties: { hardware_id: { type: "string", minLength: 1, maxLength: MAX_HARDWARE_ID }, ...META_FIELDS },
  },
  UpdateDevice: { type: "object", additionalProperties: false, properties: META_FIELDS },
  DeviceWithToken: {
    type: "object",
    required: ["device", "token"],
    properties: { device: ref("Device"), token: { type: ["string", "null"], description: "Credential for the device's hello; null when the device is revoked (re-issue one with POST /api/v1/devices/{id}/token)." } },
  },
  Token: { type: "object", required: ["token"], properties: { token: { type: "string" } } },
  Command: {
    type: "object",
    required: ["body"],
    additionalProperties: false,
    properties: {
      topic: { type: "string", maxLength: MAX_TOPIC, pattern: TOPIC_PATTERN.source, default: DEFAULT_COMMAND_TOPIC },
      body: { description: "Any JSON value (null for none)." },
      corr: nullable("string", { minLength: 1, maxLength: MAX_CORR, description: "Correlation id echoed to the device." }),
      ttl_s: { type: "integer", minimum: 1, maximum: MAX_TTL_S, description: "Time the command waits for the device; default broker.command_ttl_s." },
    },
  },
  CommandAccepted: { type: "object", required: ["id"], properties: { id: { type: "string", description: "Command id; the device acks it." } } },
  CommandAcked: {
    type: "object",
    required: ["id", "acked"],
    properties: { id: { type: "string" }, acked: { type: "boolean", const: true } },
  },
  Kicked: { type: "object", required: ["kicked"], properties: { kicked: { type: "boolean", const: true } } },
  Worker: {
    type: "object",
    required: ["id", "pid", "up", "ready", "restarts", "started_at", "connections", "broker"],
    properties: {
      id: { type: "integer" },
      pid: { type: "integer" },
      up: { type: "boolean" },
      ready: { type: "boolean" },
      restarts: { type: "integer" },
      started_at: { type: "string", format: "date-time" },
      connections: nullable("integer", { description: "null when the worker did not answer." }),
      broker: nullable("string", { enum: ["up", "down", "connecting", "closed", null] }),
    },
  },
  Readiness: {
    type: "object",
    required: ["ready", "workers_ready", "workers", "store", "broker"],
    properties: {
      ready: { type: "boolean" },
      workers_ready: { type: "integer" },
      workers: { type: "integer" },
      store: { type: "string", description: '"ok" or what is wrong.' },
      broker: { type: "object", additionalProperties: { type: "string" }, description: "Link state per worker." },
    },
  },
  Outbox: {
    type: "object",
    required: ["rows", "bytes", "oldest", "oldest_age_s", "devices_total", "devices"],
    properties: {
      rows: { type: "integer", description: "Messages held for the broker." },
      bytes: { type: "integer", description: "Sum of their bodies, in bytes." },
      oldest: nullable("string", { format: "date-time", description: "When the oldest was received; null when empty." }),
      oldest_age_s: nullable("integer", { description: "Its age in seconds; null when empty." }),
      devices_total: { type: "integer", description: "Devices with messages held." },
      devices: {
        type: "array",
        description: "The devices holding most messages, most first.",
        items: {
          type: "object",
          required: ["device_id", "rows", "bytes", "oldest"],
          properties: { device_id: { type: "string", format: "uuid" }, rows: { type: "integer" }, bytes: { type: "integer" }, oldest: { type: "string", format: "date-time" } },
        },
      },
    },
  },
  Stats: {
    type: "object",
    required: [
      "gateway", "version", "uptime_s", "connections", "devices_known", "accepts_total", "welcomes_total",
      "messages_up_total", "messages_down_total", "outbox_depth", "inbox_depth", "broker", "workers",
    ],
    properties: {
      gateway: { type: "string" },
      version: { type: "string" },
      uptime_s: { type: "number" },
      connections: { type: "integer" },
      devices_known: { type: "integer" },
      accepts_total: { type: "integer" },
      welcomes_total: { type: "integer" },
      messages_up_total: { type: "integer" },
      messages_down_total: { type: "integer" },
      outbox_depth: { type: "integer" },
      inbox_depth: { type: "integer" },
      broker: counts(["up", "total", "reconnects"]),
      workers: counts(["up", "total", "restarts"]),
    },
  },
};

function counts(names: string[]): Doc {
  return { type: "object", required: names, properties: Object.fromEntries(names.map((n) => [n, { type: "integer" }])) };
}

/** Component responses. */
export const RESPONSES: Doc = {
  BadRequest: json("Invalid id, query parameter or body (code bad_request); the message names the field.", ref("Error")),
  Unauthorized: json("Missing or wrong bearer token (code unauthorized).", ref("Error")),
  RateLimited: {
    ...json("Too many wrong or missing bearer tokens from this client address within a minute (code rate_limited); the right token is never limited.", ref("Error")),
    headers: { "Retry-After": { description: "Seconds until this address may try another token.", schema: { type: "integer", minimum: 1 } } },
  },
  NotFound: json("No device with this id (code not_found).", ref("Error")),
  PayloadTooLarge: json(`Body larger than ${MAX_BODY_BYTES} bytes (code payload_too_large).`, ref("Error")),
  Internal: json("The gateway failed (code internal).", ref("Error")),
};
