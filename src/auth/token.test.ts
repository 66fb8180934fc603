import { expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadOrCreateApiToken, mintToken, tokenGeneration, verifyToken } from "./token.ts";

const secret = new Uint8Array(32).fill(7);
const other = new Uint8Array(32).fill(8);

test("a minted token verifies for its hardware id only, under its secret only", () => {
  const t = mintToken(secret, "thermo-1");
  expect(verifyToken(secret, "thermo-1", t)).toBe(true);
  expect(verifyToken(secret, "thermo-2", t)).toBe(false);
  expect(verifyToken(other, "thermo-1", t)).toBe(false);
  expect(verifyToken(secret, "thermo-1", t.slice(0, -1) + (t.endsWith("A") ? "B" : "A"))).toBe(false);
});

test("only the current generation is accepted: older tokens were revoked, newer ones never issued", () => {
  const g0 = mintToken(secret, "lock-9");
  const g1 = mintToken(secret, "lock-9", 1);
  expect(tokenGeneration(g0)).toBe(0);
  expect(tokenGeneration(g1)).toBe(1);
  expect(verifyToken(secret, "lock-9", g0, 1)).toBe(false);
  expect(verifyToken(secret, "lock-9", g1, 1)).toBe(true);
  expect(verifyToken(secret, "lock-9", g1, 2)).toBe(false);
  expect(verifyToken(secret, "lock-9", g1, 0)).toBe(false);
  expect(verifyToken(secret, "lock-9", mintToken(secret, "lock-9", 3), 2)).toBe(false);
});

test("the token of another hardware id cannot be passed off as a later generation of this one", () => {
  // Before: the MAC input was `<id>#<generation>`, so lock-9#1000's token was lock-9's generation 1000.
  const other = mintToken(secret, "lock-9#1000");
  expect(verifyToken(secret, "lock-9", `1000.${other}`, 1000)).toBe(false);
  expect(verifyToken(secret, "lock-9", `1000.${other}`, 2)).toBe(false);
  // Every (id, generation) pair gets its own MAC, also where a naive concatenation collides.
  const macs = new Set<string>();
  const pairs: [string, number][] = [["a", 12], ["a1", 2], ["a#1", 2], ["a", 1], ["a#1", 0], ["a1", 0], ["a#12", 0], ["a\u0000", 1]];
  for (const [id, g] of pairs) macs.add(mintToken(secret, id, g).replace(/^\d+\./, ""));
  expect(macs.size).toBe(pairs.length);
});

test("generation-0 tokens keep their original value (tokens already installed keep working)", () => {
  // HMAC-SHA256(secret 0x07 x 32, "owsla-device-token/v1:thermo-1"), base64url: the value minted before.
  const legacy = createHmac("sha256", secret).update("owsla-device-token/v1:thermo-1").digest("base64url");
  expect(mintToken(secret, "thermo-1")).toBe(legacy);
  expect(verifyToken(secret, "thermo-1", legacy, 0)).toBe(true);
});

test("a forged generation prefix does not verify", () => {
  const g0 = mintToken(secret, "lock-9");
  expect(verifyToken(secret, "lock-9", `5.${g0}`, 1)).toBe(false);
  expect(verifyToken(secret, "lock-9", `x.${g0}`)).toBe(false);
  expect(tokenGeneration("0.abc")).toBe(-1);
});

test("API tokens are hex, so they never start with '-' (they are passed as `--api-token TOKEN`), and are kept once created", () => {
  const dir = mkdtempSync(join(tmpdir(), "owsla-apitoken-"));
  try {
    for (let i = 0; i < 200; i++) {
      const path = join(dir, `api-${i}.token`);
      const made = loadOrCreateApiToken(path);
      expect(made.created).toBe(true);
      expect(made.token).toMatch(/^[0-9a-f]{48}$/);
      expect(readFileSync(path, "utf8")).toBe(made.token + "\n");
      expect(loadOrCreateApiToken(path)).toEqual({ token: made.token, created: false });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
