/**
 * Revocation holds across the site: two gateways share the site secret and a broker. A device
 * revoked on one is refused by the other with its old token (and dropped if connected there),
 * including a gateway that was down during the revocation and a device it has never seen; the
 * re-issued token of the new generation works on both.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mintToken } from "../src/auth/token.ts";
import { TestDevice } from "./helpers/device.ts";
import { BROKER_URL, removeDir, uniquePrefix, type GatewayProcess } from "./helpers/gateway.ts";
import { hello, refusedOn, startSitePair, type SitePair } from "./helpers/site-pair.ts";
import { AMQPClient } from "@cloudamqp/amqp-client";

const prefix = uniquePrefix("site");
// Refused hellos are the point here: no bans.
const ARGS = ["--workers", "2", "--auth-ban-failures", "0"];
let site: SitePair;
let a: GatewayProcess;
let b: GatewayProcess;

beforeAll(async () => {
  site = await startSitePair(prefix, ARGS);
  ({ a, b } = site);
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

const secret = () => site.secret();

test("a device revoked on one gateway is refused by the other with its old token, and dropped there", async () => {
  const hw = "door-site-1";
  const old = mintToken(secret(), hw, 0);
  const first = await hello(a, hw, old);
  expect(first.ok).toBe(true);
  const id = (first as { id: string }).id;
  // Connected on B with the same old token until the revocation arrives.
  const onB = await TestDevice.connect(b.port);
  await onB.hello({ device: hw, token: old });
  await site.revokeOnA(id);
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
  await site.revokeOnA((first as { id: string }).id);
  await b.start();
  expect(await refusedOn(b, hw, old)).toContain("unauthorized");
  expect((await hello(b, hw, mintToken(secret(), hw, 1))).ok).toBe(true);
});
