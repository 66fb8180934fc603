import { expect, test } from "bun:test";
import { BurstCollector } from "./burst-gc.ts";

test("one full collection once a stampede is over; steady traffic never triggers it", () => {
  let gcs = 0;
  const b = new BurstCollector(() => gcs++);
  let total = 0;
  const second = (n: number) => b.tick((total += n));
  for (let i = 0; i < 30; i++) second(50); // steady: no burst
  expect(gcs).toBe(0);
  second(5000);
  second(8000);
  second(3000); // still above a tenth of the peak
  expect(gcs).toBe(0);
  second(10); // over
  expect(gcs).toBe(1);
  second(0);
  second(5);
  expect(gcs).toBe(1);
});
