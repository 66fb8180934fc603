/**
 * Bearer-token check for the control API.
 *
 * Hono's `bearerAuth` only accepts tokens matching `[A-Za-z0-9._~+/-]+=*`, but `api.token`
 * may be any 16+ characters without spaces, so the check is done here: the header must be
 * `Authorization: Bearer <token>` and the token is compared in constant time.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { errorResponse } from "./errors.ts";

const CHALLENGE = { "WWW-Authenticate": 'Bearer realm="owsla"' };

function digest(s: string): Buffer {
  return createHash("sha256").update(s, "utf8").digest();
}

/**
 * Whether `given` equals `expected`, in time independent of where they differ and of their
 * lengths (both are hashed first). An empty `expected` matches nothing.
 */
export function tokenMatches(expected: string, given: string): boolean {
  const same = timingSafeEqual(digest(expected), digest(given));
  return same && expected.length > 0;
}

/** Middleware answering 401 `unauthorized` unless the request carries `Bearer <token>`. */
export function requireBearer(token: string): MiddlewareHandler {
  return async (c, next) => {
    const header = c.req.header("Authorization");
    if (!header) {
      return errorResponse(
        c,
        "unauthorized",
        'Missing bearer token: send the header "Authorization: Bearer <token>" with the gateway\'s api.token',
        CHALLENGE,
      );
    }
    const m = /^Bearer +(\S+) *$/i.exec(header);
    if (!m) {
      return errorResponse(
        c,
        "unauthorized",
        'Malformed Authorization header: it must be "Bearer <token>" with the gateway\'s api.token',
        CHALLENGE,
      );
    }
    if (!tokenMatches(token, m[1]!)) {
      return errorResponse(
        c,
        "unauthorized",
        "Invalid bearer token: it does not match the gateway's api.token; check the token file in the data directory",
        CHALLENGE,
      );
    }
    await next();
  };
}
