/**
 * Black-box tests of the control API of a running gateway (`serve --workers 2`): every route,
 * with real devices over TCP and the real RabbitMQ behind the workers. The API port is read
 * from the supervisor's "Control API listening" log line; the bearer token from
 * `<data>/api.token` (generated on first start).
 *
 * Covers: /healthz, /readyz, /metrics, /api/v1/{workers,stats,openapi.json}, the device
 * resource (paging, filters, detail, register, patch, revoke, token re-issue), commands
 * (plain, wait=ack acked, wait=ack timeout), kick, 401/400/404/413 JSON errors, a worker
 * restart as the API reports it, and revocation (also across a gateway restart on the same
 * data dir). A second gateway checks a configured api.token and the bad-token limit (429).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { TestDevice, type Frame } from "./helpers/device.ts";
import { removeDir, startGateway, type GatewayProcess } from "./helpers/gateway.ts";
import { waitFor, autoAck, cleanBroker } from "./helpers/util.ts";
import { parseExposition, sumOverWorkers } from "../src/api/prometheus-parse.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const UNKNOWN_ID = "0b9e7c1e-3f4a-4c1d-9a7b-2e5f6a7b8c9d";

let gw: GatewayProcess;
let base = "";
let token = "";
/** Every device socket opened by this file (closed in afterAll). */
const opened: TestDevice[] = [];
/** Hardware ids this file made known to the gateway (connected or registered). */
const knownHw = new Set<string>();

/** The control API base URL (no trailing slash), from the latest "Control API listening" line. */
function apiBase(g: GatewayProcess): string {
  const line = g.json().findLast((l) => l.msg === "Control API listening");
  if (!line?.url) throw new Error(`No "Control API listening" line in the gateway log:\n${g.logs.slice(-20).join("\n")}`);
  return String(line.url).replace(/\/$/, "");
}

interface Reply {
  status: number;
  json: any;
  text: string;
  headers: Headers;
}

/** Calls the API; `auth` null sends no Authorization header, a string sends that header. */
async function api(method: string, path: string, opts: { body?: unknown; raw?: string; auth?: string | null } = {}): Promise<Reply> {
  const headers: Record<string, string> = {};
  const auth = opts.auth === undefined ? `Bearer ${token}` : opts.auth;
  if (auth !== null) headers.authorization = auth;
  let body: string | undefined;
  if (opts.raw !== undefined) body = opts.raw;
  else if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(base + path, { method, headers, body });
  const text = await res.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, json, text, headers: res.headers };
}

/** GET that must answer 200; returns the JSON body. */
async function get(path: string): Promise<any> {
  const r = await api("GET", path);
  if (r.status !== 200) throw new Error(`GET ${path} answered ${r.status}: ${r.text}`);
  return r.json;
}

/** Connects `hw` with its original (generation 0) token; the socket is closed in afterAll. */
async function connect(hw: string): Promise<{ dev: TestDevice; id: string; conn: string }> {
  const { dev, welcome } = await gw.device(hw);
  opened.push(dev);
  knownHw.add(hw);
  return { dev, id: welcome.id, conn: welcome.conn };
}

/** Connects `hw` presenting `tok`; returns the device and the welcome or error frame. */
async function connectWith(hw: string, tok: string): Promise<{ dev: TestDevice; frame: Frame }> {
  const dev = await TestDevice.connect(gw.port);
  opened.push(dev);
  dev.send({ op: "hello", v: 1, device: hw, token: tok });
  const frame = await dev.next((f) => f.op === "welcome" || f.op === "error");
  return { dev, frame };
}

/** The device's detail once the store shows it connected (the row is committed in a batch). */
async function whenConnected(id: string): Promise<any> {
  return await waitFor(`device ${id} connected in the API`, async () => {
    // A new device's row may not be committed yet: 404 until then.
    const r = await api("GET", `/api/v1/devices/${id}`);
    if (r.status === 404) return null;
    if (r.status !== 200) throw new Error(`GET device ${id} answered ${r.status}: ${r.text}`);
    return r.json.connected ? r.json : null;
  });
}

async function whenDisconnected(id: string): Promise<any> {
  return await waitFor(`device ${id} disconnected in the API`, async () => {
    const d = await get(`/api/v1/devices/${id}`);
    return d.connected ? null : d;
  });
}

/** Every device, following next_cursor with page size `limit`; returns the pages. */
async function allPages(query: string, limit: number): Promise<any[][]> {
  const pages: any[][] = [];
  let cursor: string | null = null;
  do {
    const q = new URLSearchParams(query);
    q.set("limit", String(limit));
    if (cursor) q.set("cursor", cursor);
    const page = await get(`/api/v1/devices?${q}`);
    pages.push(page.devices);
    cursor = page.next_cursor;
    if (pages.length > 100) throw new Error("paging does not end");
  } while (cursor);
  return pages;
}


beforeAll(async () => {
  // Refused hellos of revoked tokens are expected here: no address bans (tested elsewhere).
  gw = await startGateway({ gatewayId: "api-gw", args: ["--workers", "2", "--auth-ban-failures", "0"] });
  base = apiBase(gw);
  token = readFileSync(join(gw.dir, "api.token"), "utf8").trim();
});

afterAll(async () => {
  for (const d of opened) if (!d.closed) d.close();
  if (gw) {
    await gw.kill();
    await cleanBroker(gw);
    removeDir(gw.dir);
  }
});

