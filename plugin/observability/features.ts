// Exposes each feature's figures as the metrics reserved in names.ts. The kit hands every feature instance it builds
// to `track*` here; a collector per metric reads the instances' plain stats getters at scrape time, so a feature's
// hot path pays nothing for being measured (its counters are the same plain additions it keeps anyway). A
// metric's collector is registered when the first instance of its feature appears, so a kit that never uses a
// feature shows none of its metrics (and the admin report says null, not zero). A name someone already
// registered by hand with kit.metrics.collect() is left to them.

import type { Locks, LockWaitHistogram } from '../locks/locks.js';
import type { Queue } from '../queue/queue.js';
import type { RateLimiter } from '../rate-limit/limiter.js';
import type { RateLimitMiddleware } from '../rate-limit/middleware.js';
import type { RealtimeService } from '../realtime/service.js';
import type { InvalidateTarget, ResponseCache } from '../response-cache/middleware.js';
import type { SemanticCache } from '../semantic-cache/cache.js';
import type { CollectorSpec, HistogramSample, MetricsRegistry, Sample, ValueSample } from './metrics.js';

/** Instances of one kind kept for collection; past this, the oldest is forgotten (bounded memory). */
const MAX_INSTANCES = 500;
/** Longest a store-backed collector (queue depth) may take before the last known figures are reported. */
const COLLECT_TIMEOUT_MS = 1000;

function keep<T>(list: T[], item: T): void {
  if (list.includes(item)) return;
  if (list.length >= MAX_INSTANCES) list.shift();
  list.push(item);
}

/** Turns cumulative `le` buckets (ms) into the registry's non-cumulative counts, in seconds bounds. */
function fromCumulativeMs(buckets: Array<{ le: number; count: number }>): { bounds: number[]; counts: number[] } {
  const bounds: number[] = [];
  const counts: number[] = [];
  let before = 0;
  for (const b of buckets) {
    if (Number.isFinite(b.le)) bounds.push(b.le / 1000);
    counts.push(b.count - before);
    before = b.count;
  }
  return { bounds, counts };
}

export class FeatureMetrics {
  private readonly limiters: RateLimiter[] = [];
  private readonly semantic: SemanticCache[] = [];
  private readonly queues = new Map<string, Queue<unknown>>();
  private readonly lockManagers: Locks[] = [];
  private readonly realtimes: RealtimeService[] = [];
  private cache: ResponseCache | undefined;
  private cacheInvalidated = 0;
  private readonly registered = new Set<string>();

  constructor(private readonly registry: MetricsRegistry) {}

  private register(spec: CollectorSpec): void {
    if (this.registered.has(spec.name) || this.registry.has(spec.name)) return;
    this.registered.add(spec.name);
    this.registry.collect(spec);
  }

  rateLimitMiddleware(mw: RateLimitMiddleware): RateLimitMiddleware {
    // One limiter per tier (a middleware without tiers has one).
    for (const limiter of Object.values(mw.limiters)) this.rateLimiter(limiter);
    return mw;
  }

  rateLimiter<T extends RateLimiter>(limiter: T): T {
    keep(this.limiters, limiter);
    const byPolicy = (pick: (l: RateLimiter) => Array<[Record<string, string>, number]>): ValueSample[] => {
      // Two limiters may share a name (one per instance of a router): their counts add up under it.
      const sums = new Map<string, { labels: Record<string, string>; value: number }>();
      for (const l of this.limiters) {
        for (const [labels, value] of pick(l)) {
          const key = Object.values(labels).join('\u0001');
          const s = sums.get(key);
          if (s) s.value += value;
          else sums.set(key, { labels, value });
        }
      }
      return [...sums.values()];
    };
    this.register({
      name: 'rediskit_ratelimit_decisions_total',
      collect: () =>
        byPolicy((l) => [
          [{ policy: l.name, decision: 'allowed' }, l.stats.allowed],
          [{ policy: l.name, decision: 'blocked' }, l.stats.blocked],
        ]),
    });
    this.register({
      name: 'rediskit_ratelimit_store_failures_total',
      collect: () => byPolicy((l) => [[{ policy: l.name, mode: l.onStoreError }, l.stats.storeFailures]]),
    });
    this.register({
      name: 'rediskit_ratelimit_blocked_cache_hits_total',
      type: 'counter',
      help: 'Refusals answered from the in-process blocked-keys cache, without a store call, by policy.',
      labelNames: ['policy'],
      collect: () => byPolicy((l) => [[{ policy: l.name }, l.stats.cacheHits]]),
    });
    return limiter;
  }

