import { expect, test } from "bun:test";
import { BurstLog } from "./burst-log.ts";

test("at most `burst` lines per key and window; the next line says how many were left out", () => {
  let t = 0;
  const lines: [string, Record<string, unknown>][] = [];
  const log = new BurstLog((m, f) => lines.push([m, f]), { windowMs: 1000, burst: 2, now: () => t });
  for (let i = 0; i < 5; i++) log.note("a", "A happened", { i });
  log.note("b", "B happened");
  expect(lines).toEqual([["A happened", { i: 0 }], ["A happened", { i: 1 }], ["B happened", {}]]);
  t = 1000;
  log.note("a", "A happened", { i: 5 });
  expect(lines.at(-1)).toEqual(["A happened", { i: 5, left_out: 3 }]);
  log.note("a", "A happened", { i: 6 });
  expect(lines.at(-1)).toEqual(["A happened", { i: 6 }]);
});