describe("probes and auth", () => {
  test("the API listens on loopback and the token was generated into the data dir", () => {
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(token.length).toBeGreaterThanOrEqual(16);
    // Printed once on creation (stderr), so an operator can copy it.
    expect(gw.logs.some((l) => l.includes(token))).toBe(true);
  });

  test("GET /healthz answers without a token", async () => {
    const r = await api("GET", "/healthz", { auth: null });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toContain("application/json");
    expect(r.json).toEqual({ status: "ok" });
  });

  test("GET /readyz (readiness probe) answers without a token: 200 with every worker listening", async () => {
    const r = await api("GET", "/readyz", { auth: null });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ ready: true, workers_ready: 2, workers: 2, store: "ok" });
  });

  test("every other route answers 401 JSON `unauthorized` without, with a wrong or a malformed token", async () => {
    // Fewer than 10 refusals: more within a minute get the client address banned (429).
    const bad = [null, `Bearer ${token}x`, "Bearer wrong-token-entirely", `Basic ${token}`, token];
    const routes: [string, string][] = [
      ["GET", "/metrics"],
      ["GET", "/api/v1/devices"],
      ["GET", `/api/v1/devices/${UNKNOWN_ID}`],
      ["POST", `/api/v1/devices/${UNKNOWN_ID}/commands`],
      ["DELETE", `/api/v1/devices/${UNKNOWN_ID}/connection`],
      ["GET", "/api/v1/workers"],
      ["GET", "/api/v1/stats"],
      ["GET", "/api/v1/openapi.json"],
    ];
    for (const [i, [method, path]] of routes.entries()) {
      const auth = bad[i % bad.length]!;
      const r = await api(method, path, { auth, body: method === "POST" ? { body: 1 } : undefined });
      if (r.status !== 401) throw new Error(`${method} ${path} with auth ${JSON.stringify(auth)} answered ${r.status}: ${r.text}`);
      expect(r.headers.get("content-type")).toContain("application/json");
      expect(r.json.error.code).toBe("unauthorized");
      expect(typeof r.json.error.message).toBe("string");
      expect(r.headers.get("www-authenticate")).toContain("Bearer");
    }
    // The right token still works.
    expect((await api("GET", "/api/v1/stats")).status).toBe(200);
  });

  test("an unknown route answers 404 JSON `not_found`", async () => {
    const r = await api("GET", "/api/v1/nothing-here");
    expect(r.status).toBe(404);
    expect(r.json.error.code).toBe("not_found");
  });
});

describe("gateway routes", () => {
  test("GET /readyz: ready with both workers and the broker state of each", async () => {
    const r = await api("GET", "/readyz");
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ ready: true, workers: 2, workers_ready: 2, store: "ok" });
    expect(r.json.broker).toEqual({ "0": "up", "1": "up" });
  });

  test("GET /api/v1/workers: two workers with the pids of the supervisor's children", async () => {
    const { workers } = await get("/api/v1/workers");
    expect(workers).toHaveLength(2);
    expect(workers.map((w: any) => w.id).sort()).toEqual([0, 1]);
    const pids = gw.workerPids().sort();
    expect(workers.map((w: any) => w.pid).sort()).toEqual(pids);
    for (const w of workers) {
      expect(w).toMatchObject({ up: true, ready: true, restarts: 0, broker: "up" });
      expect(typeof w.connections).toBe("number");
      expect(Number.isNaN(Date.parse(w.started_at))).toBe(false);
    }
  });

  test("GET /api/v1/openapi.json describes every route", async () => {
    const doc = await get("/api/v1/openapi.json");
    expect(doc.openapi).toMatch(/^3\./);
    const paths = Object.keys(doc.paths);
    for (const p of [
      "/healthz",
      "/readyz",
      "/metrics",
      "/api/v1/devices",
      "/api/v1/devices/{id}",
      "/api/v1/devices/{id}/commands",
      "/api/v1/devices/{id}/connection",
      "/api/v1/devices/{id}/revoke",
      "/api/v1/devices/{id}/token",
      "/api/v1/workers",
      "/api/v1/stats",
    ]) {
      expect(paths).toContain(p);
    }
    expect(Object.keys(doc.paths["/api/v1/devices"])).toEqual(expect.arrayContaining(["get", "post"]));
    expect(Object.keys(doc.paths["/api/v1/devices/{id}"])).toEqual(expect.arrayContaining(["get", "patch"]));
  });
});