  /** The kit's response cache: counted from its stats; invalidations are counted as they resolve. */
  responseCache(cache: ResponseCache): ResponseCache {
    this.cache = cache;
    const wrapped = ((options?: Parameters<ResponseCache>[0]) => {
      this.registerCache();
      return cache(options);
    }) as ResponseCache;
    wrapped.invalidate = (target: InvalidateTarget) =>
      cache.invalidate(target).then((r) => {
        this.cacheInvalidated += r.deleted;
        return r;
      });
    wrapped.stats = () => cache.stats();
    return wrapped;
  }

  private registerCache(): void {
    const cache = this.cache;
    if (!cache) return;
    this.register({
      name: 'rediskit_cache_requests_total',
      collect: () => {
        const s = cache.stats();
        return [
          { labels: { result: 'hit' }, value: s.hits },
          { labels: { result: 'miss' }, value: s.misses },
          { labels: { result: 'stale' }, value: s.staleHits },
          { labels: { result: 'coalesced' }, value: s.collapsed },
          { labels: { result: 'bypass' }, value: s.bypassed },
        ];
      },
    });
    this.register({
      name: 'rediskit_cache_invalidations_total',
      collect: () => [{ value: this.cacheInvalidated }],
    });
  }

  semanticCache(cache: SemanticCache): SemanticCache {
    keep(this.semantic, cache);
    const all = () => this.semantic.map((c) => c.stats());
    const sum = (pick: (s: ReturnType<SemanticCache['stats']>) => number) => all().reduce((n, s) => n + pick(s), 0);
    this.register({
      name: 'rediskit_semantic_cache_requests_total',
      collect: () => [
        { labels: { result: 'hit' }, value: sum((s) => s.hits) },
        { labels: { result: 'miss' }, value: sum((s) => s.misses) },
        { labels: { result: 'bypass' }, value: sum((s) => s.bypasses) },
      ],
    });
    // The cache keeps counts per 0.05 of score; the histogram uses those bounds. It keeps no sum of scores, so
    // _sum is estimated from the bucket midpoints (documented in docs/observability.md).
    const first = cache.stats().scoreHistogram;
    const bounds = first.map((b) => b.le);
    this.register({
      name: 'rediskit_semantic_cache_score',
      buckets: bounds,
      collect: (): HistogramSample[] => {
        const counts = new Array<number>(bounds.length + 1).fill(0);
        let estimate = 0;
        for (const s of all()) {
          s.scoreHistogram.forEach((b, i) => {
            counts[i] = (counts[i] as number) + b.count;
            estimate += (b.count * ((i === 0 ? 0 : (bounds[i - 1] as number)) + b.le)) / 2;
          });
        }
        const count = counts.reduce((a, b) => a + b, 0);
        return [{ counts, sum: estimate, count }];
      },
    });
    this.register({
      name: 'rediskit_semantic_cache_tokens_saved_total',
      type: 'counter',
      help: 'LLM tokens not spent because the semantic cache answered (as reported by the cached entries).',
      labelNames: [],
      collect: () => [{ value: sum((s) => s.tokensSaved) }],
    });
    this.register({
      name: 'rediskit_semantic_cache_latency_saved_seconds_total',
      type: 'counter',
      help: 'Generation time not spent because the semantic cache answered (the original latency of each hit).',
      labelNames: [],
      collect: () => [{ value: sum((s) => s.latencySavedMs) / 1000 }],
    });
    return cache;
  }

