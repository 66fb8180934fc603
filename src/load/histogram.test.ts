import { expect, test } from "bun:test";
import { bucketOf, bucketRange, Histogram, mergeAll } from "./histogram.ts";

test("every value lands in a bucket whose range holds it, within 1/128", () => {
  for (const v of [0, 1, 255, 256, 257, 511, 512, 1000, 12345, 999_999, 2 ** 31, 0xffff_ffff]) {
    const [lo, hi] = bucketRange(bucketOf(v));
    expect(lo).toBeLessThanOrEqual(v);
    expect(hi).toBeGreaterThanOrEqual(v);
    expect((hi - lo) / Math.max(1, lo)).toBeLessThanOrEqual(1 / 128);
  }
});

test("bucket indexes grow with the value", () => {
  let prev = -1;
  for (let v = 0; v < 200_000; v += 7) {
    const i = bucketOf(v);
    expect(i).toBeGreaterThanOrEqual(prev);
    prev = i;
  }
});

test("percentiles of a uniform 1..10000 us distribution are within 1%", () => {
  const h = new Histogram();
  for (let us = 1; us <= 10_000; us++) h.recordMicros(us);
  const s = h.summary()!;
  expect(s.count).toBe(10_000);
  expect(Math.abs(s.p50_ms - 5) / 5).toBeLessThan(0.01);
  expect(Math.abs(s.p99_ms - 9.9) / 9.9).toBeLessThan(0.01);
  expect(s.max_ms).toBe(10);
  expect(s.min_ms).toBe(0.001);
});

test("merged histograms give the percentiles of the combined data", () => {
  const a = new Histogram();
  const b = new Histogram();
  for (let i = 0; i < 990; i++) a.recordMs(1);
  for (let i = 0; i < 10; i++) b.recordMs(100);
  const m = mergeAll([a.toData(), b.toData()]);
  expect(m.count).toBe(1000);
  expect(m.summary()!.p50_ms).toBeCloseTo(1, 1);
  expect(m.summary()!.p999_ms).toBeGreaterThan(99);
  expect(m.summary()!.max_ms).toBe(100);
});

test("an empty histogram has no summary", () => {
  expect(new Histogram().summary()).toBeNull();
});
