/**
 * The control API: a Hono app built from sub-apps per resource. It knows nothing of the
 * runtime or of how the gateway is wired; everything it needs comes in as {@link ApiDeps}.
 *
 * - Every route except the probes (`GET /healthz`, `GET /readyz`) and the dashboard page
 *   (`GET /`) needs `Authorization: Bearer <apiToken>`.
 * - Request bodies are capped at {@link MAX_BODY_BYTES} (413 `payload_too_large`).
 * - Every answer is JSON (except `/metrics` and the dashboard); errors are
 *   `{ "error": { "code", "message" } }`.
 *
 * @module
 */
import { randomUUID } from "node:crypto";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { requireBearer } from "./auth.ts";
import type { ApiDeps } from "./deps.ts";
import { deviceCommandRoutes } from "./device-commands.ts";
import { deviceRoutes } from "./devices.ts";
import { docsRoutes } from "./docs.ts";
import { ApiError, codeForStatus, errorResponse } from "./errors.ts";
import { gatewayRoutes } from "./gateway.ts";
import { MAX_BODY_BYTES } from "./limits.ts";
import { monitoringRoutes } from "./monitoring.ts";

/**
 * Path patterns that need the bearer token (all routes but the probes `/healthz`, `/readyz`
 * and the page `/`): probes must work for systemd, load balancers and orchestrators that hold
 * no token, and they show nothing secret.
 */
export const PROTECTED_PATHS = ["/metrics", "/api/*"] as const;

/** Builds the control API on `deps`. */
export function createApi(deps: ApiDeps): Hono {
  const app = new Hono();

  const auth = requireBearer(deps.apiToken);
  for (const path of PROTECTED_PATHS) app.use(path, auth);
  app.use(
    "*",
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) =>
        errorResponse(c, "payload_too_large", `Request body exceeds ${MAX_BODY_BYTES} bytes; send a smaller body`),
    }),
  );

  app.route("/", monitoringRoutes(deps));
  app.route("/", docsRoutes(deps));
  app.route("/api/v1", gatewayRoutes(deps));
  app.route("/api/v1/devices", deviceRoutes(deps));
  app.route("/api/v1/devices", deviceCommandRoutes(deps));

  app.notFound((c) =>
    errorResponse(c, "not_found", `No route for ${c.req.method} ${c.req.path}; see GET /api/v1/openapi.json for the routes`),
  );

  app.onError((err, c) => {
    if (err instanceof ApiError) return errorResponse(c, err.code, err.message);
    if (err instanceof HTTPException) {
      const code = codeForStatus(err.status);
      return c.json({ error: { code, message: err.message || `Request failed with status ${err.status}` } }, err.status);
    }
    // The cause goes to the log, not to the client (it may name files, SQL or internals).
    const ref = randomUUID().slice(0, 8);
    deps.logError?.("Control API request failed", { ref, method: c.req.method, path: c.req.path, err: err instanceof Error ? err : new Error(String(err)) });
    return errorResponse(c, "internal", `Internal error while handling ${c.req.method} ${c.req.path} (ref ${ref}); the gateway log names the cause under this ref`);
  });

  return app;
}
