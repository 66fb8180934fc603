import { expect, test } from "bun:test";
import { DEFAULT_RETRY_AFTER_MS, MAX_BACKOFF_MS, retryDelay } from "./retry.ts";

test("the first retry waits exactly retry_after, or 1 s without one", () => {
  expect(retryDelay(1, 250)).toBe(250);
  expect(retryDelay(1, undefined)).toBe(DEFAULT_RETRY_AFTER_MS);
});

test("later retries add full-jitter exponential backoff capped at 60 s", () => {
  expect(retryDelay(2, 1000, () => 0)).toBe(1000);
  expect(retryDelay(2, 1000, () => 0.999)).toBeLessThan(1000 + 2000);
  expect(retryDelay(3, 1000, () => 0.999)).toBeGreaterThan(1000 + 3900);
  expect(retryDelay(30, 1000, () => 0.999)).toBeLessThanOrEqual(1000 + MAX_BACKOFF_MS);
});
