/** Small numeric helpers for scenario results. */

/** The `p`-th percentile (0..100) of `values` (nearest rank), rounded to 0.01; NaN when empty. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return Math.round(s[i]! * 100) / 100;
}

/** p50/p99/max/count of latencies in ms. */
export function latencySummary(values: number[]): { count: number; p50: number; p99: number; max: number } {
  return {
    count: values.length,
    p50: percentile(values, 50),
    p99: percentile(values, 99),
    max: values.length ? Math.round(Math.max(...values) * 100) / 100 : Number.NaN,
  };
}

/** Adds `n` to `counts[key]`. */
export function count(counts: Record<string, number>, key: string, n = 1): void {
  counts[key] = (counts[key] ?? 0) + n;
}

/** KiB to MiB, one decimal. */
export function mb(kb: number): number {
  return Math.round((kb / 1024) * 10) / 10;
}

/** Milliseconds since an arbitrary origin, sub-millisecond. */
export const now = (): number => performance.now();