describe("device list", () => {
  const ids = new Map<string, string>(); // hw -> id
  const socks = new Map<string, TestDevice>(); // hw -> socket
  const byeHw = ["pg-01", "pg-04", "pg-07", "pg-10"];

  test("pages of 5 over 12 devices with next_cursor, ordered, no duplicates", async () => {
    const devs = await Promise.all(Array.from({ length: 12 }, (_, i) => connect(`pg-${String(i).padStart(2, "0")}`)));
    devs.forEach((d, i) => {
      ids.set(`pg-${String(i).padStart(2, "0")}`, d.id);
      socks.set(`pg-${String(i).padStart(2, "0")}`, d.dev);
    });
    for (const d of devs) await whenConnected(d.id);

    // Only these 12 match q=pg- : exactly 5 + 5 + 2.
    const pages = await allPages("q=pg-", 5);
    expect(pages.map((p) => p.length)).toEqual([5, 5, 2]);
    const flat = pages.flat();
    expect(new Set(flat.map((d) => d.id)).size).toBe(12);
    expect(flat.map((d) => d.id)).toEqual([...ids.values()].sort());
    expect(flat.map((d) => d.hardware_id).sort()).toEqual([...ids.keys()].sort());
    for (const d of flat) {
      expect(d.connected).toBe(true);
      expect([0, 1]).toContain(d.worker);
      expect(d.connection_id).toMatch(UUID);
      expect(d.revoked).toBe(false);
    }

    // Unfiltered paging with a small limit equals one big page.
    const all = (await get("/api/v1/devices?limit=1000")).devices.map((d: any) => d.id);
    expect(all.length).toBeGreaterThanOrEqual(12);
    const paged = (await allPages("", 3)).flat().map((d) => d.id);
    expect(paged).toEqual(all);

    // The last page says so.
    const one = await get(`/api/v1/devices?limit=1000&q=pg-`);
    expect(one.next_cursor).toBeNull();
  }, 20_000);

  test("filters: connected=true / connected=false / hardware_id", async () => {
    for (const hw of byeHw) {
      const dev = socks.get(hw)!;
      dev.send({ op: "bye" });
      await dev.waitClosed();
    }
    for (const hw of byeHw) await whenDisconnected(ids.get(hw)!);

    const on = (await allPages("q=pg-&connected=true", 4)).flat();
    expect(on.map((d) => d.hardware_id).sort()).toEqual([...ids.keys()].filter((h) => !byeHw.includes(h)).sort());
    expect(on.every((d) => d.connected === true)).toBe(true);

    const off = (await allPages("q=pg-&connected=false", 4)).flat();
    expect(off.map((d) => d.hardware_id).sort()).toEqual(byeHw);
    for (const d of off) {
      expect(d.connected).toBe(false);
      expect(d.worker).toBeNull();
      expect(d.last_close_reason).toBe("bye");
    }

    const hwPage = await get("/api/v1/devices?hardware_id=pg-03");
    expect(hwPage.devices).toHaveLength(1);
    expect(hwPage.devices[0].id).toBe(ids.get("pg-03"));
    expect(hwPage.next_cursor).toBeNull();
    expect((await get("/api/v1/devices?hardware_id=no-such-hw")).devices).toEqual([]);
    // An exact match, not a prefix.
    expect((await get("/api/v1/devices?hardware_id=pg-0")).devices).toEqual([]);
  }, 15_000);

  test("bad query parameters are 400 `bad_request`", async () => {
    for (const q of ["limit=0", "limit=abc", "limit=100000", "connected=yes"]) {
      const r = await api("GET", `/api/v1/devices?${q}`);
      expect(r.status).toBe(400);
      expect(r.json.error.code).toBe("bad_request");
    }
  });
});

