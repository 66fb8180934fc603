/**
 * Two gateways of one site (the second gets the first's site secret), for revocation tests on
 * the shared broker (tests/site-revocation.test.ts) and on a cluster
 * (tests/cluster-failover.test.ts): start them, revoke a device through the first one's control
 * API, and probe hellos on either.
 */
import { copyFileSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "bun:test";
import { loadOrCreateSecret } from "../../src/auth/token.ts";
import { TestDevice } from "./device.ts";
import { startGateway, type GatewayProcess } from "./gateway.ts";

/** Gateways `a` and `b` of one site, and what it takes to call a's control API. */
export interface SitePair {
  a: GatewayProcess;
  b: GatewayProcess;
  /** The site secret both gateways share. */
  secret(): Uint8Array;
  /** Revokes device `id` through a's control API (waits until a's site records know it). */
  revokeOnA(id: string): Promise<void>;
}

/** Starts gateways `ids[0]` and `ids[1]` of one site with `args`. */
export async function startSitePair(prefix: string, args: string[], ids: [string, string] = ["site-a", "site-b"]): Promise<SitePair> {
  const a = await startGateway({ gatewayId: ids[0], prefix, args });
  const line = a.json().findLast((l) => l.msg === "Control API listening");
  const apiPort = Number(new URL(line!.url).port);
  const apiToken = readFileSync(join(a.dir, "api.token"), "utf8").trim();
  const dirB = mkdtempSync(join(tmpdir(), "owsla-test-"));
  copyFileSync(join(a.dir, "site.secret"), join(dirB, "site.secret"));
  const b = await startGateway({ dir: dirB, gatewayId: ids[1], prefix, args });
  const api = (path: string, method = "GET") => fetch(`http://127.0.0.1:${apiPort}/api/v1/devices/${path}`, { method, headers: { authorization: `Bearer ${apiToken}` } });
  return {
    a,
    b,
    secret: () => loadOrCreateSecret(join(a.dir, "site.secret")),
    async revokeOnA(id) {
      // Workers report sightings to the supervisor in batches: wait until A's site records know the device.
      for (let i = 0; i < 100; i++) {
        if ((await api(id)).status === 200) break;
        await Bun.sleep(50);
      }
      expect((await api(`${id}/revoke`, "POST")).status).toBe(200);
      expect((await (await api(id)).json()).revoked).toBe(true);
    },
  };
}

/** A hello on `g` with `token`: the welcome's device id, or the refusal. */
export async function hello(g: GatewayProcess, hw: string, token: string): Promise<{ ok: true; id: string } | { ok: false; why: string }> {
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

/** Polls until a hello with `token` is refused on `g` (the revocation arrived): the refusal, or null on timeout. */
export async function refusedOn(g: GatewayProcess, hw: string, token: string, timeoutMs = 15_000): Promise<string | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = await hello(g, hw, token);
    if (!r.ok) return r.why;
    await Bun.sleep(100);
  }
  return null;
}
