// The kit's metrics registry: cheap in-process counters, gauges and histograms for what the kit measures itself, plus
// collectors (functions run at scrape time) through which any feature's stats getter is exposed without the feature
// importing anything from here. Prometheus text is rendered by a prom-client Registry owned by the kit (never the
// global one), loaded on the first scrape: prom-client is an optional peer dependency.
//
// How a feature plugs in (the integrator writes this, the feature does not change):
//
//   kit.metrics.collect({
//     name: 'rediskit_cache_requests_total',           // a reserved name: type, help and labels come from names.ts
//     collect: () => {
//       const s = cache.stats();                       // the feature's plain stats getter
//       return [
//         { labels: { result: 'hit' }, value: s.hits },
//         { labels: { result: 'miss' }, value: s.misses },
//       ];
//     },
//   });
//
// Histograms from a stats getter: `{ labels, counts, sum, count }`, `counts[i]` being the observations that fell in
// bucket i (non-cumulative, one more entry than `buckets` for +Inf). See docs/observability.md.

import { ConfigError } from '../core/errors.js';
import { KIT_METRICS, type MetricSpec, type MetricType, RESERVED_METRICS } from './names.js';

export type Labels = Record<string, string>;

export interface ValueSample {
  labels?: Labels;
  value: number;
}

export interface HistogramSample {
  labels?: Labels;
  /** Observations per bucket, non-cumulative, `buckets.length + 1` entries (the last is +Inf). */
  counts: readonly number[];
  sum: number;
  count: number;
}

export type Sample = ValueSample | HistogramSample;

export interface CollectorSpec {
  /** Prometheus metric name. A reserved name (docs/observability.md) fills type, help, labelNames and buckets. */
  name: string;
  type?: MetricType;
  help?: string;
  labelNames?: readonly string[];
  /** Histogram bucket upper bounds. */
  buckets?: readonly number[];
  /** Run at scrape time (and by the admin JSON API); returns the current samples. Must be cheap and not throw. */
  collect: () => Sample[] | Promise<Sample[]>;
}

/** One metric's current values, as the JSON API and the dashboard read them. */
export interface MetricSnapshot {
  name: string;
  type: MetricType;
  help: string;
  labelNames: readonly string[];
  buckets?: readonly number[];
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const SEP = '\u0001';
/** Label sets one metric keeps before new ones collapse into `other`: the guard against label explosion. */
export const MAX_SERIES = 2000;

function specFor(name: string): MetricSpec | undefined {
  return (RESERVED_METRICS as Record<string, MetricSpec>)[name] ?? (KIT_METRICS as Record<string, MetricSpec>)[name];
}

/** A counter or gauge whose series are keyed by label values in `labelNames` order. */
export class ValueMetric {
  private readonly series = new Map<string, { values: readonly string[]; value: number }>();

  constructor(
    readonly name: string,
    readonly labelNames: readonly string[],
  ) {}

  /** The live series for these label values; a hot path may keep it and add to `.value` directly. */
  entry(values: readonly string[]): { values: readonly string[]; value: number } {
    const key = values.length === 0 ? '' : values.length === 1 ? (values[0] as string) : values.join(SEP);
    let e = this.series.get(key);
    if (!e) {
      const capped = this.series.size >= MAX_SERIES ? values.map(() => 'other') : values;
      const cappedKey = capped.join(SEP);
      e = this.series.get(cappedKey);
      if (!e) {
        e = { values: capped, value: 0 };
        this.series.set(cappedKey, e);
      }
      if (capped === values) this.series.set(key, e);
    }
    return e;
  }

  inc(values: readonly string[] = [], by = 1): void {
    this.entry(values).value += by;
  }

  set(values: readonly string[], value: number): void {
    this.entry(values).value = value;
  }

  samples(): ValueSample[] {
    const out: ValueSample[] = [];
    const seen = new Set<object>();
    for (const e of this.series.values()) {
      if (seen.has(e)) continue;
      seen.add(e);
      out.push({ labels: toLabels(this.labelNames, e.values), value: e.value });
    }
    return out;
  }
}

interface HistogramSeries {
  values: readonly string[];
  counts: Float64Array;
  sum: number;
  count: number;
}

/** A histogram with fixed buckets; `observe` is a bucket search and three additions. */
export class HistogramMetric {
  private readonly series = new Map<string, HistogramSeries>();

  constructor(
    readonly name: string,
    readonly labelNames: readonly string[],
    readonly buckets: readonly number[],
  ) {}

  /** The series for these label values, for a caller that observes the same labels repeatedly. */
  seriesFor(values: readonly string[]): HistogramSeries {
    const key = values.length === 0 ? '' : values.length === 1 ? (values[0] as string) : values.join(SEP);
    let s = this.series.get(key);
    if (!s) {
      const capped = this.series.size >= MAX_SERIES ? values.map(() => 'other') : values;
      const cappedKey = capped.join(SEP);
      s = this.series.get(cappedKey);
      if (!s) {
        s = { values: capped, counts: new Float64Array(this.buckets.length + 1), sum: 0, count: 0 };
        this.series.set(cappedKey, s);
      }
      if (capped === values) this.series.set(key, s);
    }
    return s;
  }

