// The rate limiter's contract, unchanged on every store: each algorithm's allow/deny sequence, several policies
// in one decision, cost, peek, reset, block duration, the blocked-keys cache, expiring keys, one round trip.
// Windows are long (1 h) so that real time on the Redis tiers cannot move a boundary under a test.

import express from 'express';
import request from 'supertest';
import { StoreCommandError, StoreUnavailableError } from '../../plugin/index';
import type { RateLimiterOptions } from '../../plugin/rate-limit/options';
import { statePart } from '../../plugin/rate-limit/limiter';
import { limit as limitScript } from '../../plugin/rate-limit/scripts.generated';
import { describeForEachStore } from '../support/stores';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeForEachStore('rate limit', ({ tier, makeKit, upstash }) => {
  // ioredis-mock's TIME pairs the wall-clock second with process.hrtime()'s sub-second part, so its clock jumps
  // back and forth within a second. Tests that read sub-second time through the script skip that tier; the real
  // servers (standalone, Cluster, Upstash) run them.
  const realClock = tier === 'ioredis-mock' ? test.skip : test;
  // GCRA's remaining count moves with sub-millisecond time, so it needs the real clock (see above).
  const algorithms = ['fixed-window', 'sliding-window', 'token-bucket', 'gcra'] as const;
  if (tier === 'ioredis-mock')
    realClock('gcra: admits the limit from a fresh state (needs a real clock)', () => undefined);
  test.each(algorithms.filter((a) => tier !== 'ioredis-mock' || a !== 'gcra'))(
    '%s: admits the limit from a fresh state, then denies with a retry time',
    async (algorithm) => {
      const kit = makeKit();
      const rl = kit.rateLimiter({ limit: 3, window: '1 h', algorithm, blockCache: false });
      const results = [];
      for (let i = 0; i < 5; i++) results.push(await rl.limit('client-a'));
      expect(results.map((r) => r.allowed)).toEqual([true, true, true, false, false]);
      expect(results.map((r) => r.remaining)).toEqual([2, 1, 0, 0, 0]);
      const denied = results[3]!;
      expect(denied.policy).toBe('default');
      expect(denied.limit).toBe(3);
      if (algorithm === 'token-bucket' || algorithm === 'gcra') {
        // One unit comes back every window / limit = 20 minutes.
        expect(denied.retryAfterMs).toBeGreaterThan(1_190_000);
        expect(denied.retryAfterMs).toBeLessThanOrEqual(1_200_000);
      } else {
        expect(denied.retryAfterMs).toBeGreaterThan(0);
        expect(denied.retryAfterMs).toBeLessThanOrEqual(2 * 3_600_000);
      }
      // Another client is counted apart.
      expect((await rl.limit('client-b')).allowed).toBe(true);
    },
  );

  realClock('several policies: one decision, the most restrictive decides, a denial consumes nothing', async () => {
    const kit = makeKit();
    const rl = kit.rateLimiter({
      policies: [
        { name: 'burst', limit: 2, window: '1 h', algorithm: 'fixed-window' },
        { name: 'hourly', limit: 5, window: '1 h' },
        { name: 'gcra', limit: 10, window: '1 h', algorithm: 'gcra' },
      ],
      blockCache: false,
    });
    const a = await rl.limit('k');
    expect(a).toMatchObject({ allowed: true, policy: 'burst', remaining: 1 });
    expect(a.policies.map((p) => [p.name, p.remaining])).toEqual([
      ['burst', 1],
      ['hourly', 4],
      ['gcra', 9],
    ]);
    await rl.limit('k');
    const c = await rl.limit('k');
    expect(c).toMatchObject({ allowed: false, policy: 'burst', status: 429 });
    expect(c.policies.map((p) => p.allowed)).toEqual([false, true, true]);
    const peek = await rl.peek('k');
    expect(peek.policies.map((p) => p.remaining)).toEqual([0, 3, 8]);
  });

  test('cost per call, peek reads without consuming, reset forgets', async () => {
    const kit = makeKit();
    const rl = kit.rateLimiter({ limit: 5, window: '1 h', blockCache: false });
    expect(await rl.limit('k', { cost: 3 })).toMatchObject({ allowed: true, remaining: 2 });
    expect(await rl.peek('k')).toMatchObject({ allowed: true, remaining: 2 });
    expect(await rl.peek('k')).toMatchObject({ allowed: true, remaining: 2 });
    expect(await rl.limit('k', { cost: 3 })).toMatchObject({ allowed: false, remaining: 2 });
    expect(await rl.limit('k', { cost: 2 })).toMatchObject({ allowed: true, remaining: 0 });
    await rl.reset('k');
    expect(await rl.limit('k')).toMatchObject({ allowed: true, remaining: 4 });
    await expect(rl.limit('k', { cost: -1 })).rejects.toThrow(TypeError);
  });

  realClock('block duration: a denied client stays refused until the block ends', async () => {
    const kit = makeKit();
    const rl = kit.rateLimiter({
      limit: 1,
      window: '400 ms',
      algorithm: 'token-bucket',
      blockDuration: '1200 ms',
      blockCache: false,
    });
    expect((await rl.limit('k')).allowed).toBe(true);
    const denied = await rl.limit('k');
    expect(denied.allowed).toBe(false);
    expect(denied.retryAfterMs).toBeGreaterThan(1000);
    const blocked = Date.now();
    await sleep(500); // the bucket has refilled, the block has not ended
    // A timer may fire a fraction of a millisecond early by Date.now(): bound by the time that really passed.
    const asked = Date.now();
    const still = await rl.limit('k');
    expect(still).toMatchObject({ allowed: false, reason: 'blocked' });
    expect(still.retryAfterMs).toBeLessThanOrEqual(1200 - (asked - blocked) + 1);
    expect(still.retryAfterMs).toBeLessThanOrEqual(710);
    await sleep(800);
    expect((await rl.limit('k')).allowed).toBe(true);
  });

  test('a denied key is answered from the in-process cache, without a store call', async () => {
    const kit = makeKit();
    const rl = kit.rateLimiter({ limit: 1, window: '1 h', algorithm: 'fixed-window' });
    await rl.limit('attacker');
    await rl.limit('attacker');
    const calls = rl.stats.storeCalls;
    for (let i = 0; i < 20; i++) expect(await rl.limit('attacker')).toMatchObject({ allowed: false, reason: 'cache' });
    expect(rl.stats.storeCalls).toBe(calls);
    expect(rl.stats.cacheHits).toBe(20);
  });

  // The middleware decides synchronously on the embedded store and through a promise on Redis: same answers.
  test('middleware: a numeric cost counts each request that much, then 429 with headers, until reset', async () => {
    const kit = makeKit();
    const mw = kit.rateLimit({ limit: 5, window: '1 h', algorithm: 'fixed-window', cost: 2 });
    const app = express();
    app.get('/ping', mw, (req, res) => {
      res.json({ remaining: req.rateLimit?.remaining });
    });
    const first = await request(app).get('/ping');
    expect(first.status).toBe(200);
    expect(first.body.remaining).toBe(3);
    expect(first.headers.ratelimit).toMatch(/^"default";r=3;t=\d+$/);
    expect((await request(app).get('/ping')).body.remaining).toBe(1);
    const denied = await request(app).get('/ping');
    expect(denied.status).toBe(429);
    expect(denied.headers['retry-after']).toMatch(/^\d+$/);
    expect((await request(app).get('/ping')).status).toBe(429);
    await mw.limiter.reset('ip:127.0.0.1');
    expect((await request(app).get('/ping')).status).toBe(200);
  });

  test('middleware: a handler that throws reaches the error handler (a 500), and the other requests are answered', async () => {
    const kit = makeKit();
    const mw = kit.rateLimit({
      limit: 1,
      window: '1 h',
      handler: () => {
        throw new Error('handler bug');
      },
    });
    const app = express();
    app.get('/ping', mw, (_req, res) => {
      res.json({ ok: true });
    });
    app.use((error: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(500).json({ error: error.message });
    });
    // Sent together: on Redis they share one script call, whose other decisions must still be answered.
    const replies = await Promise.all([1, 2, 3].map(() => request(app).get('/ping')));
    expect(replies.map((r) => r.status).sort()).toEqual([200, 500, 500]);
    expect(replies.find((r) => r.status === 500)?.body).toEqual({ error: 'handler bug' });
  });

  test('middleware: a store failure goes to its failure mode, on the store tiers through the batched path', async () => {
    const kit = makeKit();
    const mw = kit.rateLimit({ limit: 5, window: '1 h', onStoreError: 'closed' });
    if (kit.store.mode !== 'memory') {
      jest.spyOn(kit.store, 'script').mockRejectedValue(new StoreUnavailableError('store away (test)'));
    }
    const app = express();
    app.get('/ping', mw, (_req, res) => {
      res.json({ ok: true });
    });
    const replies = await Promise.all([1, 2].map(() => request(app).get('/ping')));
    expect(replies.map((r) => r.status)).toEqual(kit.store.mode === 'memory' ? [200, 200] : [503, 503]);
  });

  // On Redis (not Cluster) the decisions started in one turn share script calls; each must still be exactly what
  // it would have been alone, in call order, including several for the same key in one call.
  test('decisions started together are each exact, in call order (batched into few store calls on Redis)', async () => {
    const kit = makeKit();
    const rl = kit.rateLimiter({
      name: 'together',
      limit: 30,
      window: '1 h',
      algorithm: 'fixed-window',
      blockCache: false,
    });
    const script = kit.store.mode === 'memory' ? undefined : jest.spyOn(kit.store, 'script');
    const keys = ['a', 'b', 'c'];
    const results = await Promise.all(Array.from({ length: 120 }, (_, i) => rl.limit(keys[i % 3] as string)));
    for (const key of keys) {
      const mine = results.filter((_, i) => keys[i % 3] === key);
      expect(mine.map((r) => r.allowed)).toEqual([...Array(30).fill(true), ...Array(10).fill(false)]);
      expect(mine.slice(0, 30).map((r) => r.remaining)).toEqual(Array.from({ length: 30 }, (_, i) => 29 - i));
    }
    expect(rl.stats.storeCalls).toBe(120);
    if (script && tier !== 'cluster') {
      // 120 decisions in groups of at most 16 (sent as soon as a group is full).
      expect(script.mock.calls.length).toBeLessThanOrEqual(8);
      expect(script.mock.calls.length).toBeGreaterThan(0);
    }
    if (script && tier === 'cluster') expect(script.mock.calls.length).toBe(120);
  });

  // Blocks, peeks, costs and several policies inside one batch: each decision must read exactly what the one
  // before it left (a block set by one decision, the next one's reply not inheriting it), as one at a time does.
  realClock('a batch with blocks, peeks and costs answers as the same calls made one at a time', async () => {
    const kit = makeKit();
    const config: Omit<RateLimiterOptions, 'name'> = {
      policies: [
        { name: 'small', limit: 4, window: '1 h', algorithm: 'fixed-window' },
        { name: 'big', limit: 50, window: '1 h', algorithm: 'token-bucket' },
      ],
      blockDuration: '1 h',
      blockCache: false,
    };
    const together = kit.rateLimiter({ name: 'together-mix', ...config });
    const alone = kit.rateLimiter({ name: 'alone-mix', ...config });
    type Op = [kind: 'limit' | 'peek', key: string, cost: number];
    const ops: Op[] = [
      ['limit', 'x', 3],
      ['peek', 'x', 1],
      ['limit', 'x', 3],
      ['peek', 'x', 1],
      ['limit', 'y', 1],
      ['limit', 'x', 1],
      ['peek', 'y', 1],
      ['limit', 'z', 0],
      ['limit', 'y', 2],
      ['limit', 'y', 2],
      ['peek', 'z', 1],
      ['limit', 'y', 1],
    ];
    const call = (rl: typeof alone, [kind, key, cost]: Op) =>
      kind === 'peek' ? rl.peek(key) : rl.limit(key, { cost });
    const batched = await Promise.all(ops.map((op) => call(together, op)));
    const sequential = [];
    for (const op of ops) sequential.push(await call(alone, op));
    const shape = (r: (typeof batched)[number]) => ({
      allowed: r.allowed,
      reason: r.reason,
      policy: r.policy,
      remaining: r.remaining,
      policies: r.policies.map((p) => [p.name, p.allowed, Math.floor(p.remaining)]),
    });
    expect(batched.map(shape)).toEqual(sequential.map(shape));
    // The sequence does what it says: x is blocked by its second call, y by its fourth, each block only its own.
    const T = true;
    const F = false;
    expect(batched.map((r) => r.allowed)).toEqual([T, T, F, F, T, F, T, T, T, F, T, F]);
    expect(batched[11]).toMatchObject({ reason: 'blocked' });
    expect(batched[3]).toMatchObject({ reason: 'blocked' });
    expect(batched[6]).toMatchObject({ allowed: true, remaining: 3 });
  });

  test('decisions started just before reset() or kit.close() are applied first', async () => {
    const kit = makeKit();
    const rl = kit.rateLimiter({ name: 'order', limit: 5, window: '1 h', algorithm: 'fixed-window' });
    // The script loaded first: a fresh server answers the first call NOSCRIPT, and its retry (EVAL) would go after
    // the DEL below whatever the limiter does.
    await rl.peek('warm');
    const first = rl.limit('a');
    await rl.reset('a');
    expect((await first).remaining).toBe(4);
    expect((await rl.peek('a')).remaining).toBe(5);
    const pending = [rl.limit('b'), rl.limit('c'), rl.peek('d')];
    await kit.close();
    expect((await Promise.all(pending)).map((r) => r.allowed)).toEqual([true, true, true]);
  });

  test('a batch that fails in transport sends each of its decisions to the failure mode', async () => {
    const kit = makeKit();
    const rl = kit.rateLimiter({ name: 'fails', limit: 5, window: '1 h', onStoreError: 'open' });
    if (kit.store.mode !== 'memory') {
      jest.spyOn(kit.store, 'script').mockRejectedValue(new StoreUnavailableError('store away (test)'));
    }
    const results = await Promise.all(['a', 'b', 'c', 'a'].map((key) => rl.limit(key)));
    if (kit.store.mode === 'memory') expect(results.every((r) => r.allowed && r.reason === undefined)).toBe(true);
    else {
      expect(results.map((r) => [r.allowed, r.reason])).toEqual(Array(4).fill([true, 'store-unavailable']));
      expect(rl.stats.storeFailures).toBe(4);
    }
  });

  test('limiters with the same policies but no name do not share counters', async () => {
    const kit = makeKit();
    const a = kit.rateLimiter({ limit: 1, window: '1 h' });
    const b = kit.rateLimiter({ limit: 1, window: '1 h' });
    expect(a.name).not.toBe(b.name);
    expect((await a.limit('k')).allowed).toBe(true);
    expect((await b.limit('k')).allowed).toBe(true);
  });

  test('tiers of one middleware keep their own limits and counters, and each counts in /metrics', async () => {
    const kit = makeKit({ admin: { open: true } });
    const app = express();
    kit.mount(app);
    app.get(
      '/t',
      kit.rateLimit({
        name: 'plans',
        keyBy: () => 'same-client',
        tiers: {
          free: { limit: 1, window: '1 h', algorithm: 'fixed-window' },
          // A month, past the ~24.8 days a timer can wait: a window is never one.
          pro: { limit: 3, window: '30 d', algorithm: 'fixed-window' },
        },
        tier: (req) => String(req.query.plan),
      }),
      (_req, res) => {
        res.json({ ok: true });
      },
    );
    const statuses = async (plan: string, n: number) => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push((await request(app).get(`/t?plan=${plan}`)).status);
      return out;
    };
    expect(await statuses('free', 2)).toEqual([200, 429]);
    // The same client key on the other tier: a counter of its own, with that tier's limit.
    expect(await statuses('pro', 4)).toEqual([200, 200, 200, 429]);
    const metrics = (await request(app).get('/api/v1/metrics')).text;
    expect(metrics).toContain('rediskit_ratelimit_decisions_total{policy="plans/free",decision="allowed"} 1');
    expect(metrics).toContain('rediskit_ratelimit_decisions_total{policy="plans/pro",decision="allowed"} 3');
    expect(metrics).toContain('rediskit_ratelimit_decisions_total{policy="plans/pro",decision="blocked"} 1');
  });

  test('keys are bounded, escaped and expire by themselves', async () => {
    const kit = makeKit();
    const rl = kit.rateLimiter({ name: 'keys', limit: 10, window: '1 h', algorithm: 'fixed-window' });
    for (const key of ['x'.repeat(10_000), 'ünïcødé ✓ 🚀', 'a\r\nSET evil 1', '{brace}', '']) {
      expect((await rl.limit(key)).allowed).toBe(true);
      expect((await rl.limit(key)).remaining).toBe(8);
    }
    // A sliding window: a new client's state lives two windows (4 s) from its first request. (A fixed window's key
    // lives until the calendar window ends, which can be a millisecond after the request: the test was flaky.)
    const short = kit.rateLimiter({ name: 'short', limit: 10, window: '2 s', algorithm: 'sliding-window' });
    const stored = kit.store.keys.key('rl', 'plain', statePart('short', short.policies));
    await short.limit('plain');
    const ttl = await kit.store.pttl(stored);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(4000);
  });

  test("one key per client and limiter, however many policies, living as long as its longest policy's state", async () => {
    const kit = makeKit();
    const rl = kit.rateLimiter({
      name: 'onekey',
      policies: [
        { name: 'burst', limit: 5, window: '1 s', algorithm: 'fixed-window' },
        { name: 'hourly', limit: 100, window: '1 h' },
        { name: 'even', limit: 1000, window: '1 h', algorithm: 'gcra' },
      ],
    });
    await rl.limit('k');
    const state = kit.store.keys.key('rl', 'k', statePart('onekey', rl.policies));
    // The sliding window's state lives to the end of the window after the current one: up to 2 h.
    const ttl = await kit.store.pttl(state);
    expect(ttl).toBeGreaterThan(3_600_000);
    expect(ttl).toBeLessThanOrEqual(7_200_000);
    // Nothing under the per-policy keys of earlier versions.
    for (const part of ['burst', 'hourly', 'even', '!block']) {
      expect(await kit.store.pttl(kit.store.keys.key('rl', 'k', 'onekey', part))).toBe(-2);
    }
    await rl.reset('k');
    expect(await kit.store.pttl(state)).toBe(-2);
  });

  if (tier === 'standalone') {
    test('a batch answered with a reply of the wrong shape fails each of its decisions with a typed error', async () => {
      const kit = makeKit();
      const rl = kit.rateLimiter({ name: 'shape', limit: 5, window: '1 h' });
      if (kit.store.mode === 'memory') throw new Error('expected a Redis store');
      jest.spyOn(kit.store, 'script').mockResolvedValue([1, 2, 3]);
      const results = await Promise.allSettled([rl.limit('a'), rl.limit('b'), rl.limit('c')]);
      for (const r of results) {
        expect(r.status).toBe('rejected');
        expect((r as PromiseRejectedResult).reason).toBeInstanceOf(StoreCommandError);
        expect(String((r as PromiseRejectedResult).reason.message)).toMatch(/answered \[1,2,3\] to 3 decisions/);
      }
    });

    test("the shipped SHA1 is the server's SCRIPT LOAD of the script", async () => {
      const kit = makeKit();
      if (kit.store.mode === 'memory') throw new Error('expected a Redis store');
      expect(await kit.store.command('SCRIPT', 'LOAD', limitScript.source)).toBe(limitScript.sha);
    });
  }

  if (tier === 'upstash') {
    test('one HTTP round trip per decision, however many policies', async () => {
      const kit = makeKit();
      const rl = kit.rateLimiter({
        policies: [
          { name: 'a', limit: 10, window: '1 s' },
          { name: 'b', limit: 100, window: '1 m', algorithm: 'token-bucket' },
          { name: 'c', limit: 1000, window: '1 h', algorithm: 'gcra' },
        ],
      });
      await rl.limit('warm'); // may load the script (NOSCRIPT, then EVAL)
      const before = { ...upstash()!.requests };
      for (let i = 0; i < 5; i++) await rl.limit('k');
      const after = upstash()!.requests;
      expect(after.single - before.single).toBe(5);
      expect(after.pipeline - before.pipeline).toBe(0);
      expect(after.multiExec - before.multiExec).toBe(0);
    });
  }
});