describe("device detail and commands", () => {
  test("detail of a connected device shows its worker and connection", async () => {
    const { id, conn } = await connect("detail-on");
    const d = await whenConnected(id);
    expect(d).toMatchObject({ id, hardware_id: "detail-on", connected: true, connection_id: conn, revoked: false, pending_commands: 0 });
    expect([0, 1]).toContain(d.worker);
    const wk = (await get("/api/v1/workers")).workers.find((w: any) => w.id === d.worker);
    expect(wk.connections).toBeGreaterThanOrEqual(1);
  });

  test("an offline device keeps a stored command: pending_commands 1, delivered on reconnect, 0 after the ack", async () => {
    const { dev, id } = await connect("detail-off");
    await whenConnected(id);
    dev.send({ op: "bye" });
    await dev.waitClosed();
    await whenDisconnected(id);

    const r = await api("POST", `/api/v1/devices/${id}/commands`, { body: { topic: "valve.open", body: { pct: 40 }, corr: "c-off" } });
    expect(r.status).toBe(202);
    expect(r.json.id).toEqual(expect.any(String));

    const d = await get(`/api/v1/devices/${id}`);
    expect(d).toMatchObject({ id, connected: false, worker: null, connection_id: null, pending_commands: 1, last_close_reason: "bye" });

    const again = await connect("detail-off");
    const cmd = await again.dev.op("cmd");
    expect(cmd).toMatchObject({ id: r.json.id, topic: "valve.open", body: { pct: 40 }, corr: "c-off" });
    again.dev.send({ op: "ack", ref: cmd.id });
    await waitFor("pending_commands 0", async () => (await get(`/api/v1/devices/${id}`)).pending_commands === 0);
  });

  test("unknown and malformed device ids: 404 `not_found` and 400 `bad_request`", async () => {
    for (const [method, suffix, body] of [
      ["GET", "", undefined],
      ["PATCH", "", { room: "x" }],
      ["POST", "/commands", { topic: "a", body: 1 }],
      ["DELETE", "/connection", undefined],
      ["POST", "/revoke", undefined],
      ["POST", "/token", undefined],
    ] as const) {
      const nf = await api(method, `/api/v1/devices/${UNKNOWN_ID}${suffix}`, { body });
      expect([method, suffix, nf.status, nf.json?.error?.code]).toEqual([method, suffix, 404, "not_found"]);
      const bad = await api(method, `/api/v1/devices/not-a-uuid${suffix}`, { body });
      expect([method, suffix, bad.status, bad.json?.error?.code]).toEqual([method, suffix, 400, "bad_request"]);
    }
  });

  test("POST commands reaches a connected device on either worker; wait=ack answers acked:true", async () => {
    // Connect until both workers hold at least one device.
    const held = new Map<number, { dev: TestDevice; id: string; got: Frame[] }>();
    for (let i = 0; i < 40 && held.size < 2; i++) {
      const c = await connect(`cmd-${i}`);
      const d = await whenConnected(c.id);
      if (!held.has(d.worker)) held.set(d.worker, { dev: c.dev, id: c.id, got: autoAck(c.dev) });
    }
    expect([...held.keys()].sort()).toEqual([0, 1]);

    for (const [worker, h] of held) {
      const r = await api("POST", `/api/v1/devices/${h.id}/commands`, { body: { topic: "lights.set", body: { on: true, w: worker } } });
      expect(r.status).toBe(202);
      expect(r.json.id).toEqual(expect.any(String));
      const f = await waitFor(`command on worker ${worker}`, () => h.got.find((x) => x.id === r.json.id));
      expect(f).toMatchObject({ op: "cmd", topic: "lights.set", body: { on: true, w: worker }, corr: null });

      const t0 = Date.now();
      const w = await api("POST", `/api/v1/devices/${h.id}/commands?wait=ack&timeout_ms=5000`, { body: { topic: "lights.dim", body: 30, corr: "k1" } });
      expect(w.status).toBe(200);
      expect(w.json).toEqual({ id: expect.any(String), acked: true });
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(h.got.some((x) => x.id === w.json.id && x.corr === "k1" && x.body === 30)).toBe(true);
    }
    // Default topic when none is given.
    const [, h0] = [...held][0]!;
    const r = await api("POST", `/api/v1/devices/${h0.id}/commands?wait=ack`, { body: { body: null } });
    expect(r.status).toBe(200);
    expect(h0.got.find((x) => x.id === r.json.id)?.topic).toBe("cmd");
    await waitFor("acked commands removed", async () => (await get(`/api/v1/devices/${h0.id}`)).pending_commands === 0);
  }, 20_000);

  test("wait=ack answers 504 `timeout` when the device does not ack; the command stays pending", async () => {
    const { dev, id } = await connect("cmd-silent");
    await whenConnected(id);
    const t0 = Date.now();
    const r = await api("POST", `/api/v1/devices/${id}/commands?wait=ack&timeout_ms=800`, { body: { topic: "door.lock", body: {} } });
    const took = Date.now() - t0;
    expect(r.status).toBe(504);
    expect(r.json.error.code).toBe("timeout");
    expect(took).toBeGreaterThanOrEqual(700);
    expect(took).toBeLessThan(4000);
    const cmd = await dev.op("cmd");
    expect(cmd.topic).toBe("door.lock");
    expect((await get(`/api/v1/devices/${id}`)).pending_commands).toBe(1);
    dev.send({ op: "ack", ref: cmd.id });
    await waitFor("pending 0 after the late ack", async () => (await get(`/api/v1/devices/${id}`)).pending_commands === 0);
  });

  test("wait=ack for an offline device answers acked:true when it connects and acks within the timeout", async () => {
    const { dev, id } = await connect("cmd-late");
    await whenConnected(id);
    dev.send({ op: "bye" });
    await dev.waitClosed();
    await whenDisconnected(id);
    const pending = api("POST", `/api/v1/devices/${id}/commands?wait=ack&timeout_ms=4000`, { body: { topic: "late", body: 1 } });
    await Bun.sleep(300);
    const back = await connect("cmd-late");
    const got = autoAck(back.dev);
    const r = await pending;
    expect(got.map((f) => f.topic)).toContain("late");
    expect([r.status, r.json]).toEqual([200, { id: expect.any(String), acked: true }]);
  }, 10_000);

  test("bad command requests are 400 `bad_request`", async () => {
    const { id } = await connect("cmd-bad");
    await whenConnected(id);
    const cases: { q?: string; body?: unknown; raw?: string }[] = [
      { raw: "" },
      { raw: "{not json" },
      { body: [1, 2] },
      { body: { topic: "a" } }, // no body
      { body: { topic: "bad topic!", body: 1 } },
      { body: { body: 1, extra: true } },
      { body: { body: 1, ttl_s: 0 } },
      { q: "wait=nope", body: { body: 1 } },
      { q: "wait=ack&timeout_ms=0", body: { body: 1 } },
    ];
    for (const c of cases) {
      const r = await api("POST", `/api/v1/devices/${id}/commands${c.q ? `?${c.q}` : ""}`, { body: c.body, raw: c.raw });
      expect([JSON.stringify(c), r.status, r.json?.error?.code]).toEqual([JSON.stringify(c), 400, "bad_request"]);
    }
    const big = await api("POST", `/api/v1/devices/${id}/commands`, { body: { body: "x".repeat(70_000) } });
    expect(big.status).toBe(413);
    expect(big.json.error.code).toBe("payload_too_large");
    expect((await get(`/api/v1/devices/${id}`)).pending_commands).toBe(0);
  });

  test("DELETE /connection closes the device's socket on either worker; a second kick is 409 `not_connected`", async () => {
    const held = new Map<number, { dev: TestDevice; id: string; hw: string }>();
    for (let i = 0; i < 40 && held.size < 2; i++) {
      const c = await connect(`kick-${i}`);
      const d = await whenConnected(c.id);
      if (!held.has(d.worker)) held.set(d.worker, { ...c, hw: `kick-${i}` });
    }
    expect([...held.keys()].sort()).toEqual([0, 1]);
    for (const { dev, id, hw } of held.values()) {
      const r = await api("DELETE", `/api/v1/devices/${id}/connection`);
      expect(r.status).toBe(200);
      expect(r.json).toEqual({ kicked: true });
      await dev.waitClosed(2000);
      const d = await whenDisconnected(id);
      expect(d.last_close_reason).toBe("kicked");
      const again = await api("DELETE", `/api/v1/devices/${id}/connection`);
      expect(again.status).toBe(409);
      expect(again.json.error.code).toBe("not_connected");
      // It may reconnect.
      const back = await connect(hw);
      back.dev.send({ op: "ping" });
      await back.dev.op("pong");
    }
  });
});

