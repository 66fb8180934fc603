/**
 * Routes acting on a device's connection, mounted at `/api/v1/devices`: send a command
 * (optionally waiting for the device's ack) and close the connection.
 *
 * @module
 */
import { Hono } from "hono";
import type { ApiDeps, CommandRequest } from "./deps.ts";
import { ApiError, deviceNotFound, errorResponse } from "./errors.ts";
import {
  DEFAULT_ACK_TIMEOUT_MS,
  DEFAULT_COMMAND_TOPIC,
  MAX_ACK_TIMEOUT_MS,
  MAX_CORR,
  MAX_TOPIC,
  MAX_TTL_S,
  TOPIC_PATTERN,
} from "./limits.ts";
import { deviceIdParam, type JsonObject, optionalInt, optionalPattern, optionalText, queryEnum, queryInt, readJsonObject } from "./validate.ts";

const TOPIC_DOC = `segments of [A-Za-z0-9_-] joined by "." (at most ${MAX_TOPIC} characters), such as "lights.set"`;

/** The command of a request body. */
function commandOf(o: JsonObject): CommandRequest {
  if (!("body" in o)) {
    throw new ApiError("bad_request", 'Field "body" is missing; send the command payload as any JSON value (null for none)');
  }
  const cmd: CommandRequest = {
    topic: optionalPattern(o, "topic", TOPIC_PATTERN, MAX_TOPIC, TOPIC_DOC) ?? DEFAULT_COMMAND_TOPIC,
    body: o.body,
  };
  const corr = optionalText(o, "corr", MAX_CORR);
  if (corr !== undefined) cmd.corr = corr;
  const ttl = optionalInt(o, "ttl_s", 1, MAX_TTL_S);
  if (ttl !== undefined) cmd.ttl_s = ttl;
  return cmd;
}

/** The device-connection sub-app. */
export function deviceCommandRoutes(deps: ApiDeps): Hono {
  const app = new Hono();

  app.post("/:id/commands", async (c) => {
    const id = deviceIdParam(c);
    const wait = queryEnum(c, "wait", ["ack"] as const);
    const timeoutMs = queryInt(c, "timeout_ms", 1, MAX_ACK_TIMEOUT_MS, DEFAULT_ACK_TIMEOUT_MS);
    const cmd = commandOf(await readJsonObject(c, ["topic", "body", "corr", "ttl_s"]));
    const result = await deps.sendCommand(id, cmd, wait === "ack" ? timeoutMs : null);
    if (!result) throw deviceNotFound(id);
    if (wait !== "ack") return c.json({ id: result.id }, 202);
    if (result.acked !== true) {
      return errorResponse(
        c,
        "timeout",
        `Command ${result.id} was not acked by device ${id} within ${timeoutMs} ms; it stays in the inbox until the device acks it or its ttl expires, so do not send it again`,
      );
    }
    return c.json({ id: result.id, acked: true });
  });

  app.delete("/:id/connection", async (c) => {
    const id = deviceIdParam(c);
    const kicked = await deps.kick(id);
    if (kicked === null) throw deviceNotFound(id);
    if (!kicked) return errorResponse(c, "not_connected", `Device ${id} is not connected; nothing to close`);
    return c.json({ kicked: true });
  });

  return app;
}
