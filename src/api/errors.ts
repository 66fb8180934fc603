/**
 * Errors of the control API. Every error response has the body
 * `{ "error": { "code": "<stable code>", "message": "<what went wrong and what to do>" } }`.
 *
 * @module
 */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/** Every error code the API answers with (a closed set), and its HTTP status. */
export const ERROR_STATUS = {
  bad_request: 400,
  unauthorized: 401,
  not_found: 404,
  not_connected: 409,
  payload_too_large: 413,
  rate_limited: 429,
  internal: 500,
  not_ready: 503,
  timeout: 504,
} as const satisfies Record<string, ContentfulStatusCode>;

/** One of the API's error codes. */
export type ApiErrorCode = keyof typeof ERROR_STATUS;

/** The JSON body of an error response. */
export interface ErrorBody {
  error: { code: ApiErrorCode; message: string };
}

/** Thrown by handlers; the app's error handler turns it into a JSON error response. */
export class ApiError extends Error {
  readonly status: ContentfulStatusCode;

  constructor(
    readonly code: ApiErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
    this.status = ERROR_STATUS[code];
  }
}

/** The error body for `code` and `message`. */
export function errorBody(code: ApiErrorCode, message: string): ErrorBody {
  return { error: { code, message } };
}

/** A JSON error response with the status that belongs to `code`. */
export function errorResponse(c: Context, code: ApiErrorCode, message: string, headers?: Record<string, string>): Response {
  return c.json(errorBody(code, message), ERROR_STATUS[code], headers);
}

/** The error code for an HTTP status raised by middleware (e.g. a Hono `HTTPException`). */
export function codeForStatus(status: number): ApiErrorCode {
  for (const [code, s] of Object.entries(ERROR_STATUS)) if (s === status) return code as ApiErrorCode;
  return status >= 400 && status < 500 ? "bad_request" : "internal";
}

/** A 404 `not_found` error for the device `id`. */
export function deviceNotFound(id: string): ApiError {
  return new ApiError("not_found", `Device ${id} not found; list devices with GET /api/v1/devices`);
}
