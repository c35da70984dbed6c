// Every feature's reserved metrics appear in /metrics once the feature is used, and move with its traffic: rate
// limit (decisions, blocked-keys cache, store failures), response cache, semantic cache (results, score histogram,
// tokens and latency saved), locks (acquisitions, wait histogram, lost leases), queue (depth, outcomes, latencies),
// realtime (connections, messages). Run on the embedded store (fast) and on a real Redis (the Lua paths).

import express from 'express';
import request from 'supertest';
import { createRedisKit, type LlmRequest, type RedisKit } from '../../plugin/index';
import { describeForEachStore } from '../support/stores';

const TOKEN = 'test-admin-token-features-0123';
const auth = { Authorization: `Bearer ${TOKEN}` };
const ask = (content: string): LlmRequest => ({ model: 'm', messages: [{ role: 'user', content }] });

function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

function sum(metrics: Map<string, number>, name: string, ...needles: string[]): number {
  let total = 0;
  for (const [k, v] of metrics) {
    if ((k === name || k.startsWith(`${name}{`)) && needles.every((n) => k.includes(n))) total += v;
  }
  return total;
}

describeForEachStore(
  'feature metrics in /metrics',
  (ctx) => {
    let kit: RedisKit;
    let app: express.Express;
    const scrape = async () => {
      const res = await request(app).get('/api/v1/metrics').set(auth);
      expect(res.status).toBe(200);
      return { text: res.text, m: parse(res.text) };
    };

    beforeEach(() => {
      kit = ctx.makeKit({ admin: { token: TOKEN } });
      app = express();
    });
    afterEach(async () => {
      await kit.close();
    });

    test('no feature used: none of their metrics is exposed', async () => {
      kit.mount(app);
      const { text } = await scrape();
      expect(text).not.toContain('rediskit_ratelimit_decisions_total');
      expect(text).not.toContain('rediskit_lock_acquisitions_total');
      expect(text).not.toContain('rediskit_queue_jobs');
    });

    test('rate limit: allowed and blocked decisions, blocked-keys cache hits', async () => {
      app.get('/limited', kit.rateLimit({ name: 'api', limit: 2, window: '1 m', keyBy: () => 'one' }), (_req, res) => {
        res.json({ ok: true });
      });
      kit.mount(app);
      const before = (await scrape()).m;
      expect(before.get('rediskit_ratelimit_decisions_total{policy="api",decision="allowed"}')).toBe(0);
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await request(app).get('/limited')).status);
      expect(statuses).toEqual([200, 200, 429, 429, 429]);
      const after = (await scrape()).m;
      expect(after.get('rediskit_ratelimit_decisions_total{policy="api",decision="allowed"}')).toBe(2);
      expect(after.get('rediskit_ratelimit_decisions_total{policy="api",decision="blocked"}')).toBe(3);
      // After the first refusal the key is blocked in process: the later ones need no store call.
      expect(after.get('rediskit_ratelimit_blocked_cache_hits_total{policy="api"}')).toBeGreaterThanOrEqual(1);
      expect(after.get('rediskit_ratelimit_store_failures_total{policy="api",mode="local"}')).toBe(0);
      const report = await request(app).get('/api/v1/admin/redis-metrics').set(auth);
      expect(report.body.kit.rateLimit).toEqual(expect.objectContaining({ allowed: 2, blocked: 3 }));
    });

    test('response cache: miss, then hits, invalidations', async () => {
      let n = 0;
      app.get('/cached', kit.cache({ ttl: '1 m', tags: ['t'] }), (_req, res) => {
        n++;
        res.json({ n });
      });
      kit.mount(app);
      for (let i = 0; i < 4; i++) expect((await request(app).get('/cached')).status).toBe(200);
      expect(n).toBe(1);
      await kit.cache.invalidate({ tags: ['t'] });
      const { m } = await scrape();
      expect(m.get('rediskit_cache_requests_total{result="miss"}')).toBe(1);
      expect(m.get('rediskit_cache_requests_total{result="hit"}')).toBe(3);
      expect(m.has('rediskit_cache_requests_total{result="stale"}')).toBe(true);
      expect(m.has('rediskit_cache_requests_total{result="coalesced"}')).toBe(true);
      expect(m.get('rediskit_cache_invalidations_total')).toBeGreaterThanOrEqual(1);
      const report = await request(app).get('/api/v1/admin/redis-metrics').set(auth);
      expect(report.body.kit.cache.hitRatio).toBe(0.75);
    });

    test('semantic cache: hits, misses, bypasses, score histogram, tokens and latency saved', async () => {
      kit.mount(app);
      const cache = kit.semanticCache();
      expect((await cache.lookup(ask('How do I export my data?'))).status).toBe('miss');
      await cache.wrap(ask('How do I reset my password?'), async () => ({
        text: 'reset it',
        usage: { total_tokens: 42 },
      }));
      const hit = await cache.wrap(ask('How do I reset my password?'), async () => 'never');
      expect(hit).toEqual(expect.objectContaining({ response: expect.objectContaining({ text: 'reset it' }) }));
      // A near paraphrase goes through vector search: its best score lands in the histogram.
      await cache.lookup(ask('How can I reset my password please?'));
      await cache.lookup({ ...ask('How do I export my data?'), temperature: 1.5 } as LlmRequest);
      const { m } = await scrape();
      expect(sum(m, 'rediskit_semantic_cache_requests_total', 'result="hit"')).toBeGreaterThanOrEqual(1);
      expect(sum(m, 'rediskit_semantic_cache_requests_total', 'result="miss"')).toBeGreaterThanOrEqual(1);
      expect(m.get('rediskit_semantic_cache_requests_total{result="bypass"}')).toBeGreaterThanOrEqual(1);
      expect(m.get('rediskit_semantic_cache_score_count')).toBeGreaterThanOrEqual(1);
      expect(m.get('rediskit_semantic_cache_score_bucket{le="+Inf"}')).toBe(
        m.get('rediskit_semantic_cache_score_count'),
      );
      expect(m.get('rediskit_semantic_cache_tokens_saved_total')).toBeGreaterThanOrEqual(42);
      expect(m.get('rediskit_semantic_cache_latency_saved_seconds_total')).toBeGreaterThanOrEqual(0);
    });

    test('locks: acquisitions, contention, wait histogram, timeouts and lost leases', async () => {
      kit.mount(app);
      const held = await kit.locks.acquire('job', { ttl: '5 s' });
      const waiting = kit.locks.acquire('job', { ttl: '5 s', waitTimeout: '3 s' });
      await new Promise((r) => setTimeout(r, 50));
      await held.release();
      const second = await waiting;
      await expect(kit.locks.acquire('job', { waitTimeout: 0 })).rejects.toThrow();
      await second.release();
      // A lease that runs out under its holder: its release finds it gone.
      const short = await kit.locks.acquire('short', { ttl: 100 });
      await new Promise((r) => setTimeout(r, 250));
      await expect(short.release()).rejects.toThrow();
      const { m } = await scrape();
      expect(m.get('rediskit_lock_acquisitions_total{outcome="acquired"}')).toBe(3);
      expect(m.get('rediskit_lock_acquisitions_total{outcome="contended"}')).toBe(2);
      expect(m.get('rediskit_lock_acquisitions_total{outcome="timeout"}')).toBe(1);
      expect(m.get('rediskit_lock_wait_seconds_count{outcome="acquired"}')).toBe(3);
      expect(m.get('rediskit_lock_wait_seconds_sum{outcome="acquired"}')).toBeGreaterThan(0.03);
      expect(m.get('rediskit_lock_leases_lost_total')).toBe(1);
      const report = await request(app).get('/api/v1/admin/redis-metrics').set(auth);
      expect(report.body.kit.locks.waitMs.p99).toBeGreaterThan(0);
    });

    test('queue: depth by state, outcomes, wait and processing latencies', async () => {
      kit.mount(app);
      const q = kit.queue('mail');
      await q.add({ n: 1 });
      await q.add({ n: 2 });
      let m = (await scrape()).m;
      expect(m.get('rediskit_queue_jobs{queue="mail",state="waiting"}')).toBe(2);
      let done = 0;
      q.process(async () => {
        done++;
      });
      for (let i = 0; i < 100 && done < 2; i++) await new Promise((r) => setTimeout(r, 20));
      await q.close();
      m = (await scrape()).m;
      expect(m.get('rediskit_queue_jobs{queue="mail",state="waiting"}')).toBe(0);
      expect(m.get('rediskit_queue_jobs_total{queue="mail",outcome="completed"}')).toBe(2);
      expect(m.get('rediskit_queue_wait_seconds_count{queue="mail"}')).toBe(2);
      expect(m.get('rediskit_queue_processing_seconds_count{queue="mail"}')).toBe(2);
    });

    test('realtime: connections and delivered messages', async () => {
      kit.mount(app);
      const seen: unknown[] = [];
      const stop = await kit.realtime.subscribe('room', (e) => seen.push(e));
      await kit.realtime.publish('room', { data: 'one' });
      for (let i = 0; i < 50 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      const { m } = await scrape();
      expect(m.get('rediskit_realtime_messages_total{direction="delivered"}')).toBeGreaterThanOrEqual(1);
      expect(m.has('rediskit_realtime_connections')).toBe(true);
      await stop();
    });
  },
  { tiers: ['memory', 'standalone'] },
);

test('a hand-registered collector under a reserved name is left alone when the feature appears', async () => {
  const kit = createRedisKit({ store: 'memory', env: {}, logger: false, admin: { open: true } });
  try {
    kit.metrics.collect({
      name: 'rediskit_ratelimit_decisions_total',
      collect: () => [{ labels: { policy: 'mine', decision: 'allowed' }, value: 7 }],
    });
    expect(() => kit.rateLimiter({ name: 'x', limit: 1, window: '1 s' })).not.toThrow();
    const snap = await kit.metrics.snapshot();
    expect(snap.rediskit_ratelimit_decisions_total?.samples).toEqual([
      { labels: { policy: 'mine', decision: 'allowed' }, value: 7 },
    ]);
  } finally {
    await kit.close();
  }
});
