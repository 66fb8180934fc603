/**
 * Human- and machine-readable descriptions of the gateway, mounted at `/`: the dashboard
 * page and the OpenAPI document.
 *
 * @module
 */
import { Hono } from "hono";
import html from "./dashboard.html" with { type: "text" };
import { dashboardHeaders } from "./dashboard-headers.ts";
import type { ApiDeps } from "./deps.ts";
import { openApiDocument } from "./openapi.ts";

/** The dashboard page (a text import: bun-types declares `*.html` as an HTML bundle). */
const DASHBOARD = html as unknown as string;
/** Its CSP (inline script and style by hash) and anti-framing headers. */
const DASHBOARD_HEADERS = dashboardHeaders(DASHBOARD);

/** The docs sub-app. */
export function docsRoutes(deps: ApiDeps): Hono {
  const app = new Hono();
  const openapi = openApiDocument({ version: deps.version, gatewayId: deps.gatewayId });
  app.get("/", (c) => c.html(DASHBOARD, 200, DASHBOARD_HEADERS));
  app.get("/api/v1/openapi.json", (c) => c.json(openapi));
  return app;
}
