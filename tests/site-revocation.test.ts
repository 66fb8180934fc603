/**
 * Revocation holds across the site: two gateways share the site secret and a broker. A device
 * revoked on one is refused by the other with its old token (and dropped if connected there),
 * including a gateway that was down during the revocation and a device it has never seen; the
 * re-issued token of the new generation works on both.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadOrCreateSecret, mintToken } from "../src/auth/token.ts";
import { TestDevice } from "./helpers/device.ts";
import { BROKER_URL, removeDir, startGateway, uniquePrefix, type GatewayProcess } from "./helpers/gateway.ts";
import { AMQPClient } from "@cloudamqp/amqp-client";

const prefix = uniquePrefix("site");
// Refused hellos are the point here: no bans.
const ARGS = ["--workers", "2", "--auth-ban-failures", "0"];
let a: GatewayProcess;
let b: GatewayProcess;
let apiPort = 0;
let apiToken = "";

beforeAll(async () => {
  a = await startGateway({ gatewayId: "site-a", prefix, args: ARGS });
  const line = a.json().findLast((l) => l.msg === "Control API listening");
  apiPort = Number(new URL(line!.url).port);
  apiToken = readFileSync(join(a.dir, "api.token"), "utf8").trim();
  // Same site: B gets A's site secret.
  const dirB = mkdtempSync(join(tmpdir(), "owsla-test-"));
  copyFileSync(join(a.dir, "site.secret"), join(dirB, "site.secret"));
  b = await startGateway({ dir: dirB, gatewayId: "site-b", prefix, args: ARGS });
});

afterAll(async () => {
  await a.stop();
  await b.stop();
  const c = new AMQPClient(BROKER_URL);
  await c.connect();
  const ch = await c.channel();
  for (const q of ["owsla.site.site-a", "owsla.site.site-b", "owsla.gw.site-a", "owsla.gw.site-b", "owsla.dead"]) await ch.queueDelete(prefix + q).catch(() => {});
  for (const x of ["owsla.site", "owsla.up", "owsla.down", "owsla.dead"]) await ch.exchangeDelete(prefix + x).catch(() => {});
  await c.close();
  removeDir(a.dir);
  removeDir(b.dir);
});

async function revokeOnA(id: string): Promise<number> {
  // Workers report sightings to the supervisor in batches: wait until A's site records know the device.
  for (let i = 0; i < 100; i++) {
    const r = await fetch(`http://127.0.0.1:${apiPort}/api/v1/devices/${id}`, { headers: { authorization: `Bearer ${apiToken}` } });
    if (r.status === 200) break;
    await Bun.sleep(50);
  }
  const res = await fetch(`http://127.0.0.1:${apiPort}/api/v1/devices/${id}/revoke`, { method: "POST", headers: { authorization: `Bearer ${apiToken}` } });
  expect(res.status).toBe(200);
  const row = await fetch(`http://127.0.0.1:${apiPort}/api/v1/devices/${id}`, { headers: { authorization: `Bearer ${apiToken}` } });
  expect((await row.json()).revoked).toBe(true);
  return 1;
}

/** A hello on `g` with `token`: the welcome's device id, or the refusal code. */
async function hello(g: GatewayProcess, hw: string, token: string): Promise<{ ok: true; id: string } | { ok: false; why: string }> {
  const dev = await TestDevice.connect(g.port);
  try {
    const w = await dev.hello({ device: hw, token });
    return { ok: true, id: w.id };
  } catch (e) {
    return { ok: false, why: (e as Error).message };
  } finally {
    dev.close();
  }
}

/** Polls until a hello with the old token is refused on `g` (the revocation arrived), or times out. */
async function refusedOn(g: GatewayProcess, hw: string, token: string, timeoutMs = 15_000): Promise<string | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = await hello(g, hw, token);
    if (!r.ok) return r.why;
    await Bun.sleep(100);
  }
  return null;
}

const secret = () => loadOrCreateSecret(join(a.dir, "site.secret"));

test("a device revoked on one gateway is refused by the other with its old token, and dropped there", async () => {
  const hw = "door-site-1";
  const old = mintToken(secret(), hw, 0);
  const first = await hello(a, hw, old);
  expect(first.ok).toBe(true);
  const id = (first as { id: string }).id;
  // Connected on B with the same old token until the revocation arrives.
  const onB = await TestDevice.connect(b.port);
  await onB.hello({ device: hw, token: old });
  await revokeOnA(id);
  await onB.waitClosed(15_000);
  expect(await refusedOn(b, hw, old)).toContain("unauthorized");
  // The re-issued token (new generation) works everywhere.
  expect((await hello(b, hw, mintToken(secret(), hw, 1))).ok).toBe(true);
  expect(b.json().some((l) => l.msg === "Device revoked by another gateway of the site" && l.device === id)).toBe(true);
});

test("a gateway that was down during a revocation catches up when it reconnects, for a device it never saw", async () => {
  const hw = "door-site-2";
  const old = mintToken(secret(), hw, 0);
  const first = await hello(a, hw, old);
  expect(first.ok).toBe(true);
  await b.stop();
  await revokeOnA((first as { id: string }).id);
  await b.start();
  expect(await refusedOn(b, hw, old)).toContain("unauthorized");
  expect((await hello(b, hw, mintToken(secret(), hw, 1))).ok).toBe(true);
});
