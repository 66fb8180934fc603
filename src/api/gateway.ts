/**
 * Gateway-wide routes, mounted at `/api/v1`: worker processes and summary numbers.
 *
 * @module
 */
import { Hono } from "hono";
import type { ApiDeps } from "./deps.ts";

/** The gateway sub-app. */
export function gatewayRoutes(deps: ApiDeps): Hono {
  const app = new Hono();
  app.get("/workers", async (c) => c.json({ workers: await deps.workers() }));
  app.get("/stats", async (c) => c.json(await deps.stats()));
  return app;
}
