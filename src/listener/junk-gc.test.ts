import { expect, test } from "bun:test";
import { JUNK_GC_BYTES, JunkCollector } from "./junk-gc.ts";

test("collects once a megabyte of dropped bytes piled up, not before", () => {
  let runs = 0;
  const j = new JunkCollector(() => runs++, () => 0);
  j.add(JUNK_GC_BYTES - 1);
  expect(runs).toBe(0);
  j.add(1);
  expect(runs).toBe(1);
  j.add(JUNK_GC_BYTES - 1);
  expect(runs).toBe(1);
});

test("keeps collecting to at most a third of the time: the gap after a run is twice its length", () => {
  let now = 0;
  const j = new JunkCollector(() => (now += 10), () => now); // each collection takes 10 ms
  j.add(JUNK_GC_BYTES); // runs at 0, ends at 10: next allowed at 30
  expect(j.runs).toBe(1);
  now = 29;
  j.add(JUNK_GC_BYTES);
  expect(j.runs).toBe(1); // too soon; the junk stays counted
  now = 30;
  j.add(1);
  expect(j.runs).toBe(2);
});
