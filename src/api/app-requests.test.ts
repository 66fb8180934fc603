/** Control API: commands, request bodies, gateway routes, the OpenAPI document, bad-token limits. */
import { describe, expect, test } from "bun:test";
import { GOOD_ID, PUBLIC, appRoutes, expectError, setup } from "./test-kit.ts";

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

  test("GET /api/v1/outbox returns the outbox summary, limit devices listed", async () => {
    const { call } = setup();
    const res = await call("GET", "/api/v1/outbox?limit=1");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ rows: 4, bytes: 160, oldest_age_s: 60, devices_total: 2, devices: [{ rows: 3 }] });
    await expectError(await call("GET", "/api/v1/outbox?limit=0"), 400, "bad_request", '"limit"');
  });

  test("GET /api/v1/stats returns the summary", async () => {
    const { call } = setup();
    const res = await call("GET", "/api/v1/stats");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ gateway: "gw-test", version: "1.2.3-test", workers: { restarts: 1 } });
  });

  test("a failing dependency is a JSON internal error naming a log reference, not the internal message", async () => {
    const logged: { message: string; fields: { ref: string; err: Error } }[] = [];
    const { call } = setup({
      stats: async () => {
        throw new Error("SQLITE_IOERR at /var/lib/owsla/owsla.db");
      },
      logError: (message, fields) => void logged.push({ message, fields }),
    });
    const res = await call("GET", "/api/v1/stats");
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(res.status).toBe(500);
    expect(body.error.code).toBe("internal");
    expect(body.error.message).not.toContain("SQLITE");
    expect(body.error.message).not.toContain("/var/lib");
    expect(logged).toHaveLength(1);
    expect(logged[0]!.fields.err.message).toContain("SQLITE_IOERR");
    expect(body.error.message).toContain(`(ref ${logged[0]!.fields.ref})`);
  });

  test("a lone UTF-16 surrogate or a control character in a hardware id is a 400 naming the field, never a 500", async () => {
    const { call } = setup();
    for (const raw of ['{"hardware_id":"lock-\\ud800"}', '{"hardware_id":"\\udc00"}', '{"hardware_id":"lock\\n9"}', '{"hardware_id":"\\u001b[31mred"}', '{"hardware_id":"a\\u202eb"}']) {
      const res = await call("POST", "/api/v1/devices", { raw, headers: { "Content-Type": "application/json" } });
      await expectError(res, 400, "bad_request", 'Field "hardware_id" must be a string of 1 to 256 characters without control or format characters');
    }
    const corr = await call("POST", `/api/v1/devices/${GOOD_ID}/commands`, { raw: '{"body":1,"corr":"x\\ud800"}', headers: { "Content-Type": "application/json" } });
    await expectError(corr, 400, "bad_request", 'Field "corr" must be a well-formed string');
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
        // Wrong tokens from one address get 429 with Retry-After: documented on every protected route.
        expect(op.responses["429"]).toEqual({ $ref: "#/components/responses/RateLimited" });
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
  test("a client address that keeps sending wrong tokens gets 429 for them; the right token is never throttled", async () => {
    const { app, deps } = setup();
    const env = { requestIP: () => ({ address: "10.9.8.7" }) };
    const get = (token: string) => app.request("/api/v1/stats", { headers: { authorization: `Bearer ${token}` } }, env);
    for (let i = 0; i < 10; i++) expect((await get("wrong-token-xxxxxxxx")).status).toBe(401);
    const limited = await get("wrong-token-yyyyyyyy");
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("60");
    expect(((await limited.json()) as { error: { code: string } }).error.code).toBe("rate_limited");
    expect((await app.request("/api/v1/stats", {}, env)).status).toBe(429);
    // The operator, behind the same address (a reverse proxy, a NAT), is not locked out.
    expect((await get(deps.apiToken)).status).toBe(200);
    const other = await app.request("/api/v1/stats", { headers: { authorization: `Bearer ${deps.apiToken}` } }, { requestIP: () => ({ address: "10.9.8.6" }) });
    expect(other.status).toBe(200);
  });
});
