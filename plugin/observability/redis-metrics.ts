// The JSON behind `/admin/redis-metrics` and the dashboard: the kit's own figures and the server's (from INFO) over a
// short rolling window. Nothing polls in the background: each request takes a sample, and rates and percentiles are
// the difference with the oldest sample still inside the window, so an unwatched app sends the server nothing.
// What a store cannot tell (the embedded store has no INFO; Upstash REST answers only part of it) is listed under
// `unavailable` and left null, never estimated.

import type { Store } from '../connection/store.js';
import {
  type HistogramSample,
  type MetricSnapshot,
  type MetricsRegistry,
  quantile,
  type ValueSample,
} from './metrics.js';

export interface RedisMetricsOptions {
  /** Width of the rolling window rates and percentiles are taken over, in ms. @default 60000 */
  windowMs: number;
  /** Longest the INFO call may take before the report goes out without the server's figures. @default 800 */
  infoTimeoutMs: number;
}

interface Tick {
  t: number;
  kit: Record<string, MetricSnapshot>;
  info: Record<string, string> | null;
}

type Filter = (labels: Record<string, string>) => boolean;

function values(snap: Record<string, MetricSnapshot>, name: string, filter?: Filter): number {
  const m = snap[name];
  if (!m) return 0;
  let total = 0;
  for (const s of m.samples as ValueSample[]) if (!filter || filter(s.labels ?? {})) total += s.value ?? 0;
  return total;
}

function histogram(snap: Record<string, MetricSnapshot>, name: string, filter?: Filter): number[] | null {
  const m = snap[name];
  if (!m?.buckets) return null;
  const counts = new Array<number>(m.buckets.length + 1).fill(0);
  for (const s of m.samples as HistogramSample[]) {
    if (filter && !filter(s.labels ?? {})) continue;
    for (let i = 0; i < counts.length; i++) counts[i] = (counts[i] as number) + (s.counts[i] ?? 0);
  }
  return counts;
}

function minus(a: number[] | null, b: number[] | null): number[] | null {
  if (!a) return null;
  if (!b) return a;
  return a.map((v, i) => Math.max(0, v - (b[i] ?? 0)));
}

const round = (v: number | null, digits = 2): number | null =>
  v === null || !Number.isFinite(v) ? null : Math.round(v * 10 ** digits) / 10 ** digits;

function percentilesMs(buckets: readonly number[] | undefined, counts: number[] | null) {
  if (!buckets || !counts) return { p50: null, p90: null, p99: null };
  const q = (p: number) => round((quantile(buckets, counts, p) ?? Number.NaN) * 1000);
  return { p50: q(0.5), p90: q(0.9), p99: q(0.99) };
}

function ratio(hits: number, misses: number): number | null {
  return hits + misses > 0 ? round(hits / (hits + misses), 4) : null;
}

export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

export class RedisMetrics {
  private readonly ticks: Tick[] = [];
  private infoCache: { t: number; info: Promise<Record<string, string> | null> } | undefined;
  private infoError: string | undefined;

  constructor(
    private readonly store: Store,
    private readonly registry: MetricsRegistry,
    private readonly options: RedisMetricsOptions,
  ) {}

  // One INFO per second at most, however many dashboards are open.
  private info(now: number): Promise<Record<string, string> | null> {
    if (this.store.mode === 'memory') return Promise.resolve(null);
    if (this.infoCache && now - this.infoCache.t < 1000) return this.infoCache.info;
    const store = this.store;
    const info = store
      .exec('INFO', (c) => c.command('INFO', ['all']), this.options.infoTimeoutMs)
      .then((text) => {
        this.infoError = undefined;
        return parseInfo(String(text));
      })
      .catch((error: unknown) => {
        this.infoError = error instanceof Error ? error.message : String(error);
        return null;
      });
    this.infoCache = { t: now, info };
    return info;
  }

  async report(): Promise<Record<string, unknown>> {
    const now = Date.now();
    const [kit, info] = await Promise.all([this.registry.snapshot(), this.info(now)]);
    const tick: Tick = { t: now, kit, info };
    // Keep at most one tick a second, and nothing older than the window (plus one tick to diff against).
    const last = this.ticks[this.ticks.length - 1];
    if (!last || now - last.t >= 1000) this.ticks.push(tick);
    while (this.ticks.length > 2 && now - (this.ticks[1] as Tick).t >= this.options.windowMs) this.ticks.shift();
    const base = this.ticks[0] && this.ticks[0] !== tick && now - this.ticks[0].t >= 500 ? this.ticks[0] : undefined;
    const seconds = base ? (now - base.t) / 1000 : 0;

    return {
      time: new Date(now).toISOString(),
      windowSeconds: round(seconds, 1),
      store: this.storeSection(kit),
      kit: this.kitSection(kit, base?.kit, seconds),
      server: this.serverSection(info, base?.info ?? null, seconds),
    };
  }

