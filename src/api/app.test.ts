import { describe, expect, test } from "bun:test";
import type { Hono } from "hono";
import { createApi } from "./app.ts";
import { createFakeDeps, type FakeDeps } from "./fake-deps.ts";

const GOOD_ID = "0b9e7c1e-3f4a-4c1d-9a7b-2e5f6a7b8c9d";
const PUBLIC = new Set(["GET /", "GET /healthz"]);

interface Call {
  body?: unknown;
  /** Raw body text (sent as is). */
  raw?: string;
  /** Authorization header; default the right bearer token, null for none. */
  auth?: string | null;
  headers?: Record<string, string>;
}

function setup(overrides: Parameters<typeof createFakeDeps>[0] = {}): { deps: FakeDeps; app: Hono; call: (method: string, path: string, opts?: Call) => Promise<Response> } {
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
function appRoutes(app: Hono): string[] {
  const routes = app.routes.filter((r) => r.method !== "ALL").map((r) => `${r.method} ${r.path.replace(/:([A-Za-z_]+)/g, "{$1}")}`);
  return [...new Set(routes)].sort();
}

async function expectError(res: Response, status: number, code: string, messagePart?: string): Promise<string> {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toStartWith("application/json");
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(body.error.code).toBe(code);
  expect(body.error.message.length).toBeGreaterThan(10);
  if (messagePart !== undefined) expect(body.error.message).toContain(messagePart);
  return body.error.message;
}

describe("public routes", () => {
  test("GET /healthz answers ok without a token", async () => {
    const { call } = setup();
    const res = await call("GET", "/healthz", { auth: null });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
  });

  test("GET / serves the dashboard page without a token", async () => {
    const { call } = setup();
    const res = await call("GET", "/", { auth: null });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("text/html");
    expect(await res.text()).toMatch(/<title>Owsla/);
  });

  test("an unknown path is a JSON not_found error", async () => {
    const { call } = setup();
    await expectError(await call("GET", "/nope"), 404, "not_found", "GET /nope");
    await expectError(await call("PUT", "/api/v1/stats"), 404, "not_found");
  });
});

test("the app has exactly the documented routes", () => {
  const { app } = setup();
  expect(appRoutes(app)).toEqual(
    [
      "GET /",
      "GET /healthz",
      "GET /readyz",
      "GET /metrics",
      "GET /api/v1/openapi.json",
      "GET /api/v1/workers",
      "GET /api/v1/stats",
      "GET /api/v1/devices",
      "POST /api/v1/devices",
      "GET /api/v1/devices/{id}",
      "PATCH /api/v1/devices/{id}",
      "POST /api/v1/devices/{id}/revoke",
      "POST /api/v1/devices/{id}/token",
      "POST /api/v1/devices/{id}/commands",
      "DELETE /api/v1/devices/{id}/connection",
    ].sort(),
  );
});

describe("authentication", () => {
  test("every protected route refuses a missing, malformed or wrong token with 401", async () => {
    const { app, call } = setup();
    const protectedRoutes = appRoutes(app).filter((r) => !PUBLIC.has(r));
    expect(protectedRoutes).toHaveLength(13);
    for (const route of protectedRoutes) {
      const [method, path] = route.split(" ") as [string, string];
      const url = path.replace("{id}", GOOD_ID);
      for (const auth of [null, "Bearer wrong-token-0123456789", "Basic dXNlcjpwYXNz", "Bearer", `bearer  ${"x".repeat(30)}`]) {
        const res = await call(method, url, { auth, body: method === "GET" || method === "DELETE" ? undefined : {} });
        if (res.status !== 401) throw new Error(`${route} with ${auth} answered ${res.status}`);
        await expectError(res, 401, "unauthorized");
        expect(res.headers.get("www-authenticate")).toStartWith("Bearer");
      }
    }
  });

  test("the right token passes on every protected route, with any case of the scheme", async () => {
    const { app, call, deps } = setup();
    for (const route of appRoutes(app).filter((r) => !PUBLIC.has(r))) {
      const [method, path] = route.split(" ") as [string, string];
      const res = await call(method, path.replace("{id}", GOOD_ID), { auth: `bearer ${deps.apiToken}` });
      expect([200, 202, 400, 404]).toContain(res.status);
    }
  });

  test("a token with characters outside base64 works", async () => {
    const apiToken = "s3cr3t!#%&*()[]{}<>?";
    const { call } = setup({ apiToken });
    expect((await call("GET", "/api/v1/stats", { auth: `Bearer ${apiToken}` })).status).toBe(200);
    expect((await call("GET", "/api/v1/stats", { auth: `Bearer ${apiToken}x` })).status).toBe(401);
  });

  test("an empty configured token lets nobody in", async () => {
    const { call } = setup({ apiToken: "" });
    expect((await call("GET", "/api/v1/stats", { auth: "Bearer " })).status).toBe(401);
    expect((await call("GET", "/api/v1/stats", { auth: "Bearer x" })).status).toBe(401);
  });
});

describe("monitoring", () => {
  test("GET /readyz answers 200 with the readiness when ready", async () => {
    const { call, deps } = setup();
    const res = await call("GET", "/readyz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(deps.readiness);
  });

  test("GET /readyz answers 503 when not ready", async () => {
    const { call, deps } = setup();
    deps.readiness = { ready: false, workers_ready: 1, workers: 2, store: "ok", broker: {} };
    const res = await call("GET", "/readyz");
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ ready: false, workers_ready: 1 });
  });

  test("GET /metrics answers Prometheus text", async () => {
    const { call } = setup();
    const res = await call("GET", "/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("text/plain; version=0.0.4");
    const text = await res.text();
    expect(text).toContain("\nowsla_connections 7\n");
    expect(text).toContain('owsla_connections{worker="1"} 5\n');
    expect(text).toContain("\nowsla_accepts_total 7\n");
    expect(text).toContain("# TYPE owsla_worker_restarts_total counter\nowsla_worker_restarts_total 1\n");
  });
});

describe("devices", () => {
  test("GET /api/v1/devices lists a page with the default limit", async () => {
    const { call, deps } = setup();
    for (let i = 0; i < 120; i++) deps.addDevice(`hw-${i}`);
    const res = await call("GET", "/api/v1/devices");
    expect(res.status).toBe(200);
    const page = (await res.json()) as { devices: { id: string }[]; next_cursor: string | null };
    expect(page.devices).toHaveLength(100);
    expect(page.next_cursor).toBe(page.devices[99]!.id);
    const rest = (await (await call("GET", `/api/v1/devices?cursor=${page.next_cursor}&limit=1000`)).json()) as typeof page;
    expect(rest.devices).toHaveLength(20);
    expect(rest.next_cursor).toBeNull();
  });

  test("GET /api/v1/devices passes the filters", async () => {
    const seen: unknown[] = [];
    const { call } = setup({ listDevices: (q) => (seen.push(q), { devices: [], next_cursor: null }) });
    expect((await call("GET", "/api/v1/devices?limit=5&connected=false&hardware_id=hw-1&q=kitchen&cursor=c1")).status).toBe(200);
    expect((await call("GET", "/api/v1/devices?connected=true&q=")).status).toBe(200);
    expect(seen).toEqual([
      { limit: 5, connected: false, hardware_id: "hw-1", search: "kitchen", cursor: "c1" },
      { limit: 100, connected: true },
    ]);
  });

  test("GET /api/v1/devices refuses a bad limit or connected", async () => {
    const { call } = setup();
    for (const limit of ["0", "1001", "abc", "1.5", "-1"]) {
      await expectError(await call("GET", `/api/v1/devices?limit=${limit}`), 400, "bad_request", '"limit"');
    }
    await expectError(await call("GET", "/api/v1/devices?connected=yes"), 400, "bad_request", '"connected"');
  });

  test("POST /api/v1/devices registers a device (201) and answers 200 when it exists", async () => {
    const { call, deps } = setup();
    const res = await call("POST", "/api/v1/devices", { body: { hardware_id: "hw-a", room: "kitchen", meta: { fw: "1.0", room: "x" } } });
    expect(res.status).toBe(201);
    const first = (await res.json()) as { device: { id: string; meta: Record<string, unknown> }; token: string };
    expect(first.device.meta).toEqual({ fw: "1.0", room: "kitchen" });
    expect(first.token).toBeString();
    expect(res.headers.get("location")).toBe(`/api/v1/devices/${first.device.id}`);
    const again = await call("POST", "/api/v1/devices", { body: { hardware_id: "hw-a", label: "Lamp" } });
    expect(again.status).toBe(200);
    expect(((await again.json()) as typeof first).device.meta).toEqual({ fw: "1.0", room: "kitchen", label: "Lamp" });
    expect(deps.devices.size).toBe(1);
  });

  test("POST /api/v1/devices refuses bad bodies naming the field", async () => {
    const { call } = setup();
    const post = (raw: string) => call("POST", "/api/v1/devices", { raw, headers: { "Content-Type": "application/json" } });
    await expectError(await post(""), 400, "bad_request", "empty");
    await expectError(await post("{nope"), 400, "bad_request", "not valid JSON");
    await expectError(await post("[1]"), 400, "bad_request", "JSON object");
    await expectError(await post("{}"), 400, "bad_request", 'Field "hardware_id" is missing');
    await expectError(await post('{"hardware_id":""}'), 400, "bad_request", '"hardware_id"');
    await expectError(await post(JSON.stringify({ hardware_id: "h".repeat(257) })), 400, "bad_request", '"hardware_id"');
    await expectError(await post('{"hardware_id":5}'), 400, "bad_request", '"hardware_id"');
    await expectError(await post('{"hardware_id":"a","room":5}'), 400, "bad_request", '"room"');
    await expectError(await post('{"hardware_id":"a","meta":[1]}'), 400, "bad_request", '"meta"');
    await expectError(await post('{"hardware_id":"a","lable":"x"}'), 400, "bad_request", '"lable"');
  });

  test("GET /api/v1/devices/:id returns the device", async () => {
    const { call, deps } = setup();
    const d = deps.addDevice("hw-b");
    const res = await call("GET", `/api/v1/devices/${d.id}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: d.id, hardware_id: "hw-b" });
    // Upper-case ids are accepted and normalised.
    expect((await call("GET", `/api/v1/devices/${d.id.toUpperCase()}`)).status).toBe(200);
  });

  test("PATCH /api/v1/devices/:id merges metadata", async () => {
    const { call, deps } = setup();
    const d = deps.addDevice("hw-c", { meta: { fw: "1" } });
    const res = await call("PATCH", `/api/v1/devices/${d.id}`, { body: { kind: "lamp", label: null, meta: { fw: "2" } } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { meta: unknown }).meta).toEqual({ fw: "2", kind: "lamp", label: null });
    await expectError(await call("PATCH", `/api/v1/devices/${d.id}`, { body: { kind: "" } }), 400, "bad_request", '"kind"');
    await expectError(await call("PATCH", `/api/v1/devices/${d.id}`, { body: { hardware_id: "x" } }), 400, "bad_request", '"hardware_id"');
  });

  test("POST /api/v1/devices/:id/revoke revokes the device", async () => {
    const { call, deps } = setup();
    const d = deps.addDevice("hw-d", { connected: true });
    const res = await call("POST", `/api/v1/devices/${d.id}/revoke`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: d.id, revoked: true, connected: false });
  });

  test("POST /api/v1/devices/:id/token issues a token", async () => {
    const { call, deps } = setup();
    const d = deps.addDevice("hw-e");
    await call("POST", `/api/v1/devices/${d.id}/revoke`);
    const res = await call("POST", `/api/v1/devices/${d.id}/token`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ token: `tok.${d.id}.1` });
  });

  test("every device route answers 404 for an unknown device and 400 for a bad id", async () => {
    const { call } = setup();
    const routes: [string, string, unknown?][] = [
      ["GET", ""],
      ["PATCH", "", { room: "x" }],
      ["POST", "/revoke"],
      ["POST", "/token"],
      ["POST", "/commands", { body: 1 }],
      ["DELETE", "/connection"],
    ];
    for (const [method, suffix, body] of routes) {
      await expectError(await call(method, `/api/v1/devices/${GOOD_ID}${suffix}`, { body }), 404, "not_found", GOOD_ID);
      for (const bad of ["nope", "123", `${GOOD_ID}0`, "0b9e7c1e3f4a4c1d9a7b2e5f6a7b8c9d"]) {
        await expectError(await call(method, `/api/v1/devices/${bad}${suffix}`, { body }), 400, "bad_request", "UUID");
      }
    }
  });
});

describe("commands", () => {
  test("POST /commands queues a command (202) with the default topic", async () => {
    const { call, deps } = setup();
    const d = deps.addDevice("hw-f");
    const res = await call("POST", `/api/v1/devices/${d.id}/commands`, { body: { body: { on: true } } });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    expect(deps.sent).toEqual([{ device: d.id, cmd: { topic: "cmd", body: { on: true } }, waitAckMs: null, id }]);
  });

  test("POST /commands passes topic, corr and ttl_s", async () => {
    const { call, deps } = setup();
    const d = deps.addDevice("hw-g");
    const body = { topic: "lights.set-level_2", body: null, corr: "c-1", ttl_s: 60 };
    expect((await call("POST", `/api/v1/devices/${d.id}/commands`, { body })).status).toBe(202);
    expect(deps.sent[0]!.cmd).toEqual(body);
  });

  test("POST /commands?wait=ack answers 200 once the device acked", async () => {
    const { call, deps } = setup();
    const d = deps.addDevice("hw-h");
    const res = await call("POST", `/api/v1/devices/${d.id}/commands?wait=ack&timeout_ms=2500`, { body: { body: 1 } });
    expect(res.status).toBe(200);
    const json = (await res.json()) as { id: string; acked: boolean };
    expect(json).toEqual({ id: deps.sent[0]!.id, acked: true });
    expect(deps.sent[0]!.waitAckMs).toBe(2500);
  });

  test("POST /commands?wait=ack waits 10 s by default", async () => {
    const { call, deps } = setup();
    const d = deps.addDevice("hw-i");
    expect((await call("POST", `/api/v1/devices/${d.id}/commands?wait=ack`, { body: { body: 1 } })).status).toBe(200);
    expect(deps.sent[0]!.waitAckMs).toBe(10_000);
  });

  test("POST /commands?wait=ack answers 504 timeout naming the command id", async () => {
    const { call, deps } = setup();
    deps.devicesAck = false;
    const d = deps.addDevice("hw-j");
    const res = await call("POST", `/api/v1/devices/${d.id}/commands?wait=ack&timeout_ms=100`, { body: { body: 1 } });
    await expectError(res, 504, "timeout", deps.sent[0]!.id);
  });

  test("POST /commands refuses bad topics, bodies and query parameters", async () => {
    const { call, deps } = setup();
    const d = deps.addDevice("hw-k");
    const url = `/api/v1/devices/${d.id}/commands`;
    for (const topic of ["", "a..b", "a b", ".a", "a/b", "é", "t".repeat(201), 5]) {
      await expectError(await call("POST", url, { body: { topic, body: 1 } }), 400, "bad_request", '"topic"');
    }
    await expectError(await call("POST", url, { body: { topic: "t" } }), 400, "bad_request", '"body"');
    await expectError(await call("POST", url, { body: { body: 1, corr: 5 } }), 400, "bad_request", '"corr"');
    await expectError(await call("POST", url, { body: { body: 1, ttl_s: 0 } }), 400, "bad_request", '"ttl_s"');
    await expectError(await call("POST", url, { body: { body: 1, ttl_s: 1.5 } }), 400, "bad_request", '"ttl_s"');
    await expectError(await call("POST", url, { body: { body: 1, extra: 1 } }), 400, "bad_request", '"extra"');
    await expectError(await call("POST", `${url}?wait=yes`, { body: { body: 1 } }), 400, "bad_request", '"wait"');
    for (const t of ["0", "60001", "x"]) {
      await expectError(await call("POST", `${url}?wait=ack&timeout_ms=${t}`, { body: { body: 1 } }), 400, "bad_request", '"timeout_ms"');
    }
    expect(deps.sent).toHaveLength(0);
  });

  test("DELETE /connection kicks a connected device and answers 409 otherwise", async () => {
    const { call, deps } = setup();
    const d = deps.addDevice("hw-l", { connected: true });
    const res = await call("DELETE", `/api/v1/devices/${d.id}/connection`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ kicked: true });
    await expectError(await call("DELETE", `/api/v1/devices/${d.id}/connection`), 409, "not_connected", d.id);
  });
});

describe("request bodies", () => {
  const big = JSON.stringify({ hardware_id: "x", meta: { pad: "p".repeat(100 * 1024) } });

  test("a 100 KiB body is refused with 413", async () => {
    const { call, deps } = setup();
    const d = deps.addDevice("hw-m");
    for (const [method, path] of [
      ["POST", "/api/v1/devices"],
      ["PATCH", `/api/v1/devices/${d.id}`],
      ["POST", `/api/v1/devices/${d.id}/commands`],
    ] as const) {
      await expectError(await call(method, path, { raw: big }), 413, "payload_too_large", "65536");
      const declared = { "Content-Length": String(Buffer.byteLength(big)) };
      await expectError(await call(method, path, { raw: big, headers: declared }), 413, "payload_too_large");
    }
    expect(deps.devices.size).toBe(1);
  });

  test("a body just under 64 KiB is accepted", async () => {
    const { call } = setup();
    const body = JSON.stringify({ hardware_id: "x", meta: { pad: "p".repeat(64 * 1024 - 100) } });
    expect(Buffer.byteLength(body)).toBeLessThan(64 * 1024);
    expect((await call("POST", "/api/v1/devices", { raw: body })).status).toBe(201);
  });
});

describe("gateway", () => {
  test("GET /api/v1/workers lists the workers", async () => {
    const { call, deps } = setup();
    const res = await call("GET", "/api/v1/workers");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ workers: deps.workerList });
  });

  test("GET /api/v1/stats returns the summary", async () => {
    const { call } = setup();
    const res = await call("GET", "/api/v1/stats");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ gateway: "gw-test", version: "1.2.3-test", workers: { restarts: 1 } });
  });

  test("a failing dependency is a JSON internal error", async () => {
    const { call } = setup({
      stats: async () => {
        throw new Error("store is locked");
      },
    });
    await expectError(await call("GET", "/api/v1/stats"), 500, "internal", "store is locked");
  });
});

describe("OpenAPI document", () => {
  type Operation = { security?: unknown[]; responses: Record<string, unknown>; requestBody?: unknown; parameters?: { name: string }[] };
  type Document = { openapi: string; info: { version: string }; paths: Record<string, Record<string, Operation>>; components: { securitySchemes: Record<string, unknown> } };
  const METHODS = new Set(["get", "post", "put", "patch", "delete"]);

  async function documentOf(call: ReturnType<typeof setup>["call"]): Promise<Document> {
    const res = await call("GET", "/api/v1/openapi.json");
    expect(res.status).toBe(200);
    return (await res.json()) as Document;
  }

  function operations(doc: Document): [string, Operation][] {
    return Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([m]) => METHODS.has(m))
        .map(([m, op]) => [`${m.toUpperCase()} ${path}`, op] as [string, Operation]),
    );
  }

  test("lists exactly the routes the app has", async () => {
    const { app, call } = setup();
    const doc = await documentOf(call);
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.info.version).toBe("1.2.3-test");
    expect(operations(doc).map(([route]) => route).sort()).toEqual(appRoutes(app));
  });

  test("marks only the public routes as needing no token", async () => {
    const { call } = setup();
    const doc = await documentOf(call);
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: "http", scheme: "bearer" });
    for (const [route, op] of operations(doc)) {
      if (PUBLIC.has(route)) expect(op.security).toEqual([]);
      else {
        expect(op.security).toBeUndefined();
        expect(op.responses["401"]).toBeDefined();
      }
    }
  });

  test("describes bodies, parameters and responses", async () => {
    const { call } = setup();
    const doc = await documentOf(call);
    for (const [route, op] of operations(doc)) {
      expect(Object.keys(op.responses).some((s) => s.startsWith("2"))).toBe(true);
      if (route.startsWith("POST") || route.startsWith("PATCH")) {
        const noBody = route.endsWith("/revoke") || route.endsWith("/token");
        expect(op.requestBody === undefined).toBe(noBody);
      }
    }
    expect(doc.paths["/api/v1/devices"]!.get!.parameters!.map((p) => p.name)).toEqual(["cursor", "limit", "connected", "hardware_id", "q"]);
    expect(doc.paths["/api/v1/devices/{id}/commands"]!.post!.parameters!.map((p) => p.name)).toEqual(["wait", "timeout_ms"]);
    // Every $ref resolves.
    const text = JSON.stringify(doc);
    for (const [, kind, name] of text.matchAll(/"#\/components\/(schemas|responses)\/([A-Za-z]+)"/g)) {
      expect((doc.components as Record<string, Record<string, unknown>>)[kind!]![name!]).toBeDefined();
    }
  });
});

describe("bad-token rate limit", () => {
  test("a client address that keeps sending wrong tokens gets 429, even with the right one, for a while", async () => {
    const { createFakeDeps } = await import("./fake-deps.ts");
    const deps = createFakeDeps();
    const app = createApi(deps);
    const env = { requestIP: () => ({ address: "10.9.8.7" }) };
    const get = (token: string) => app.request("/api/v1/stats", { headers: { authorization: `Bearer ${token}` } }, env);
    for (let i = 0; i < 10; i++) expect((await get("wrong-token-xxxxxxxx")).status).toBe(401);
    const limited = await get(deps.apiToken);
    expect(limited.status).toBe(429);
    expect(((await limited.json()) as { error: { code: string } }).error.code).toBe("rate_limited");
    const other = await app.request("/api/v1/stats", { headers: { authorization: `Bearer ${deps.apiToken}` } }, { requestIP: () => ({ address: "10.9.8.6" }) });
    expect(other.status).toBe(200);
  });
});