describe("registration", () => {
  test("POST /devices registers with room/kind/label; GET shows the meta; PATCH merges", async () => {
    const r = await api("POST", "/api/v1/devices", { body: { hardware_id: "reg-lamp-1", room: "kitchen", kind: "lamp", label: "Ceiling", meta: { floor: 2 } } });
    expect(r.status).toBe(201);
    knownHw.add("reg-lamp-1");
    const id = r.json.device.id;
    expect(id).toMatch(UUID);
    expect(r.headers.get("location")).toBe(`/api/v1/devices/${id}`);
    expect(r.json.device).toMatchObject({ hardware_id: "reg-lamp-1", connected: false, revoked: false, meta: { room: "kitchen", kind: "lamp", label: "Ceiling", floor: 2 } });
    expect(r.json.token).toBe(gw.token("reg-lamp-1"));

    const d = await get(`/api/v1/devices/${id}`);
    expect(d.meta).toEqual({ room: "kitchen", kind: "lamp", label: "Ceiling", floor: 2 });

    const p = await api("PATCH", `/api/v1/devices/${id}`, { body: { room: "hall", meta: { note: "moved" } } });
    expect(p.status).toBe(200);
    expect(p.json.meta).toEqual({ room: "hall", kind: "lamp", label: "Ceiling", floor: 2, note: "moved" });
    expect((await get(`/api/v1/devices/${id}`)).meta).toEqual(p.json.meta);

    // Registering again is not a creation.
    const again = await api("POST", "/api/v1/devices", { body: { hardware_id: "reg-lamp-1" } });
    expect(again.status).toBe(200);
    expect(again.json.device.id).toBe(id);
    expect(again.json.device.meta.room).toBe("hall");

    // The token it handed out works, and the device keeps its metadata once connected.
    const { frame } = await connectWith("reg-lamp-1", r.json.token);
    expect(frame).toMatchObject({ op: "welcome", id });
    const on = await whenConnected(id);
    expect(on.meta.room).toBe("hall");
    // Searchable by metadata (the dashboard's search box uses q).
    expect((await get("/api/v1/devices?q=hall")).devices.map((x: any) => x.id)).toContain(id);

    for (const bad of [{}, { hardware_id: "" }, { hardware_id: 5 }, { hardware_id: "x", colour: "red" }, { hardware_id: "x", room: 3 }]) {
      const b = await api("POST", "/api/v1/devices", { body: bad });
      expect([JSON.stringify(bad), b.status, b.json?.error?.code]).toEqual([JSON.stringify(bad), 400, "bad_request"]);
    }
    const bp = await api("PATCH", `/api/v1/devices/${id}`, { body: { hardware_id: "other" } });
    expect(bp.status).toBe(400);
  });

  test("hardware ids with control characters or a lone surrogate are refused at registration (400) and at hello (bad_frame)", async () => {
    for (const raw of ['{"hardware_id":"lock-\\ud800"}', '{"hardware_id":"lock\\n9"}', '{"hardware_id":"\\u001b[2Jlock"}']) {
      const r = await api("POST", "/api/v1/devices", { raw });
      expect([raw, r.status, r.json?.error?.code]).toEqual([raw, 400, "bad_request"]);
      expect(r.json.error.message).toContain('Field "hardware_id" must be');
    }
    for (const device of ["lock\n9", "\u001b[2Jlock", "a\u0000b"]) {
      const { dev, frame } = await connectWith(device, "x");
      expect(frame).toMatchObject({ op: "error", code: "bad_frame" });
      expect(String(frame.message)).toContain("without control or format characters");
      dev.close();
      await dev.waitClosed();
    }
    expect((await get(`/api/v1/devices?q=${encodeURIComponent("lock\n9")}`)).devices).toEqual([]);
  });
});

