/**
 * Gateway-wide routes, mounted at `/api/v1`: worker processes, summary numbers and the outbox.
 *
 * @module
 */
import { Hono } from "hono";
import type { ApiDeps } from "./deps.ts";
import { DEFAULT_OUTBOX_DEVICES, MAX_OUTBOX_DEVICES } from "./limits.ts";
import { queryInt } from "./validate.ts";

/** The gateway sub-app. */
export function gatewayRoutes(deps: ApiDeps): Hono {
  const app = new Hono();
  app.get("/workers", async (c) => c.json({ workers: await deps.workers() }));
  app.get("/stats", async (c) => c.json(await deps.stats()));
  app.get("/outbox", async (c) => c.json(await deps.outbox(queryInt(c, "limit", 1, MAX_OUTBOX_DEVICES, DEFAULT_OUTBOX_DEVICES))));
  return app;
}