  observe(values: readonly string[], value: number): void {
    observeInto(this.buckets, this.seriesFor(values), value);
  }

  samples(): HistogramSample[] {
    const out: HistogramSample[] = [];
    const seen = new Set<object>();
    for (const s of this.series.values()) {
      if (seen.has(s)) continue;
      seen.add(s);
      out.push({
        labels: toLabels(this.labelNames, s.values),
        counts: Array.from(s.counts),
        sum: s.sum,
        count: s.count,
      });
    }
    return out;
  }
}

export function observeInto(buckets: readonly number[], s: HistogramSeries, value: number): void {
  let i = 0;
  const n = buckets.length;
  while (i < n && value > (buckets[i] as number)) i++;
  (s.counts as Float64Array)[i] = ((s.counts as Float64Array)[i] as number) + 1;
  s.sum += value;
  s.count += 1;
}

function toLabels(names: readonly string[], values: readonly string[]): Labels {
  const labels: Labels = {};
  for (let i = 0; i < names.length; i++) labels[names[i] as string] = values[i] ?? '';
  return labels;
}

interface Entry {
  name: string;
  type: MetricType;
  help: string;
  labelNames: readonly string[];
  buckets?: readonly number[];
  collect: () => Sample[] | Promise<Sample[]>;
}

/** What prom-client's Registry reads from a metric (its `get()` contract). */
interface PromMetricObject {
  name: string;
  help: string;
  type: MetricType;
  aggregator: 'sum';
  values: Array<{ labels: Labels; value: number; metricName?: string }>;
}

export interface PromRegistryLike {
  registerMetric(metric: unknown): void;
  metrics(): Promise<string>;
  readonly contentType: string;
}

export class MetricsRegistry {
  private readonly entries = new Map<string, Entry>();
  private promRegistry: Promise<PromRegistryLike> | undefined;
  /** Run before any read: hot paths that log in process and fold later (request metrics, usage) fold here. */
  private readonly beforeReads = new Set<() => void>();

  /** Registers `fold`, run before every snapshot and scrape so that what is read includes what was logged. */
  beforeRead(fold: () => void): void {
    this.beforeReads.add(fold);
  }

  /** Unregisters a `fold` (a log registers only while it holds entries, so a discarded middleware is not kept). */
  offBeforeRead(fold: () => void): void {
    this.beforeReads.delete(fold);
  }

  private settle(): void {
    for (const fold of this.beforeReads) {
      try {
        fold();
      } catch {
        // a fold that throws must not fail a scrape; the metrics it feeds show what was folded before
      }
    }
  }

  /** A counter kept in process and incremented by the caller. A reserved or kit name takes its spec from names.ts. */
  counter(name: string, help?: string, labelNames?: readonly string[]): ValueMetric {
    const spec = this.resolve({ name, type: 'counter', help, labelNames });
    const metric = new ValueMetric(name, spec.labelNames);
    this.add({ ...spec, collect: () => metric.samples() });
    return metric;
  }

  gauge(name: string, help?: string, labelNames?: readonly string[]): ValueMetric {
    const spec = this.resolve({ name, type: 'gauge', help, labelNames });
    const metric = new ValueMetric(name, spec.labelNames);
    this.add({ ...spec, collect: () => metric.samples() });
    return metric;
  }

  histogram(name: string, help?: string, labelNames?: readonly string[], buckets?: readonly number[]): HistogramMetric {
    const spec = this.resolve({ name, type: 'histogram', help, labelNames, buckets });
    const metric = new HistogramMetric(name, spec.labelNames, spec.buckets as readonly number[]);
    this.add({ ...spec, collect: () => metric.samples() });
    return metric;
  }

