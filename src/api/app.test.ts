import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { GOOD_ID, PUBLIC, appRoutes, expectError, setup } from "./test-kit.ts";

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

  test("the dashboard is sent with a CSP allowing only its own inline script and style, and may not be framed", async () => {
    const { call } = setup();
    const res = await call("GET", "/", { auth: null });
    const html = await res.text();
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    const csp = res.headers.get("content-security-policy")!;
    const directives = new Map(csp.split("; ").map((d) => [d.split(" ")[0]!, d.split(" ").slice(1)]));
    expect(directives.get("default-src")).toEqual(["'none'"]);
    expect(directives.get("frame-ancestors")).toEqual(["'none'"]);
    expect(directives.get("connect-src")).toEqual(["'self'"]);
    // The hashes are those a browser computes over the page's one script and one style block.
    const sha = (t: string) => `'sha256-${createHash("sha256").update(t).digest("base64")}'`;
    const script = html.slice(html.indexOf("<script>") + 8, html.indexOf("</script>"));
    const style = html.slice(html.indexOf("<style>") + 7, html.indexOf("</style>"));
    expect(directives.get("script-src")).toEqual([sha(script)]);
    expect(directives.get("style-src")).toEqual([sha(style)]);
    expect(html.match(/<script/g)).toHaveLength(1);
    expect(html).not.toMatch(/ on[a-z]+=|style="/);
  });

  test("GET /readyz is a probe: it answers without a token (200 ready, 503 not ready)", async () => {
    const { call, deps } = setup();
    expect((await call("GET", "/readyz", { auth: null })).status).toBe(200);
    deps.readiness = { ready: false, workers_ready: 1, workers: 2, store: "ok", broker: {} };
    expect((await call("GET", "/readyz", { auth: null })).status).toBe(503);
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
      "GET /api/v1/outbox",
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
    expect(text).not.toContain("\nowsla_connections ");
    expect(text).toContain('owsla_connections{worker="1"} 5\n');
    expect(text).toContain('owsla_accepts_total{worker="0"} ');
    expect(text).toContain('# TYPE owsla_worker_restarts_total counter\nowsla_worker_restarts_total{worker="supervisor"} 1\n');
    expect(text).toMatch(/^owsla_build_info\{version="[^"]+",commit="[^"]+",target="[^"]+"\} 1$/m);
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
    const { call } = setup({ listDevices: async (q) => (seen.push(q), { devices: [], next_cursor: null }) });
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
