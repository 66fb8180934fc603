import { expect, test } from "bun:test";
import { deviceUuid } from "../identity/identity.ts";
import { authenticateHello, type HelloAuthSettings } from "./hello-auth.ts";
import { mintToken } from "./token.ts";

const NS = "b152f5e3-aa92-4c3c-8f61-2eb500a32561";
const secret = new Uint8Array(32).fill(3);
const settings = (mode: HelloAuthSettings["mode"], floors: [string, number][] = []): HelloAuthSettings => ({
  mode,
  secret,
  tokenFloors: new Map(floors.map(([hw, g]) => [deviceUuid(NS, hw), g])),
});

test("token mode: the current generation's token passes; a revoked one is named as revoked", () => {
  const auth = settings("token", [["lock-9", 2]]);
  expect(authenticateHello(auth, NS, { device: "lock-9", token: mintToken(secret, "lock-9", 2) }, null)).toEqual({ ok: true });
  const old = authenticateHello(auth, NS, { device: "lock-9", token: mintToken(secret, "lock-9", 1) }, null);
  expect(old).toEqual({ ok: false, message: "Unauthorized: this token was revoked; ask the installer for a re-issued one" });
  const g0 = authenticateHello(auth, NS, { device: "lock-9", token: mintToken(secret, "lock-9") }, null);
  expect(g0.ok).toBe(false);
  expect((g0 as { message: string }).message).toContain("revoked");
  const forged = authenticateHello(auth, NS, { device: "lock-9", token: `2.${mintToken(secret, "lock-9#2")}` }, null);
  expect((forged as { message: string }).message).toContain("token does not match the hardware id");
});

test("token mode: a hello without device or token is refused with what is missing", () => {
  const auth = settings("token");
  expect(authenticateHello(auth, NS, {}, null)).toMatchObject({ ok: false, message: expect.stringContaining("hello needs `device`") });
  expect(authenticateHello(auth, NS, { device: "x" }, null)).toMatchObject({ ok: false, message: expect.stringContaining("no `token`") });
});

test("cert mode: the certificate must name the hardware id; a token does not help", () => {
  const auth = settings("cert");
  expect(authenticateHello(auth, NS, { device: "dev1" }, ["dev1", "dev1.local"])).toEqual({ ok: true });
  expect(authenticateHello(auth, NS, { device: "dev1.local" }, ["dev1", "dev1.local"])).toEqual({ ok: true });
  const other = authenticateHello(auth, NS, { device: "dev2", token: mintToken(secret, "dev2") }, ["dev1"]);
  expect(other).toMatchObject({ ok: false, message: expect.stringContaining("the client certificate does not name this hardware id") });
  expect(authenticateHello(auth, NS, { device: "dev1" }, null)).toMatchObject({ ok: false, message: expect.stringContaining("no verified client certificate") });
  expect(authenticateHello(auth, NS, {}, ["dev1"])).toMatchObject({ ok: false, message: expect.stringContaining("hello needs `device`") });
});

test("none mode accepts any claim", () => {
  expect(authenticateHello(settings("none"), NS, { device: "anything" }, null)).toEqual({ ok: true });
});
