/**
 * Shared by the control API's tests (app.test.ts, app-requests.test.ts): the app over fake
 * dependencies, a request helper that adds the bearer token, and error-body assertions.
 */
import { expect } from "bun:test";
import type { Hono } from "hono";
import { createApi } from "./app.ts";
import { createFakeDeps, type FakeDeps } from "./fake-deps.ts";

export const GOOD_ID = "0b9e7c1e-3f4a-4c1d-9a7b-2e5f6a7b8c9d";
export const PUBLIC = new Set(["GET /", "GET /healthz", "GET /readyz"]);

export interface Call {
  body?: unknown;
  /** Raw body text (sent as is). */
  raw?: string;
  /** Authorization header; default the right bearer token, null for none. */
  auth?: string | null;
  headers?: Record<string, string>;
}

export function setup(overrides: Parameters<typeof createFakeDeps>[0] = {}): { deps: FakeDeps; app: Hono; call: (method: string, path: string, opts?: Call) => Promise<Response> } {
  const deps = createFakeDeps(overrides);
  const app = createApi(deps);
  const call = (method: string, path: string, opts: Call = {}): Promise<Response> => {
    const headers: Record<string, string> = { ...opts.headers };
    const auth = opts.auth === undefined ? `Bearer ${deps.apiToken}` : opts.auth;
    if (auth !== null) headers.Authorization = auth;
    let body: string | undefined = opts.raw;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers["Content-Type"] = "application/json";
    }
    return Promise.resolve(app.request(path, { method, headers, body }));
  };
  return { deps, app, call };
}

/** The app's routes as "METHOD /path" with `:id` written `{id}` (middleware left out). */
export function appRoutes(app: Hono): string[] {
  const routes = app.routes.filter((r) => r.method !== "ALL").map((r) => `${r.method} ${r.path.replace(/:([A-Za-z_]+)/g, "{$1}")}`);
  return [...new Set(routes)].sort();
}

export async function expectError(res: Response, status: number, code: string, messagePart?: string): Promise<string> {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toStartWith("application/json");
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(body.error.code).toBe(code);
  expect(body.error.message.length).toBeGreaterThan(10);
  if (messagePart !== undefined) expect(body.error.message).toContain(messagePart);
  return body.error.message;
}
