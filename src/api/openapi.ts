/**
 * The OpenAPI 3.1 description of the control API, served at `GET /api/v1/openapi.json`.
 * `app.test.ts` checks that it lists exactly the routes the app has.
 *
 * @module
 */
import {
  DEFAULT_ACK_TIMEOUT_MS,
  DEFAULT_PAGE_LIMIT,
  MAX_ACK_TIMEOUT_MS,
  MAX_BODY_BYTES,
  DEFAULT_OUTBOX_DEVICES,
  MAX_OUTBOX_DEVICES,
  MAX_PAGE_LIMIT,
  UUID_EXAMPLE,
} from "./limits.ts";
import { RESPONSES, SCHEMAS, json, ref, type Doc } from "./openapi-schemas.ts";


/** What the document says about the gateway serving it. */
export interface OpenApiInfo {
  version: string;
  gatewayId: string;
}

const errorRef = (name: string): Doc => ({ $ref: `#/components/responses/${name}` });

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
          "503": json("The gateway's store is at a limit (store.inbox_max_bytes for a command larger than it, or free space under store.min_free_bytes; code not_ready): nothing was stored, retry later.", ref("Error")),
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
