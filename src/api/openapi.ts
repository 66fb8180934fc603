/**
 * The OpenAPI 3.1 description of the control API, served at `GET /api/v1/openapi.json`.
 * `app.test.ts` checks that it lists exactly the routes the app has.
 *
 * @module
 */
import {
  DEFAULT_ACK_TIMEOUT_MS,
  DEFAULT_COMMAND_TOPIC,
  DEFAULT_PAGE_LIMIT,
  MAX_ACK_TIMEOUT_MS,
  MAX_BODY_BYTES,
  DEFAULT_OUTBOX_DEVICES,
  MAX_OUTBOX_DEVICES,
  MAX_CORR,
  MAX_HARDWARE_ID,
  MAX_META_TEXT,
  MAX_PAGE_LIMIT,
  MAX_TOPIC,
  MAX_TTL_S,
  TOPIC_PATTERN,
  UUID_EXAMPLE,
} from "./limits.ts";
import { ERROR_STATUS } from "./errors.ts";

/** A JSON value of the document. */
type Doc = Record<string, unknown>;

/** What the document says about the gateway serving it. */
export interface OpenApiInfo {
  version: string;
  gatewayId: string;
}

const ref = (name: string): Doc => ({ $ref: `#/components/schemas/${name}` });
const json = (description: string, schema: Doc): Doc => ({ description, content: { "application/json": { schema } } });
const errorRef = (name: string): Doc => ({ $ref: `#/components/responses/${name}` });
const nullable = (type: string, extra: Doc = {}): Doc => ({ type: [type, "null"], ...extra });

/** Responses every protected route may give. */
const PROTECTED = { "401": errorRef("Unauthorized"), "429": errorRef("RateLimited"), "500": errorRef("Internal") };
/** Responses of every route taking a device id. */
const BY_ID = { "400": errorRef("BadRequest"), ...PROTECTED, "404": errorRef("NotFound") };
/** Responses of every route reading a JSON body. */
const WITH_BODY = { "400": errorRef("BadRequest"), "413": errorRef("PayloadTooLarge") };

const ID_PARAM: Doc = {
  name: "id",
  in: "path",
  required: true,
  description: "Device UUID.",
  schema: { type: "string", format: "uuid", example: UUID_EXAMPLE },
};

const query = (name: string, description: string, schema: Doc): Doc => ({ name, in: "query", required: false, description, schema });

const body = (schemaName: string, description: string): Doc => ({
  required: true,
  description: `${description} At most ${MAX_BODY_BYTES} bytes; unknown fields are refused.`,
  content: { "application/json": { schema: ref(schemaName) } },
});

const metaText = (what: string): Doc =>
  nullable("string", { minLength: 1, maxLength: MAX_META_TEXT, description: `${what}; stored in meta.${what.toLowerCase()}. null clears it.` });

const META_FIELDS: Doc = {
  room: metaText("Room"),
  kind: metaText("Kind"),
  label: metaText("Label"),
  meta: { type: "object", additionalProperties: true, description: "More metadata, merged into the device's; room, kind and label override its keys." },
};

