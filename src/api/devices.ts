/**
 * Routes of the device resource, mounted at `/api/v1/devices`: list, register, read,
 * update, revoke and token re-issue.
 *
 * @module
 */
import { Hono } from "hono";
import type { ApiDeps } from "./deps.ts";
import { ApiError, deviceNotFound } from "./errors.ts";
import { DEFAULT_PAGE_LIMIT, MAX_META_TEXT, MAX_PAGE_LIMIT } from "./limits.ts";
import {
  deviceIdParam,
  hardwareIdField,
  type JsonObject,
  optionalObject,
  optionalText,
  queryBool,
  queryInt,
  queryString,
  readJsonObject,
} from "./validate.ts";

/** Metadata fields with their own body field; they override the same keys in `meta`. */
const META_FIELDS = ["room", "kind", "label"] as const;

/** Longest `cursor`, `hardware_id` or `q` query parameter, in characters. */
const MAX_QUERY_TEXT = 512;

/** The metadata of a register or update body: `meta` merged with room, kind and label. */
function metaOf(o: JsonObject): Record<string, unknown> {
  const meta: Record<string, unknown> = { ...optionalObject(o, "meta") };
  for (const field of META_FIELDS) {
    const v = optionalText(o, field, MAX_META_TEXT);
    if (v !== undefined) meta[field] = v;
  }
  return meta;
}

function queryText(c: Parameters<typeof queryString>[0], name: string): string | undefined {
  const v = queryString(c, name);
  if (v !== undefined && v.length > MAX_QUERY_TEXT) {
    throw new ApiError("bad_request", `Query parameter "${name}" is longer than ${MAX_QUERY_TEXT} characters; shorten it`);
  }
  return v;
}

/** The device sub-app. */
export function deviceRoutes(deps: ApiDeps): Hono {
  const app = new Hono();

  app.get("/", async (c) => {
    const limit = queryInt(c, "limit", 1, MAX_PAGE_LIMIT, DEFAULT_PAGE_LIMIT);
    const connected = queryBool(c, "connected");
    const cursor = queryText(c, "cursor");
    const hardwareId = queryText(c, "hardware_id");
    const search = queryText(c, "q");
    const q: Parameters<ApiDeps["listDevices"]>[0] = { limit };
    if (cursor !== undefined) q.cursor = cursor;
    if (connected !== undefined) q.connected = connected;
    if (hardwareId !== undefined) q.hardware_id = hardwareId;
    if (search !== undefined) q.search = search;
    return c.json(await deps.listDevices(q));
  });

  app.post("/", async (c) => {
    const o = await readJsonObject(c, ["hardware_id", ...META_FIELDS, "meta"]);
    const hardwareId = hardwareIdField(o, "hardware_id");
    const { device, token, created } = await deps.registerDevice(hardwareId, metaOf(o));
    c.header("Location", `/api/v1/devices/${device.id}`);
    return c.json({ device, token }, created ? 201 : 200);
  });

  app.get("/:id", async (c) => {
    const id = deviceIdParam(c);
    const device = await deps.getDevice(id);
    if (!device) throw deviceNotFound(id);
    return c.json(device);
  });

  app.patch("/:id", async (c) => {
    const id = deviceIdParam(c);
    const o = await readJsonObject(c, [...META_FIELDS, "meta"]);
    const device = await deps.updateDevice(id, metaOf(o));
    if (!device) throw deviceNotFound(id);
    return c.json(device);
  });

  app.post("/:id/revoke", async (c) => {
    const id = deviceIdParam(c);
    const device = await deps.revokeDevice(id);
    if (!device) throw deviceNotFound(id);
    return c.json(device);
  });

  app.post("/:id/token", (c) => {
    const id = deviceIdParam(c);
    const token = deps.issueToken(id);
    if (token === null) throw deviceNotFound(id);
    return c.json({ token });
  });

  return app;
}