describe("stats and metrics", () => {
  test("GET /api/v1/stats numbers follow what the test did", async () => {
    const s0 = await get("/api/v1/stats");
    const devs = await Promise.all([0, 1, 2].map((i) => connect(`stat-${i}`)));
    for (const d of devs) await whenConnected(d.id);
    const got = autoAck(devs[0]!.dev);
    for (const d of devs) for (let i = 0; i < 4; i++) d.dev.send({ op: "pub", topic: "temp", body: { i }, ref: `r${i}` });
    for (const d of devs) for (let i = 0; i < 4; i++) await d.dev.next((f) => f.op === "ack" && f.ref === `r${i}`);
    for (let i = 0; i < 2; i++) {
      const r = await api("POST", `/api/v1/devices/${devs[0]!.id}/commands?wait=ack`, { body: { topic: "s", body: i } });
      expect(r.status).toBe(200);
    }
    expect(got).toHaveLength(2);
    // wait=ack answers on the ack; the inbox row goes in the next store batch.
    await waitFor("acked commands removed", async () => (await get(`/api/v1/devices/${devs[0]!.id}`)).pending_commands === 0);

    // 3 presence "connected" + 12 pubs go up; 2 commands down.
    const s1 = await waitFor("stats deltas", async () => {
      const s = await get("/api/v1/stats");
      return s.messages_up_total - s0.messages_up_total >= 15 && s.messages_down_total - s0.messages_down_total >= 2 ? s : null;
    });
    expect(s1.accepts_total - s0.accepts_total).toBe(3);
    expect(s1.welcomes_total - s0.welcomes_total).toBe(3);
    // At least this test's 15: a device closed by an earlier test may still have its
    // "disconnected" presence on the way up, which the same counter counts (seen in CI: 16).
    expect(s1.messages_up_total - s0.messages_up_total).toBeGreaterThanOrEqual(15);
    expect(s1.messages_down_total - s0.messages_down_total).toBe(2);
    expect(s1).toMatchObject({
      gateway: "api-gw",
      outbox_depth: 0,
      broker: { up: 2, total: 2, reconnects: 0 },
      workers: { up: 2, total: 2, restarts: 0 },
    });
    expect(typeof s1.version).toBe("string");
    expect(s1.uptime_s).toBeGreaterThanOrEqual(0);

    // Absolute numbers against what this file opened and registered.
    const live = opened.filter((d) => !d.closed).length;
    expect(s1.connections).toBe(live);
    const connectedRows = (await allPages("connected=true", 1000)).flat();
    expect(connectedRows).toHaveLength(live);
    const wk = (await get("/api/v1/workers")).workers;
    expect(wk.reduce((n: number, w: any) => n + w.connections, 0)).toBe(live);
    expect(s1.devices_known).toBe(knownHw.size);
    const everything = (await allPages("", 1000)).flat();
    expect(everything).toHaveLength(knownHw.size);
    let pending = 0;
    for (const d of everything) pending += (await get(`/api/v1/devices/${d.id}`)).pending_commands;
    expect(s1.inbox_depth).toBe(pending);
  }, 20_000);

  test("GET /metrics: Prometheus text aggregated over both workers", async () => {
    // Some closes of known reasons (earlier tests add more).
    const a = await connect("met-bye");
    await whenConnected(a.id);
    a.dev.send({ op: "bye" });
    await a.dev.waitClosed();
    await whenDisconnected(a.id);
    const b = await connect("met-kick");
    await whenConnected(b.id);
    expect((await api("DELETE", `/api/v1/devices/${b.id}/connection`)).status).toBe(200);
    await b.dev.waitClosed();
    await whenDisconnected(b.id);

    const r = await api("GET", "/metrics");
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toContain("text/plain");
    expect(r.headers.get("content-type")).toContain("version=0.0.4");
    const samples = parseExposition(r.text);
    const m = sumOverWorkers(samples);
    const s = await get("/api/v1/stats");

    // One family per metric, a worker label on every series: sum() counts each connection once.
    expect(samples.has(`owsla_connections{worker="0"}`)).toBe(true);
    expect(samples.has(`owsla_connections{worker="1"}`)).toBe(true);
    expect(samples.has("owsla_connections")).toBe(false);
    expect(m.get("owsla_connections")).toBe(s.connections);

    expect(m.get("owsla_accepts_total")).toBe(s.accepts_total);
    expect(m.get("owsla_welcomes_total")).toBe(s.welcomes_total);
    expect(m.get("owsla_messages_up_total")).toBe(s.messages_up_total);
    expect(m.get("owsla_messages_down_total")).toBe(s.messages_down_total);
    expect(m.get("owsla_device_acks_total")).toBeGreaterThanOrEqual(2);
    expect(m.get(`owsla_closes_total{reason="bye"}`)).toBeGreaterThanOrEqual(1);
    expect(m.get(`owsla_closes_total{reason="kicked"}`)).toBeGreaterThanOrEqual(1);
    expect(samples.get(`owsla_worker_restarts_total{worker="supervisor"}`)).toBe(0);
    expect(r.text).toContain("# TYPE owsla_worker_restarts_total counter");
    expect(m.get("owsla_outbox_depth")).toBe(0);
    expect(m.get("owsla_inbox_depth")).toBe(s.inbox_depth);
    expect(samples.get(`owsla_broker_up{worker="0"}`)).toBe(1);
    expect(samples.get(`owsla_broker_up{worker="1"}`)).toBe(1);
    expect(m.get("owsla_broker_reconnects_total")).toBe(0);
    expect(r.text).toContain("# TYPE owsla_broker_reconnects_total counter");

    // Conventions over the whole exposition: counters end in _total, names carry base units,
    // every sample but owsla_build_info names its process (a worker or the supervisor).
    const types = [...r.text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((x) => [x[1]!, x[2]!] as const);
    expect(types.length).toBeGreaterThan(20);
    for (const [name, type] of types) {
      if (type === "counter") expect(name).toMatch(/_total$/);
      expect(name).not.toMatch(/_(ms|milliseconds|us|minutes|hours|kb|kib|mb|mib)(_|$)/);
    }
    for (const series of samples.keys()) if (!series.startsWith("owsla_build_info{")) expect(series).toMatch(/[{,]worker="(\d+|supervisor)"/);

    // Build and process metrics, for every process.
    expect([...samples.keys()].filter((k) => k.startsWith("owsla_build_info{"))).toEqual([expect.stringMatching(/^owsla_build_info\{version="[^"]+",commit="[^"]+",target="[^"]+"\}$/)]);
    for (const w of ["0", "1", "supervisor"]) {
      expect(samples.get(`process_resident_memory_bytes{worker="${w}"}`)).toBeGreaterThan(1 << 20);
      expect(samples.get(`process_open_fds{worker="${w}"}`)).toBeGreaterThan(3);
      expect(samples.get(`process_cpu_seconds_total{worker="${w}"}`)).toBeGreaterThan(0);
    }

    // Latency histograms in seconds: cumulative buckets ending in +Inf == _count.
    expect(r.text).toContain("# TYPE owsla_publish_confirm_seconds histogram");
    expect(r.text).not.toMatch(/^owsla_\w+_ms/m);
    const inf = m.get(`owsla_publish_confirm_seconds_bucket{le="+Inf"}`)!;
    expect(inf).toBeGreaterThanOrEqual(s.messages_up_total);
    expect(m.get("owsla_publish_confirm_seconds_count")).toBe(inf);
    const buckets = [...m].filter(([k]) => k.startsWith("owsla_publish_confirm_seconds_bucket")).map(([, v]) => v);
    expect(buckets.length).toBeGreaterThan(2);
    for (let i = 1; i < buckets.length; i++) expect(buckets[i]!).toBeGreaterThanOrEqual(buckets[i - 1]!);
    // Welcome latency: one observation per welcome.
    expect(r.text).toContain("# TYPE owsla_welcome_seconds histogram");
    expect(m.get("owsla_welcome_seconds_count")).toBe(s.welcomes_total);
    // Command delivery latency: the commands sent above were observed when written to their devices.
    expect(r.text).toContain("# TYPE owsla_command_delivery_seconds histogram");
    expect(m.get("owsla_command_delivery_seconds_count")).toBeGreaterThan(0);
    expect(m.get(`owsla_command_delivery_seconds_bucket{le="+Inf"}`)).toBe(m.get("owsla_command_delivery_seconds_count"));
    // Outbox and inbox fill levels in base units, on every worker.
    for (const w of ["0", "1"]) {
      for (const q of ["outbox", "inbox"]) {
        expect(samples.get(`owsla_${q}_bytes{worker="${w}"}`)).toBeGreaterThanOrEqual(0);
        expect(samples.get(`owsla_${q}_oldest_age_seconds{worker="${w}"}`)).toBeGreaterThanOrEqual(0);
      }
    }
  });
});

describe("worker restarts", () => {
  test("a killed worker is restarted: workers, stats, metrics and readyz show it", async () => {
    const before = (await get("/api/v1/workers")).workers;
    const victim = before.find((w: any) => w.id === 1);
    process.kill(victim.pid, "SIGKILL");
    const after = await waitFor(
      "worker 1 back with a new pid",
      async () => {
        const ws = (await get("/api/v1/workers")).workers;
        const w = ws.find((x: any) => x.id === 1);
        return w && w.pid !== victim.pid && w.up && w.ready && w.broker === "up" ? ws : null;
      },
      15_000,
    );
    expect(after.find((w: any) => w.id === 1).restarts).toBe(1);
    expect(after.find((w: any) => w.id === 0)).toMatchObject({ pid: before.find((w: any) => w.id === 0).pid, restarts: 0 });
    const s = await get("/api/v1/stats");
    expect(s.workers).toEqual({ up: 2, total: 2, restarts: 1 });
    const m = parseExposition((await api("GET", "/metrics")).text);
    expect(m.get(`owsla_worker_restarts_total{worker="supervisor"}`)).toBe(1);
    expect(m.has(`owsla_connections{worker="1"}`)).toBe(true);
    const ready = await api("GET", "/readyz");
    expect(ready.status).toBe(200);
    expect(ready.json.broker).toEqual({ "0": "up", "1": "up" });
  }, 20_000);
});

describe("revocation", () => {
  test("revoking a pre-registered device refuses its registration token; revoking again refuses the re-issued one", async () => {
    const reg = await api("POST", "/api/v1/devices", { body: { hardware_id: "rev-pre", room: "attic" } });
    expect(reg.status).toBe(201);
    knownHw.add("rev-pre");
    const id = reg.json.device.id;
    const rv = await api("POST", `/api/v1/devices/${id}/revoke`);
    expect(rv.status).toBe(200);
    expect(rv.json).toMatchObject({ revoked: true, connected: false, meta: { room: "attic" } });
    for (let i = 0; i < 4; i++) {
      const { frame } = await connectWith("rev-pre", reg.json.token);
      expect(frame).toMatchObject({ op: "error", code: "unauthorized" });
    }
    const t1 = (await api("POST", `/api/v1/devices/${id}/token`)).json.token;
    const ok = await connectWith("rev-pre", t1);
    expect(ok.frame).toMatchObject({ op: "welcome", id });
    await whenConnected(id);
    // Second revocation: the first re-issued token stops working too.
    expect((await api("POST", `/api/v1/devices/${id}/revoke`)).status).toBe(200);
    await ok.dev.waitClosed(2000);
    for (let i = 0; i < 4; i++) {
      const { frame } = await connectWith("rev-pre", t1);
      expect(frame).toMatchObject({ op: "error", code: "unauthorized" });
    }
    const t2 = (await api("POST", `/api/v1/devices/${id}/token`)).json.token;
    expect(t2).not.toBe(t1);
    expect((await connectWith("rev-pre", t2)).frame).toMatchObject({ op: "welcome", id });
  }, 15_000);

  test("revoke disconnects at once; the old token is refused, also after a restart; a re-issued token works", async () => {
    const { dev, id } = await connect("rev-dev");
    await whenConnected(id);
    const oldToken = gw.token("rev-dev");

    const t0 = Date.now();
    const r = await api("POST", `/api/v1/devices/${id}/revoke`);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ id, revoked: true });
    const e = await dev.op("error", 2000);
    expect(e.code).toBe("unauthorized");
    await dev.waitClosed(2000);
    expect(Date.now() - t0).toBeLessThan(2000);
    const d = await whenDisconnected(id);
    expect(d).toMatchObject({ revoked: true, last_close_reason: "revoked" });

    // Refused on whichever worker takes the connection.
    for (let i = 0; i < 6; i++) {
      const { dev: again, frame } = await connectWith("rev-dev", oldToken);
      expect(frame).toMatchObject({ op: "error", code: "unauthorized" });
      await again.waitClosed();
    }
    const m = sumOverWorkers(parseExposition((await api("GET", "/metrics")).text));
    expect(m.get(`owsla_closes_total{reason="revoked"}`)).toBeGreaterThanOrEqual(1);
    expect(m.get("owsla_auth_failures_total")).toBeGreaterThanOrEqual(6);

    // Restart on the same data dir: the revocation holds.
    expect(await gw.stop()).toBe(0);
    await gw.start();
    base = apiBase(gw);
    // The generated API token is printed once, when created, not on every start.
    expect(gw.logs.some((l) => l.includes(token))).toBe(false);
    expect((await api("GET", "/readyz")).status).toBe(200);
    expect((await get(`/api/v1/devices/${id}`)).revoked).toBe(true);
    for (let i = 0; i < 6; i++) {
      const { dev: again, frame } = await connectWith("rev-dev", oldToken);
      expect(frame).toMatchObject({ op: "error", code: "unauthorized" });
      await again.waitClosed();
    }

    // A re-issued token works (on every worker) and clears the revoked mark.
    const t = await api("POST", `/api/v1/devices/${id}/token`);
    expect(t.status).toBe(200);
    expect(t.json.token).toEqual(expect.any(String));
    expect(t.json.token).not.toBe(oldToken);
    for (let i = 0; i < 4; i++) {
      const { dev: fresh, frame } = await connectWith("rev-dev", t.json.token);
      expect(frame).toMatchObject({ op: "welcome", id });
      fresh.send({ op: "bye" });
      await fresh.waitClosed();
    }
    expect((await get(`/api/v1/devices/${id}`)).revoked).toBe(false);
    // The original token is still refused after the re-issue.
    const { frame: stillOld } = await connectWith("rev-dev", oldToken);
    expect(stillOld).toMatchObject({ op: "error", code: "unauthorized" });
  }, 40_000);

  test("another device's token cannot be passed off as a later generation (lock-9#2's token as lock-9's generation 2)", async () => {
    const reg = await api("POST", "/api/v1/devices", { body: { hardware_id: "forge-lock-9" } });
    const id = reg.json.device.id;
    knownHw.add("forge-lock-9");
    expect((await api("POST", `/api/v1/devices/${id}/revoke`)).status).toBe(200);
    expect((await api("POST", `/api/v1/devices/${id}/revoke`)).status).toBe(200);
    // The attacker owns a device whose hardware id it chose: "forge-lock-9#2" (and #1000).
    for (const g of [2, 1000]) {
      const forged = `${g}.${gw.token(`forge-lock-9#${g}`)}`;
      for (let i = 0; i < 2; i++) {
        const { frame } = await connectWith("forge-lock-9", forged);
        expect(frame).toMatchObject({ op: "error", code: "unauthorized" });
      }
    }
    // Only the current generation's token works; a later generation never issued does not.
    const issued = await api("POST", `/api/v1/devices/${id}/token`);
    expect(issued.json.token).toStartWith("2.");
    expect((await connectWith("forge-lock-9", issued.json.token)).frame).toMatchObject({ op: "welcome", id });
  }, 20_000);
});

describe("configured API token", () => {
  test("api.token from the command line is used; nothing is generated or printed", async () => {
    const configured = "configured-token-0123456789";
    const other = await startGateway({ gatewayId: "api-gw2", args: ["--workers", "1", "--api-token", configured] });
    try {
      const url = apiBase(other);
      expect(existsSync(join(other.dir, "api.token"))).toBe(false);
      expect(other.logs.some((l) => l.includes(configured))).toBe(false);
      const ok = await fetch(`${url}/api/v1/stats`, { headers: { authorization: `Bearer ${configured}` } });
      expect(ok.status).toBe(200);
      const bad = await fetch(`${url}/api/v1/stats`, { headers: { authorization: `Bearer ${token}` } });
      expect(bad.status).toBe(401);
      expect(((await bad.json()) as any).error.code).toBe("unauthorized");
      // Guessing is cut short: after 10 wrong tokens within a minute the address gets 429.
      const codes: number[] = [];
      for (let i = 0; i < 10; i++) codes.push((await fetch(`${url}/api/v1/stats`, { headers: { authorization: `Bearer guess-${i}-0123456789abcdef` } })).status);
      expect(codes.slice(0, 9)).toEqual(Array(9).fill(401));
      const limited = await fetch(`${url}/api/v1/stats`, { headers: { authorization: "Bearer guess-x-0123456789abcdef" } });
      expect(limited.status).toBe(429);
      expect(limited.headers.get("retry-after")).toMatch(/^\d+$/);
      expect(((await limited.json()) as any).error.code).toBe("rate_limited");
      // The right token from the same address is never throttled by those failures.
      expect((await fetch(`${url}/api/v1/stats`, { headers: { authorization: `Bearer ${configured}` } })).status).toBe(200);
      // Liveness is not behind the token, so it is not limited either.
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
    } finally {
      await other.kill();
      await cleanBroker(other);
      removeDir(other.dir);
    }
  }, 30_000);
});
