/**
 * A latency histogram with HDR-style log-linear buckets: values (integer microseconds) below
 * 256 are exact; above, every power-of-two range is split into 128 equal buckets, so any
 * recorded value is known to within 1/128 (0.8%). Histograms from several processes merge by
 * adding bucket counts, which keeps percentiles exact to the bucket (averaging per-process
 * percentiles would not be).
 */

/** Sub-buckets per power of two, as a bit count (2^7 = 128: 0.8% resolution). */
const SUB_BITS = 7;
const SUB = 1 << SUB_BITS;
/** Largest recordable value in microseconds (~71 minutes); larger values are clamped. */
export const MAX_MICROS = 0xffff_ffff;
/** Number of buckets needed to cover 0..MAX_MICROS. */
const BUCKETS = (32 - SUB_BITS + 1) * SUB;

/** Bucket index of `v` (integer microseconds, 0..MAX_MICROS). */
export function bucketOf(v: number): number {
  if (v < 2 * SUB) return v;
  const msb = 31 - Math.clz32(v);
  const shift = msb - SUB_BITS;
  return (shift + 1) * SUB + ((v >>> shift) - SUB);
}

/** The range of values [low, high] that bucket `i` holds. */
export function bucketRange(i: number): [number, number] {
  if (i < 2 * SUB) return [i, i];
  const shift = Math.floor(i / SUB) - 1;
  const sub = (i % SUB) + SUB;
  return [sub * 2 ** shift, (sub + 1) * 2 ** shift - 1];
}

/** A histogram in the form sent between processes: non-empty buckets only. */
export interface HistogramData {
  /** [bucket index, count] pairs. */
  b: [number, number][];
  /** Sum of recorded values, in microseconds (for the mean). */
  sum: number;
  min: number;
  max: number;
}

/** Percentiles of a histogram, in milliseconds. */
export interface LatencySummary {
  count: number;
  mean_ms: number;
  min_ms: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  p999_ms: number;
  max_ms: number;
}

/** A mergeable latency histogram. */
export class Histogram {
  private readonly counts = new Float64Array(BUCKETS);
  count = 0;
  private sum = 0;
  private min = Number.POSITIVE_INFINITY;
  private max = 0;

  /** Records one value in milliseconds (negative values count as 0). */
  recordMs(ms: number): void {
    this.recordMicros(Math.round(ms * 1000));
  }

  /** Records one value in microseconds. */
  recordMicros(us: number): void {
    const v = us <= 0 || !Number.isFinite(us) ? 0 : us > MAX_MICROS ? MAX_MICROS : Math.round(us);
    this.counts[bucketOf(v)]!++;
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  /** Adds every value of `other` (another process's histogram) to this one. */
  merge(other: HistogramData): void {
    for (const [i, n] of other.b) {
      if (!Number.isInteger(i) || i < 0 || i >= BUCKETS) throw new Error(`Cannot merge histogram: bucket ${i} is outside 0..${BUCKETS - 1}`);
      this.counts[i]! += n;
      this.count += n;
    }
    this.sum += other.sum;
    if (other.b.length > 0) {
      this.min = Math.min(this.min, other.min);
      this.max = Math.max(this.max, other.max);
    }
  }

  /** This histogram in a compact JSON-safe form. */
  toData(): HistogramData {
    const b: [number, number][] = [];
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i]! > 0) b.push([i, this.counts[i]!]);
    return { b, sum: this.sum, min: this.count ? this.min : 0, max: this.max };
  }

  /** The value (microseconds) at quantile `q` (0..1): the midpoint of the bucket holding it, within min..max. */
  quantileMicros(q: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) {
        const [lo, hi] = bucketRange(i);
        return Math.min(this.max, Math.max(this.min, (lo + hi) / 2));
      }
    }
    return this.max;
  }

  /** Count, mean and percentiles in milliseconds (3 decimals); null when nothing was recorded. */
  summary(): LatencySummary | null {
    if (this.count === 0) return null;
    const ms = (us: number) => Math.round(us) / 1000;
    return {
      count: this.count,
      mean_ms: ms(this.sum / this.count),
      min_ms: ms(this.min),
      p50_ms: ms(this.quantileMicros(0.5)),
      p90_ms: ms(this.quantileMicros(0.9)),
      p99_ms: ms(this.quantileMicros(0.99)),
      p999_ms: ms(this.quantileMicros(0.999)),
      max_ms: ms(this.max),
    };
  }
}

/** Merges histogram data from several processes into one histogram. */
export function mergeAll(parts: (HistogramData | undefined)[]): Histogram {
  const h = new Histogram();
  for (const p of parts) if (p) h.merge(p);
  return h;
}