  /**
   * Registers a function run at scrape time that returns the metric's samples: the way a feature's stats getter is
   * exposed. Returns a function that removes it.
   */
  collect(spec: CollectorSpec): () => void {
    if (!spec || typeof spec.collect !== 'function') {
      throw new TypeError('kit.metrics.collect({ name, collect }): collect must be a function returning samples');
    }
    const resolved = this.resolve(spec);
    this.add({ ...resolved, collect: spec.collect });
    return () => {
      this.entries.delete(spec.name);
    };
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  /** Runs every collector; a collector that throws is reported as having no samples (a scrape never fails). */
  async snapshot(): Promise<Record<string, MetricSnapshot>> {
    this.settle();
    const out: Record<string, MetricSnapshot> = {};
    await Promise.all(
      [...this.entries.values()].map(async (e) => {
        let samples: Sample[] = [];
        try {
          samples = await e.collect();
        } catch {
          samples = [];
        }
        out[e.name] = {
          name: e.name,
          type: e.type,
          help: e.help,
          labelNames: e.labelNames,
          ...(e.buckets ? { buckets: e.buckets } : {}),
          samples,
        };
      }),
    );
    return out;
  }

  /**
   * The kit's prom-client Registry (created on first call; prom-client is loaded then). Merge it into your own with
   * `Registry.merge([register, await kit.metrics.registry()])`, or serve it yourself.
   */
  registry(): Promise<PromRegistryLike> {
    this.promRegistry ??= loadPromClient().then((prom) => {
      const registry = new prom.Registry() as PromRegistryLike;
      for (const e of this.entries.values()) registry.registerMetric(this.promView(e.name));
      return registry;
    });
    // A later collect() must show up too: register lazily-added entries on each call.
    return this.promRegistry.then((registry) => {
      for (const name of this.entries.keys()) {
        try {
          registry.registerMetric(this.promView(name));
        } catch {
          // already registered under this name: its view reads the live entry anyway
        }
      }
      return registry;
    });
  }

  private readonly views = new Map<string, object>();

  // A metric object in prom-client's shape whose get() reads the live entry, so re-registration is idempotent.
  private promView(name: string): object {
    let view = this.views.get(name);
    if (view) return view;
    const entry = (): Entry | undefined => this.entries.get(name);
    const first = entry() as Entry;
    view = {
      name,
      help: first.help,
      type: first.type,
      aggregator: 'sum',
      reset() {},
      get: async (): Promise<PromMetricObject> => {
        const e = entry();
        if (!e) return { name, help: first.help, type: first.type, aggregator: 'sum', values: [] };
        this.settle();
        let samples: Sample[] = [];
        try {
          samples = await e.collect();
        } catch {
          samples = [];
        }
        return { name, help: e.help, type: e.type, aggregator: 'sum', values: toPromValues(e, samples) };
      },
    };
    this.views.set(name, view);
    return view;
  }

  private resolve(spec: Omit<CollectorSpec, 'collect'>): Omit<Entry, 'collect'> {
    const { name } = spec;
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw new ConfigError(`metrics: ${JSON.stringify(name)} is not a valid Prometheus metric name`);
    }
    if (this.entries.has(name)) throw new ConfigError(`metrics: '${name}' is already registered`);
    const reserved = specFor(name);
    const type = spec.type ?? reserved?.type;
    const help = spec.help ?? reserved?.help;
    const labelNames = spec.labelNames ?? reserved?.labelNames ?? [];
    const buckets = spec.buckets ?? reserved?.buckets;
    if (!type || !help) {
      throw new ConfigError(`metrics: '${name}' is not a reserved name; give it a type and a help text`);
    }
    if (reserved && (reserved.type !== type || reserved.labelNames.join() !== labelNames.join())) {
      throw new ConfigError(
        `metrics: '${name}' is reserved as a ${reserved.type} with labels [${reserved.labelNames.join(', ')}] (docs/observability.md)`,
      );
    }
    for (const l of labelNames) {
      if (!LABEL.test(l) || l === 'le') throw new ConfigError(`metrics: '${name}' has an invalid label name '${l}'`);
    }
    if (type === 'histogram') {
      if (!buckets || buckets.length === 0 || buckets.some((b, i) => i > 0 && b <= (buckets[i - 1] as number))) {
        throw new ConfigError(`metrics: histogram '${name}' needs increasing bucket bounds`);
      }
    }
    return { name, type, help, labelNames, ...(type === 'histogram' ? { buckets: buckets as number[] } : {}) };
  }

  private add(entry: Entry): void {
    this.entries.set(entry.name, entry);
  }
}

function toPromValues(e: Entry, samples: Sample[]): PromMetricObject['values'] {
  const values: PromMetricObject['values'] = [];
  for (const s of samples) {
    const labels = s.labels ?? {};
    if ('counts' in s) {
      const buckets = e.buckets ?? [];
      let cumulative = 0;
      for (let i = 0; i <= buckets.length; i++) {
        cumulative += s.counts[i] ?? 0;
        const le = i < buckets.length ? String(buckets[i]) : '+Inf';
        values.push({ labels: { ...labels, le }, value: cumulative, metricName: `${e.name}_bucket` });
      }
      values.push({ labels, value: s.sum, metricName: `${e.name}_sum` });
      values.push({ labels, value: s.count, metricName: `${e.name}_count` });
    } else {
      values.push({ labels, value: s.value });
    }
  }
  return values;
}

async function loadPromClient(): Promise<{ Registry: new () => unknown }> {
  let mod: any;
  try {
    mod = await import('prom-client');
  } catch (error) {
    throw new ConfigError(
      `GET /metrics needs the optional peer dependency 'prom-client': npm install prom-client (${String(error)})`,
    );
  }
  return { Registry: mod.Registry ?? mod.default?.Registry };
}

/** Estimates a quantile from bucket counts (linear within a bucket), as Prometheus' histogram_quantile does. */
export function quantile(buckets: readonly number[], counts: readonly number[], q: number): number | null {
  let total = 0;
  for (const c of counts) total += c;
  if (total === 0) return null;
  const rank = q * total;
  let cumulative = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i] as number;
    if (cumulative + c >= rank && c > 0) {
      if (i >= buckets.length) return buckets[buckets.length - 1] ?? null;
      const lower = i === 0 ? 0 : (buckets[i - 1] as number);
      const upper = buckets[i] as number;
      return lower + (upper - lower) * ((rank - cumulative) / c);
    }
    cumulative += c;
  }
  return buckets[buckets.length - 1] ?? null;
}