  locks<T extends Locks>(locks: T): T {
    keep(this.lockManagers, locks);
    const stats = () => this.lockManagers.map((l) => l.stats());
    this.register({
      name: 'rediskit_lock_acquisitions_total',
      collect: () => {
        const out = { acquired: 0, contended: 0, timeout: 0 };
        for (const s of stats()) {
          out.acquired += s.acquired;
          out.contended += s.contended;
          out.timeout += s.timeouts;
        }
        return Object.entries(out).map(([outcome, value]) => ({ labels: { outcome }, value }));
      },
    });
    this.register({
      name: 'rediskit_lock_wait_seconds',
      collect: () => {
        const add = (into: HistogramSample, h: LockWaitHistogram) => {
          h.counts.forEach((c, i) => {
            (into.counts as number[])[i] = ((into.counts as number[])[i] ?? 0) + c;
          });
          into.sum += h.sumSeconds;
          into.count += h.count;
        };
        const acquired: HistogramSample = { labels: { outcome: 'acquired' }, counts: [], sum: 0, count: 0 };
        const timeout: HistogramSample = { labels: { outcome: 'timeout' }, counts: [], sum: 0, count: 0 };
        for (const s of stats()) {
          add(acquired, s.wait.acquired);
          add(timeout, s.wait.timeout);
        }
        return [acquired, timeout];
      },
    });
    this.register({
      name: 'rediskit_lock_leases_lost_total',
      collect: () => [{ value: stats().reduce((n, s) => n + s.leasesLost, 0) }],
    });
    return locks;
  }

  queue<Q extends Queue<any>>(queue: Q): Q {
    // One instance per name is enough: counts come from the store; a later instance of the same name (a second
    // kit.queue('mail') call) replaces the earlier one for this process's own counters.
    if (!this.queues.has(queue.name) && this.queues.size >= MAX_INSTANCES) return queue;
    this.queues.set(queue.name, queue);
    const last = new Map<string, Sample[]>();
    this.register({
      name: 'rediskit_queue_jobs',
      collect: async () => {
        const out: Sample[] = [];
        await Promise.all(
          [...this.queues.values()].map(async (q) => {
            const counts = await withTimeout(q.counts(), COLLECT_TIMEOUT_MS).catch(() => undefined);
            const samples = counts
              ? Object.entries(counts).map(([state, value]) => ({ labels: { queue: q.name, state }, value }))
              : (last.get(q.name) ?? []);
            if (counts) last.set(q.name, samples);
            out.push(...samples);
          }),
        );
        return out;
      },
    });
    this.register({
      name: 'rediskit_queue_jobs_total',
      collect: () => {
        const out: Sample[] = [];
        for (const q of this.queues.values()) {
          const l = q.localStats().local;
          out.push(
            { labels: { queue: q.name, outcome: 'completed' }, value: l.completed },
            { labels: { queue: q.name, outcome: 'failed' }, value: l.failed },
            { labels: { queue: q.name, outcome: 'retried' }, value: l.retried },
            { labels: { queue: q.name, outcome: 'dead' }, value: l.deadLettered },
          );
        }
        return out;
      },
    });
    const histogramOf = (pick: 'waitTime' | 'runTime') => (): HistogramSample[] =>
      [...this.queues.values()].map((q) => {
        const snap = q.localStats()[pick];
        const { counts } = fromCumulativeMs(snap.buckets);
        return { labels: { queue: q.name }, counts, sum: snap.sumMs / 1000, count: snap.count };
      });
    const bounds = fromCumulativeMs(queue.localStats().waitTime.buckets).bounds;
    this.register({ name: 'rediskit_queue_wait_seconds', buckets: bounds, collect: histogramOf('waitTime') });
    this.register({ name: 'rediskit_queue_processing_seconds', buckets: bounds, collect: histogramOf('runTime') });
    return queue;
  }

  realtime(service: RealtimeService): RealtimeService {
    keep(this.realtimes, service);
    const sum = (pick: (s: ReturnType<RealtimeService['stats']>) => number) =>
      this.realtimes.reduce((n, r) => n + pick(r.stats()), 0);
    this.register({ name: 'rediskit_realtime_connections', collect: () => [{ value: sum((s) => s.clients) }] });
    this.register({
      name: 'rediskit_realtime_messages_total',
      collect: () => [{ labels: { direction: 'delivered' }, value: sum((s) => s.delivered) }],
    });
    this.register({
      name: 'rediskit_realtime_clients_dropped_total',
      type: 'counter',
      help: 'Realtime clients disconnected because they fell too far behind (their buffer passed maxClientBuffer).',
      labelNames: [],
      collect: () => [{ value: sum((s) => s.dropped) }],
    });
    return service;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timeout')), ms);
      timer.unref();
    }),
  ]).finally(() => clearTimeout(timer));
}