const SCHEMAS: Doc = {
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
    properties: { device: ref("Device"), token: { type: "string", description: "Credential for the device's hello." } },
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

const RESPONSES: Doc = {
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

function paths(): Doc {
  return {
    "/": {
      get: {
        operationId: "dashboard",
        tags: ["docs"],
        summary: "Dashboard page",
        security: [],
        responses: { "200": { description: "HTML page.", content: { "text/html": { schema: { type: "string" } } } } },
      },
    },
    "/healthz": {
      get: {
        operationId: "health",
        tags: ["monitoring"],
        summary: "Liveness: the supervisor answers (it restarts failed workers itself)",
        description: "No token needed. 200 while the supervisor's event loop runs.",
        security: [],
        responses: {
          "200": json("Alive.", { type: "object", required: ["status"], properties: { status: { type: "string", const: "ok" } } }),
        },
      },
    },
    "/readyz": {
      get: {
        operationId: "ready",
        tags: ["monitoring"],
        summary: "Readiness: all workers up and listening, store usable",
        description:
          "No token needed. 200 when every worker is up and listening and the store is usable, else 503. " +
          "The broker is reported, not required: with the broker down, devices are served and their messages kept in the outbox, so the gateway stays ready.",
        security: [],
        responses: { "200": json("Ready.", ref("Readiness")), "503": json("Not ready.", ref("Readiness")) },
      },
    },
    "/metrics": {
      get: {
        operationId: "metrics",
        tags: ["monitoring"],
        summary: "Prometheus metrics, summed over workers; gauges also per worker",
        responses: {
          "200": { description: "Text exposition 0.0.4.", content: { "text/plain; version=0.0.4": { schema: { type: "string" } } } },
          ...PROTECTED,
        },
      },
    },
    "/api/v1/openapi.json": {
      get: {
        operationId: "openapi",
        tags: ["docs"],
        summary: "This document",
        responses: { "200": json("OpenAPI 3.1 document.", { type: "object" }), ...PROTECTED },
      },
    },
    "/api/v1/devices": {
      get: {
        operationId: "listDevices",
        tags: ["devices"],
        summary: "List devices, one page at a time",
        parameters: [
          query("cursor", "next_cursor of the previous page.", { type: "string" }),
          query("limit", "Devices per page.", { type: "integer", minimum: 1, maximum: MAX_PAGE_LIMIT, default: DEFAULT_PAGE_LIMIT }),
          query("connected", "Only connected (true) or disconnected (false) devices.", { type: "boolean" }),
          query("hardware_id", "Only the device with this hardware id.", { type: "string" }),
          query("q", "Substring of the hardware id, id or metadata.", { type: "string" }),
        ],
        responses: { "200": json("One page.", ref("DevicePage")), "400": errorRef("BadRequest"), ...PROTECTED },
      },
      post: {
        operationId: "registerDevice",
        tags: ["devices"],
        summary: "Pre-register a device by hardware id and get its token",
        requestBody: body("RegisterDevice", "Hardware id and metadata."),
        responses: {
          "201": json("Registered; Location names the device.", ref("DeviceWithToken")),
          "200": json("Already known; metadata merged, fresh token.", ref("DeviceWithToken")),
          ...WITH_BODY,
          ...PROTECTED,
        },
      },
    },
    "/api/v1/devices/{id}": {
      parameters: [ID_PARAM],
      get: {
        operationId: "getDevice",
        tags: ["devices"],
        summary: "One device, with its pending command count",
        responses: { "200": json("The device.", ref("Device")), ...BY_ID },
      },
      patch: {
        operationId: "updateDevice",
        tags: ["devices"],
        summary: "Merge metadata into a device",
        requestBody: body("UpdateDevice", "Metadata to merge."),
        responses: { "200": json("The updated device.", ref("Device")), ...BY_ID, ...WITH_BODY },
      },
    },
    "/api/v1/devices/{id}/revoke": {
      parameters: [ID_PARAM],
      post: {
        operationId: "revokeDevice",
        tags: ["devices"],
        summary: "Revoke the device's tokens and disconnect it",
        responses: { "200": json("The revoked device.", ref("Device")), ...BY_ID },
      },
    },
    "/api/v1/devices/{id}/token": {
      parameters: [ID_PARAM],
      post: {
        operationId: "issueToken",
        tags: ["devices"],
        summary: "Issue a token for the device's current generation (e.g. after a revoke)",
        responses: { "200": json("The token.", ref("Token")), ...BY_ID },
      },
    },
    "/api/v1/devices/{id}/commands": {
      parameters: [ID_PARAM],
      post: {
        operationId: "sendCommand",
        tags: ["devices"],
        summary: "Send a command to the device (stored until acked or expired)",
        parameters: [
          query("wait", "ack: answer only once the device acked the command or timeout_ms passed.", { type: "string", enum: ["ack"] }),
          query("timeout_ms", "With wait=ack: how long to wait, in ms.", {
            type: "integer",
            minimum: 1,
            maximum: MAX_ACK_TIMEOUT_MS,
            default: DEFAULT_ACK_TIMEOUT_MS,
          }),
        ],
        requestBody: body("Command", "The command."),
        responses: {
          "202": json("Queued for delivery.", ref("CommandAccepted")),
          "200": json("With wait=ack: the device acked it.", ref("CommandAcked")),
          "504": json("With wait=ack: no ack in time (code timeout); the message names the command id, which stays queued.", ref("Error")),
          ...BY_ID,
          ...WITH_BODY,
        },
      },
    },
    "/api/v1/devices/{id}/connection": {
      parameters: [ID_PARAM],
      delete: {
        operationId: "kickDevice",
        tags: ["devices"],
        summary: "Close the device's connection (close reason kicked)",
        responses: {
          "200": json("Closed.", ref("Kicked")),
          "409": json("The device is not connected (code not_connected).", ref("Error")),
          ...BY_ID,
        },
      },
    },
    "/api/v1/workers": {
      get: {
        operationId: "listWorkers",
        tags: ["gateway"],
        summary: "Worker processes",
        responses: {
          "200": json("All workers.", { type: "object", required: ["workers"], properties: { workers: { type: "array", items: ref("Worker") } } }),
          ...PROTECTED,
        },
      },
    },
    "/api/v1/outbox": {
      get: {
        operationId: "outbox",
        tags: ["gateway"],
        summary: "How full the outbox is: rows, bytes, oldest row, and the devices holding most rows",
        parameters: [query("limit", "Devices listed.", { type: "integer", minimum: 1, maximum: MAX_OUTBOX_DEVICES, default: DEFAULT_OUTBOX_DEVICES })],
        responses: { "200": json("The outbox.", ref("Outbox")), "400": errorRef("BadRequest"), ...PROTECTED },
      },
    },
    "/api/v1/stats": {
      get: {
        operationId: "stats",
        tags: ["gateway"],
        summary: "Summary numbers of the gateway",
        responses: { "200": json("Summary.", ref("Stats")), ...PROTECTED },
      },
    },
  };
}

/** The OpenAPI 3.1 document of the control API. */
export function openApiDocument(info: OpenApiInfo): Doc {
  return {
    openapi: "3.1.0",
    info: {
      title: "Owsla control API",
      version: info.version,
      description:
        `Control API of Owsla gateway ${info.gatewayId}. Every route except GET /, GET /healthz and GET /readyz needs ` +
        '"Authorization: Bearer <api.token>". Errors are {"error":{"code","message"}}.',
    },
    tags: [
      { name: "monitoring", description: "Probes and metrics." },
      { name: "devices", description: "Devices, their tokens, commands and connections." },
      { name: "gateway", description: "Workers and summary numbers." },
      { name: "docs", description: "Dashboard and this document." },
    ],
    security: [{ bearer: [] }],
    paths: paths(),
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "The gateway's api.token." } },
      schemas: SCHEMAS,
      responses: RESPONSES,
    },
  };
}
