/**
 * Probe and scrape routes, mounted at `/`: liveness, readiness and Prometheus metrics.
 *
 * - `GET /healthz` (liveness, no token): 200 while the supervisor's event loop answers. A dead
 *   or hung worker is not a liveness failure: the supervisor restarts it itself, and gives up
 *   (exits) when restarts exceed the restart intensity.
 * - `GET /readyz` (readiness, no token): 200 when every worker is up and listening and the
 *   store is usable, else 503. The broker is reported, not required: with the broker down,
 *   devices are still served and their messages kept in the outbox, so the gateway stays ready.
 *
 * @module
 */
import { Hono } from "hono";
import type { ApiDeps } from "./deps.ts";
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus } from "./prometheus.ts";
import { buildInfo } from "../version.ts";

/** The monitoring sub-app. */
export function monitoringRoutes(deps: ApiDeps): Hono {
  const app = new Hono();
  const build = buildInfo();

  app.get("/healthz", (c) => c.json({ status: "ok" }));

  app.get("/readyz", async (c) => {
    const ready = await deps.ready();
    return c.json(ready, ready.ready ? 200 : 503);
  });

  app.get("/metrics", async (c) => {
    const text = renderPrometheus({ ...(await deps.metrics()), build });
    return c.body(text, 200, { "Content-Type": PROMETHEUS_CONTENT_TYPE });
  });

  return app;
}
