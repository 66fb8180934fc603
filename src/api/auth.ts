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
import type { Context, MiddlewareHandler } from "hono";
import { BanList } from "../auth/bans.ts";
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

/** Wrong tokens from one client address within a minute before it is refused for a minute. */
export const API_AUTH_FAILURES = 10;

/** The client address of a request served by Bun (`c.env` is the Bun server), else "unknown". */
function clientAddress(c: Context): string {
  const server = c.env as { requestIP?: (r: Request) => { address: string } | null } | undefined;
  try {
    return server?.requestIP?.(c.req.raw)?.address ?? "unknown";
  } catch {
    return "unknown";
  }
}

/**
 * Middleware answering 401 `unauthorized` unless the request carries `Bearer <token>`.
 * The correct token always passes: failures are counted per client address, and only wrong or
 * missing tokens are refused with 429 `rate_limited` once that address sent
 * {@link API_AUTH_FAILURES} of them within a minute (for a minute), so nobody can lock the
 * operator out without the token (a reverse proxy makes every client one address).
 */
export function requireBearer(token: string, bans = new BanList({ failures: API_AUTH_FAILURES, windowMs: 60_000, durationMs: 60_000 })): MiddlewareHandler {
  return async (c, next) => {
    const header = c.req.header("Authorization");
    const m = header ? /^Bearer +(\S+) *$/i.exec(header) : null;
    if (m && tokenMatches(token, m[1]!)) {
      await next();
      return;
    }
    const addr = clientAddress(c);
    const banned = bans.remaining(addr);
    if (banned > 0) {
      return errorResponse(c, "rate_limited", `Too many requests with a wrong API token from ${addr}; retry in ${Math.ceil(banned / 1000)} s with the gateway's api.token`, {
        "Retry-After": String(Math.ceil(banned / 1000)),
      });
    }
    // Without a socket (app.request in tests) there is no address to hold responsible.
    if (addr !== "unknown") bans.fail(addr);
    const message = !header
      ? 'Missing bearer token: send the header "Authorization: Bearer <token>" with the gateway\'s api.token'
      : !m
        ? 'Malformed Authorization header: it must be "Bearer <token>" with the gateway\'s api.token'
        : "Invalid bearer token: it does not match the gateway's api.token; check the token file in the data directory";
    return errorResponse(c, "unauthorized", message, CHALLENGE);
  };
}
