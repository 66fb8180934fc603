import { expect, test } from "bun:test";
import { createRestartIntensity } from "./restart-intensity.ts";

test("restart intensity counts restarts within the sliding window only", () => {
  const r = createRestartIntensity(1000);
  expect(r.record(0)).toBe(1);
  expect(r.record(400)).toBe(2);
  expect(r.record(999)).toBe(3);
  expect(r.count(1000)).toBe(2); // the restart at 0 left the window exactly periodMs later
  expect(r.record(1500)).toBe(2); // 999 and 1500
  expect(r.count(5000)).toBe(0);
});
