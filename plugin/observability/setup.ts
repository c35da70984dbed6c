// Builds the kit's observability once per kit: the metrics registry with the foundation's own metrics (store
// command latency, circuit state), the `kit.metrics` API, and the protected admin router.

import type { RequestHandler, Router } from 'express';
import type { Store } from '../connection/store.js';
import { ConfigError } from '../core/errors.js';
import type { KitLogger } from '../core/logger.js';
import { assertKnownKeys, assertPlainObject, positiveInt } from '../core/options.js';
import { type AdminConfig, adminRouter } from './admin.js';
import { FeatureMetrics } from './features.js';
import type { FinishHook } from './finish.js';
import { type HttpMetricsOptions, httpMetricsHook, httpMetricsMiddleware } from './http.js';
import {
  type CollectorSpec,
  type HistogramMetric,
  type MetricSnapshot,
  MetricsRegistry,
  type PromRegistryLike,
  type ValueMetric,
} from './metrics.js';
import { RedisMetrics } from './redis-metrics.js';

export interface MetricsApi {
  /** Middleware recording request count and latency by route template. Mount it before your routes. */
  (options?: HttpMetricsOptions): RequestHandler;
  /** Exposes a feature's figures: `collect` runs at scrape time and returns samples (docs/observability.md). */
  collect(spec: CollectorSpec): () => void;
  counter(name: string, help?: string, labelNames?: readonly string[]): ValueMetric;
  gauge(name: string, help?: string, labelNames?: readonly string[]): ValueMetric;
  histogram(name: string, help?: string, labelNames?: readonly string[], buckets?: readonly number[]): HistogramMetric;
  /** The kit's own prom-client Registry (needs the optional peer dependency prom-client). */
  registry(): Promise<PromRegistryLike>;
  /** Every metric's current samples, as plain objects. */
  snapshot(): Promise<Record<string, MetricSnapshot>>;
  /** The `/admin/redis-metrics` report: kit and server figures over the rolling window. */
  report(): Promise<Record<string, unknown>>;
}

export interface Observability {
  registry: MetricsRegistry;
  api: MetricsApi;
  /** The finish-time work of kit.metrics(options), for kit.observe() to combine with usage in one middleware. */
  httpHook(options?: HttpMetricsOptions): FinishHook;
  router(): Router;
  /** Where the kit hands the feature instances it builds, so their stats getters feed /metrics. */
  features: FeatureMetrics;
}

const COMMAND_LABELS = 64;

// `what` from store.exec: 'GET', 'script incr_ttl', 'pipeline', 'SUBSCRIBE <channel>'. Channel names and anything
// unexpected must not become labels.
export function commandLabel(what: string): string {
  const space = what.indexOf(' ');
  if (space < 0) return what.length <= 32 ? what : 'other';
  const head = what.slice(0, space);
  if (head === 'script') return `script:${what.slice(space + 1, space + 33)}`;
  return head.length <= 32 ? head : 'other';
}

export function createObservability(
  store: Store,
  admin: AdminConfig,
  logger: KitLogger,
  windowMs = 60_000,
): Observability {
  const registry = new MetricsRegistry();
  const commands = registry.histogram('rediskit_store_command_duration_seconds');
  if (store.mode !== 'memory') {
    type Pair = { ok: ReturnType<HistogramMetric['seriesFor']>; error: ReturnType<HistogramMetric['seriesFor']> };
    // `what` → series, so the common case is one Map lookup; both maps are bounded (a channel name in
    // 'SUBSCRIBE <channel>' must grow neither the labels nor this cache).
    const byWhat = new Map<string, Pair>();
    const byLabel = new Map<string, Pair>();
    const pairFor = (what: string): Pair => {
      let label = commandLabel(what);
      if (!byLabel.has(label) && byLabel.size >= COMMAND_LABELS) label = 'other';
      let pair = byLabel.get(label);
      if (!pair) {
        pair = { ok: commands.seriesFor([label, 'ok']), error: commands.seriesFor([label, 'error']) };
        byLabel.set(label, pair);
      }
      if (byWhat.size < 1024) byWhat.set(what, pair);
      return pair;
    };
    const buckets = commands.buckets;
    store.observer = (what, ms, failed) => {
      const pair = byWhat.get(what) ?? pairFor(what);
      const s = failed ? pair.error : pair.ok;
      const seconds = ms / 1000;
      let i = 0;
      while (i < buckets.length && seconds > (buckets[i] as number)) i++;
      s.counts[i] = (s.counts[i] as number) + 1;
      s.sum += seconds;
      s.count += 1;
    };
  }
  registry.collect({
    name: 'rediskit_store_circuit_state',
    collect: () =>
      (['closed', 'open', 'half-open'] as const).map((state) => ({
        labels: { state },
        value: store.circuitState === state ? 1 : 0,
      })),
  });
  registry.collect({
    name: 'rediskit_store_circuit_opens_total',
    collect: () => [{ value: store.mode === 'memory' ? 0 : (store.breaker?.opens ?? 0) }],
  });
  registry.collect({
    name: 'rediskit_store_unavailable_total',
    collect: () => [{ value: store.mode === 'memory' ? 0 : store.failures }],
  });

  const requests = registry.counter('rediskit_http_requests_total');
  const duration = registry.histogram('rediskit_http_request_duration_seconds');
  const redisMetrics = new RedisMetrics(store, registry, { windowMs, infoTimeoutMs: 800 });
  let httpInstalled = false;

  const httpHook = (options: HttpMetricsOptions = {}): FinishHook => {
    if ((options as { method?: unknown }).method !== undefined) {
      throw new ConfigError('kit.metrics: call it: app.use(kit.metrics()), not app.use(kit.metrics)');
    }
    assertPlainObject(options, 'kit.metrics');
    assertKnownKeys(options, ['maxRoutes', 'route'], 'kit.metrics');
    if (options.route !== undefined && typeof options.route !== 'function') {
      throw new TypeError('kit.metrics: route must be a function of (req, res) returning the route label');
    }
    if (httpInstalled) {
      logger.warnOnce(
        'ERR_KIT_METRICS_TWICE',
        'kit.metrics() is mounted more than once: requests passing both are counted twice',
      );
    }
    httpInstalled = true;
    return httpMetricsHook(
      requests,
      duration,
      {
        maxRoutes: positiveInt(options.maxRoutes ?? 100, 'kit.metrics.maxRoutes', 10_000),
        ...(options.route ? { route: options.route } : {}),
      },
      registry,
    );
  };
  const api = ((options?: HttpMetricsOptions): RequestHandler =>
    httpMetricsMiddleware(httpHook(options))) as MetricsApi;
  api.collect = (spec) => registry.collect(spec);
  api.counter = (name, help, labelNames) => registry.counter(name, help, labelNames);
  api.gauge = (name, help, labelNames) => registry.gauge(name, help, labelNames);
  api.histogram = (name, help, labelNames, buckets) => registry.histogram(name, help, labelNames, buckets);
  api.registry = () => registry.registry();
  api.snapshot = () => registry.snapshot();
  api.report = () => redisMetrics.report();

  return {
    registry,
    api,
    httpHook,
    router: () => adminRouter(admin, logger, registry, redisMetrics),
    features: new FeatureMetrics(registry),
  };
}
