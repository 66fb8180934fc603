import { expect, test } from "bun:test";
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

test("raising the generation refuses older tokens and accepts re-issued ones", () => {
  const g0 = mintToken(secret, "lock-9");
  const g1 = mintToken(secret, "lock-9", 1);
  expect(tokenGeneration(g0)).toBe(0);
  expect(tokenGeneration(g1)).toBe(1);
  expect(verifyToken(secret, "lock-9", g0, 1)).toBe(false);
  expect(verifyToken(secret, "lock-9", g1, 1)).toBe(true);
  expect(verifyToken(secret, "lock-9", g1, 2)).toBe(false);
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