  private storeSection(kit: Record<string, MetricSnapshot>) {
    const circuit = (kit.rediskit_store_circuit_state?.samples as ValueSample[] | undefined)?.find(
      (s) => s.value === 1,
    );
    return {
      mode: this.store.mode,
      circuit: circuit?.labels?.state ?? this.store.circuitState,
      circuitOpens: values(kit, 'rediskit_store_circuit_opens_total'),
      unavailable: values(kit, 'rediskit_store_unavailable_total'),
    };
  }

  private kitSection(
    now: Record<string, MetricSnapshot>,
    before: Record<string, MetricSnapshot> | undefined,
    s: number,
  ) {
    const rate = (name: string, filter?: Filter): number | null => {
      if (!now[name]) return null;
      if (!before || s <= 0) return null;
      return round((values(now, name, filter) - values(before, name, filter)) / s);
    };
    const windowed = (name: string, filter?: Filter) =>
      minus(histogram(now, name, filter), before ? histogram(before, name, filter) : null);
    const delta = (name: string, filter?: Filter): number =>
      values(now, name, filter) - (before ? values(before, name, filter) : 0);
    const present = (name: string) => Boolean(now[name]);

    const httpBuckets = now.rediskit_http_request_duration_seconds?.buckets;
    const storeBuckets = now.rediskit_store_command_duration_seconds?.buckets;
    const routes = new Map<string, { method: string; route: string; requests: number; errors: number }>();
    for (const sample of (now.rediskit_http_requests_total?.samples ?? []) as ValueSample[]) {
      const l = sample.labels ?? {};
      const key = `${l.method} ${l.route}`;
      const r = routes.get(key) ?? { method: l.method ?? '', route: l.route ?? '', requests: 0, errors: 0 };
      r.requests += sample.value;
      if (Number(l.status) >= 500) r.errors += sample.value;
      routes.set(key, r);
    }
    const commands = new Map<string, number>();
    for (const sample of (now.rediskit_store_command_duration_seconds?.samples ?? []) as HistogramSample[]) {
      const c = sample.labels?.command ?? '';
      commands.set(c, (commands.get(c) ?? 0) + sample.count);
    }
    const cache = (name: string, results: string[]) => {
      if (!present(name)) return null;
      const out: Record<string, number | null> = {};
      for (const r of results) out[r] = delta(name, (l) => l.result === r);
      out.hitRatio = ratio(out.hit ?? 0, out.miss ?? 0);
      return out;
    };
    const lockWait = windowed('rediskit_lock_wait_seconds');
    return {
      http: {
        requests: values(now, 'rediskit_http_requests_total'),
        requestsPerSecond: rate('rediskit_http_requests_total'),
        errorsPerSecond: rate('rediskit_http_requests_total', (l) => Number(l.status) >= 500),
        latencyMs: percentilesMs(httpBuckets, windowed('rediskit_http_request_duration_seconds')),
        routes: [...routes.values()]
          .sort((a, b) => b.requests - a.requests)
          .slice(0, 20)
          .map((r) => ({
            ...r,
            latencyMs: percentilesMs(
              httpBuckets,
              windowed('rediskit_http_request_duration_seconds', (l) => l.method === r.method && l.route === r.route),
            ),
          })),
      },
      store: {
        commandsPerSecond: (() => {
          const a = histogram(now, 'rediskit_store_command_duration_seconds');
          const b = before ? histogram(before, 'rediskit_store_command_duration_seconds') : null;
          if (!a || !b || s <= 0) return null;
          return round((a.reduce((x, y) => x + y, 0) - b.reduce((x, y) => x + y, 0)) / s);
        })(),
        latencyMs:
          this.store.mode === 'memory'
            ? { p50: null, p90: null, p99: null }
            : percentilesMs(storeBuckets, windowed('rediskit_store_command_duration_seconds')),
        commands: [...commands.entries()]
          .sort((a, b) => b[1] - a[1])
          .slice(0, 20)
          .map(([command, calls]) => ({
            command,
            calls,
            latencyMs: percentilesMs(
              storeBuckets,
              windowed('rediskit_store_command_duration_seconds', (l) => l.command === command),
            ),
          })),
        ...(this.store.mode === 'memory' ? { note: 'embedded store: calls are in-process and not timed' } : {}),
      },
      usage: present('rediskit_usage_flushes_total')
        ? {
            events: values(now, 'rediskit_usage_events_total'),
            flushes: values(now, 'rediskit_usage_flushes_total', (l) => l.outcome === 'ok'),
            flushErrors: values(now, 'rediskit_usage_flushes_total', (l) => l.outcome === 'error'),
            bufferedSeries: values(now, 'rediskit_usage_buffered_series'),
            dropped: values(now, 'rediskit_usage_dropped_total'),
          }
        : null,
      // Features wired in by the integrator; null until their collector is registered (docs/observability.md).
      rateLimit: present('rediskit_ratelimit_decisions_total')
        ? {
            allowed: delta('rediskit_ratelimit_decisions_total', (l) => l.decision === 'allowed'),
            blocked: delta('rediskit_ratelimit_decisions_total', (l) => l.decision === 'blocked'),
            blockedPerSecond: rate('rediskit_ratelimit_decisions_total', (l) => l.decision === 'blocked'),
            storeFailures: present('rediskit_ratelimit_store_failures_total')
              ? delta('rediskit_ratelimit_store_failures_total')
              : null,
          }
        : null,
      cache: cache('rediskit_cache_requests_total', ['hit', 'miss', 'stale', 'coalesced', 'bypass']),
      semanticCache: cache('rediskit_semantic_cache_requests_total', ['hit', 'miss', 'bypass']),
      locks:
        present('rediskit_lock_acquisitions_total') || present('rediskit_lock_wait_seconds')
          ? {
              acquired: delta('rediskit_lock_acquisitions_total', (l) => l.outcome === 'acquired'),
              contended: delta('rediskit_lock_acquisitions_total', (l) => l.outcome === 'contended'),
              timeouts: delta('rediskit_lock_acquisitions_total', (l) => l.outcome === 'timeout'),
              leasesLost: values(now, 'rediskit_lock_leases_lost_total'),
              waitMs: percentilesMs(now.rediskit_lock_wait_seconds?.buckets, lockWait),
            }
          : null,
      queue: present('rediskit_queue_jobs')
        ? {
            waiting: values(now, 'rediskit_queue_jobs', (l) => l.state === 'waiting'),
            active: values(now, 'rediskit_queue_jobs', (l) => l.state === 'active'),
            delayed: values(now, 'rediskit_queue_jobs', (l) => l.state === 'delayed'),
            dead: values(now, 'rediskit_queue_jobs', (l) => l.state === 'dead'),
          }
        : null,
    };
  }

