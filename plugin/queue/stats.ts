// A fixed-bucket latency histogram: constant memory, cheap to observe, and shaped like a Prometheus histogram so
// the metrics issue can expose it without conversion.

/** Upper bounds of the buckets, in ms; one more bucket holds everything above the last. */
export const BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000] as const;

export interface HistogramSnapshot {
  count: number;
  sumMs: number;
  /** Cumulative counts per upper bound (`le`, ms; `Infinity` for the last), as Prometheus reports them. */
  buckets: Array<{ le: number; count: number }>;
  /** Estimates from the buckets (the upper bound of the bucket holding the quantile); null when empty. */
  p50Ms: number | null;
  p99Ms: number | null;
}

export class Histogram {
  private readonly counts = new Array<number>(BUCKETS_MS.length + 1).fill(0);
  private count = 0;
  private sum = 0;

  observe(ms: number): void {
    const v = Math.max(ms, 0);
    let i = 0;
    while (i < BUCKETS_MS.length && v > (BUCKETS_MS[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.count++;
    this.sum += v;
  }

  private quantile(q: number): number | null {
    if (this.count === 0) return null;
    const rank = Math.ceil(q * this.count);
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i] as number;
      if (seen >= rank) return BUCKETS_MS[i] ?? Number.POSITIVE_INFINITY;
    }
    return Number.POSITIVE_INFINITY;
  }

  snapshot(): HistogramSnapshot {
    let cumulative = 0;
    const buckets = this.counts.map((c, i) => {
      cumulative += c;
      return { le: BUCKETS_MS[i] ?? Number.POSITIVE_INFINITY, count: cumulative };
    });
    return { count: this.count, sumMs: this.sum, buckets, p50Ms: this.quantile(0.5), p99Ms: this.quantile(0.99) };
  }
}