  private serverSection(info: Record<string, string> | null, before: Record<string, string> | null, s: number) {
    const fields = [
      'version',
      'uptimeSeconds',
      'usedMemoryBytes',
      'maxMemoryBytes',
      'fragmentationRatio',
      'opsPerSecond',
      'connectedClients',
      'keyspaceHits',
      'keyspaceMisses',
      'hitRatio',
      'evictedKeys',
      'commandStats',
    ] as const;
    if (this.store.mode === 'memory') {
      return {
        available: false,
        note: 'embedded in-process store: there is no server to ask; its own figures follow',
        embedded: this.store.engine
          ? {
              keys: this.store.engine.size,
              maxKeys: this.store.engine.options.maxKeys,
              evictedKeys: this.store.engine.evictions,
            }
          : null,
        unavailable: [...fields],
      };
    }
    if (!info) {
      return {
        available: false,
        note: this.infoError ? `INFO failed: ${this.infoError}` : 'INFO returned nothing',
        unavailable: [...fields],
      };
    }
    const num = (key: string, from = info): number | null => {
      const v = from[key];
      if (v === undefined || v === '') return null;
      const n = Number(v);
      return Number.isFinite(n) ? n : null;
    };
    const hits = num('keyspace_hits');
    const misses = num('keyspace_misses');
    let windowRatio: number | null = null;
    if (hits !== null && misses !== null) {
      const h0 = before ? (num('keyspace_hits', before) ?? 0) : 0;
      const m0 = before ? (num('keyspace_misses', before) ?? 0) : 0;
      windowRatio = ratio(hits - h0, misses - m0);
    }
    let opsPerSecond = num('instantaneous_ops_per_sec');
    const processed = num('total_commands_processed');
    if (before && s > 0 && processed !== null) {
      const p0 = num('total_commands_processed', before);
      if (p0 !== null) opsPerSecond = round((processed - p0) / s);
    }
    const commandStats: Array<{ command: string; calls: number; usecPerCall: number }> = [];
    for (const [key, value] of Object.entries(info)) {
      if (!key.startsWith('cmdstat_')) continue;
      const calls = /calls=(\d+)/.exec(value);
      const per = /usec_per_call=([\d.]+)/.exec(value);
      if (calls && per)
        commandStats.push({ command: key.slice(8), calls: Number(calls[1]), usecPerCall: Number(per[1]) });
    }
    commandStats.sort((a, b) => b.calls - a.calls);
    const out: Record<string, unknown> = {
      available: true,
      ...(this.store.mode === 'cluster' ? { scope: 'one node of the cluster (INFO is per node)' } : {}),
      version: info.redis_version ?? null,
      uptimeSeconds: num('uptime_in_seconds'),
      usedMemoryBytes: num('used_memory'),
      maxMemoryBytes: num('maxmemory'),
      fragmentationRatio: num('mem_fragmentation_ratio'),
      opsPerSecond,
      connectedClients: num('connected_clients'),
      keyspaceHits: hits,
      keyspaceMisses: misses,
      hitRatio: windowRatio,
      evictedKeys: num('evicted_keys'),
      commandStats: commandStats.length > 0 ? commandStats.slice(0, 20) : null,
    };
    out.unavailable = fields.filter((f) => out[f] === null || out[f] === undefined);
    return out;
  }
}
