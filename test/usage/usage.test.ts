// Usage tracking on every store: counts per workspace, user, route template and feature in each bucket size, tokens,
// unique users, retention on every key, queries validated, nothing lost on close.

import express from 'express';
import request from 'supertest';
import { createRedisKit, type RedisKit, UsageQueryError } from '../../plugin/index';
import { parseUsageOptions } from '../../plugin/usage/options';
import { UsageTracker } from '../../plugin/usage/usage';
import { describeForEachStore, uniquePrefix } from '../support/stores';

function appFor(kit: RedisKit) {
  const app = express();
  // What an auth middleware would do: put the tenant and user on res.locals.
  app.use((req, res, next) => {
    res.locals.workspace = req.get('x-ws');
    res.locals.userId = req.get('x-user');
    next();
  });
  app.use(kit.usage({ feature: (req) => (req.path.startsWith('/chat') ? 'chat' : undefined) }));
  app.get('/items/:id', (_req, res) => {
    res.json({ ok: true });
  });
  app.post('/chat/:room', (_req, res) => {
    kit.usage.record({ workspace: res.locals.workspace, feature: 'llm', tokensUsed: 120, tokensSaved: 30 });
    res.json({ ok: true });
  });
  return app;
}

describeForEachStore('usage', (ctx) => {
  test('counts requests by workspace, user, route template and feature; tokens; unique users', async () => {
    const kit = ctx.makeKit({ usage: { flushInterval: '1 m' } });
    const app = appFor(kit);
    await kit.ready();
    const from = Date.now() - 1000;
    for (let i = 0; i < 6; i++) {
      await request(app)
        .get(`/items/${i}`)
        .set('x-ws', 'acme')
        .set('x-user', `u${i % 3}`);
    }
    await request(app).post('/chat/r1').set('x-ws', 'acme').set('x-user', 'u0');
    await request(app).get('/items/9').set('x-ws', 'globex').set('x-user', 'g1');
    await request(app).get('/nothing/here').set('x-ws', 'acme');
    await kit.usage.flush();
    const to = Date.now() + 1000;

    for (const granularity of ['minute', 'hour', 'day', 'month'] as const) {
      const r = await kit.usage.query({ workspace: 'acme', from, to, granularity });
      expect(r.totals.requests).toBe(8);
      expect(r.totals.routes).toEqual({ '/items/:id': 6, '/chat/:room': 1, unmatched: 1 });
      expect(r.totals.users).toEqual({ u0: 3, u1: 2, u2: 2 });
      expect(r.totals.features).toEqual({ chat: 1 }); // the token-only record adds no request
      expect(r.totals.tokensUsed).toBe(120);
      expect(r.totals.tokensSaved).toBe(30);
      // ioredis-mock has no HyperLogLog commands (PFADD/PFCOUNT): the figure is null there, never invented.
      expect(r.uniqueUsers).toBe(ctx.tier === 'ioredis-mock' ? null : 3);
      expect(r.buckets.reduce((s, b) => s + b.requests, 0)).toBe(8);
    }
    const other = await kit.usage.query({ workspace: 'globex', from, to, granularity: 'day' });
    expect(other.totals.requests).toBe(1);
    expect(other.uniqueUsers).toBe(ctx.tier === 'ioredis-mock' ? null : 1);
    expect((await kit.usage.query({ workspace: 'nobody', from, to })).totals.requests).toBe(0);
    expect((await kit.usage.monthToDate('acme')).used).toBe(8);
  });

  test('a flush is one pipeline: the unique-user writes travel with the counters', async () => {
    const kit = ctx.makeKit({ usage: { flushInterval: '1 m' } });
    await kit.ready();
    for (let i = 0; i < 4; i++) kit.usage.record({ workspace: `w${i % 2}`, user: `u${i}` });
    // The embedded store has no pipelines: its usage backend writes to the engine directly.
    const pipeline = 'pipeline' in kit.store ? jest.spyOn(kit.store, 'pipeline') : undefined;
    await kit.usage.flush();
    const calls = [...(pipeline?.mock.calls ?? [])];
    pipeline?.mockRestore();
    const r = await kit.usage.query({ workspace: 'w0', granularity: 'day' });
    expect(r.totals.requests).toBe(2);
    if (ctx.tier === 'memory') expect(pipeline).toBeUndefined();
    // ioredis-mock fails a pipeline that mixes a missing script with other commands as a whole: the two parts are
    // then sent on their own (and it has no HyperLogLog).
    else if (ctx.tier === 'ioredis-mock') expect(calls.length).toBeGreaterThanOrEqual(2);
    else {
      expect(calls).toHaveLength(1);
      const names = (calls[0]?.[0] ?? []).map((c) => c[0]);
      expect(names.filter((n) => n === 'EVALSHA')).toHaveLength(2); // one script per workspace
      expect(names.filter((n) => n === 'PFADD')).toHaveLength(2);
      expect(r.uniqueUsers).toBe(2);
    }
  });

  test('monthToDate includes what is still buffered (the quota hook never lags a flush)', async () => {
    const kit = ctx.makeKit({ usage: { flushInterval: '1 m' } });
    await kit.ready();
    for (let i = 0; i < 5; i++) kit.usage.record({ workspace: 'q' });
    await kit.usage.flush();
    for (let i = 0; i < 3; i++) kit.usage.record({ workspace: 'q' });
    // Requests the middleware counted are held in its log until folded: they must show up as well.
    const app = appFor(kit);
    for (let i = 0; i < 2; i++) await request(app).get('/items/1').set('x-ws', 'q').expect(200);
    const m = await kit.usage.monthToDate('q');
    expect(m.used).toBe(10);
    expect(m.period).toMatch(/^\d{4}-\d{2}$/);
    expect(Date.parse(m.resetsAt)).toBeGreaterThan(Date.now());
  });

  test('bad queries are a 400-class UsageQueryError', async () => {
    const kit = ctx.makeKit();
    await expect(kit.usage.query({ workspace: '' })).rejects.toBeInstanceOf(UsageQueryError);
    await expect(kit.usage.query({ workspace: 'a', granularity: 'week' as never })).rejects.toThrow(/granularity/);
    await expect(kit.usage.query({ workspace: 'a', from: 'yesterday-ish' })).rejects.toThrow(/not a valid date/);
    await expect(kit.usage.query({ workspace: 'a', from: 10, to: 5 })).rejects.toThrow(/before/);
    await expect(
      kit.usage.query({ workspace: 'a', from: 0, to: Date.now(), granularity: 'minute' }),
    ).rejects.toMatchObject({ status: 400, code: 'ERR_KIT_USAGE_QUERY' });
  });

  if (ctx.tier !== 'memory') {
    test('every key is under the workspace hash tag and expires', async () => {
      const kit = ctx.makeKit();
      await kit.ready();
      kit.usage.record({ workspace: 'acme corp/../x', user: 'someone@example.com', route: '/a' });
      await kit.usage.flush();
      const prefix = kit.store.keys.prefix;
      const keys: string[] = [];
      if (
        ctx.tier === 'cluster' ||
        ctx.tier === 'ioredis-mock' ||
        ctx.tier === 'upstash' ||
        ctx.tier === 'standalone'
      ) {
        // Compute the expected keys rather than SCAN (SCAN is per node on a Cluster).
        const r = await kit.usage.query({
          workspace: 'acme corp/../x',
          granularity: 'minute',
          from: Date.now() - 60_000,
        });
        expect(r.totals.requests).toBe(1);
        const ws = kit.store.keys.key('usage', 'acme corp/../x');
        expect(ws).toMatch(new RegExp(`^${prefix}:usage:\\{~[A-Za-z0-9_-]{24}\\}$`)); // raw input hashed, never pasted
        const minute = Math.floor(Date.now() / 60_000);
        for (const k of [`${ws}:m:${minute}`, `${ws}:d:${Math.floor(Date.now() / 86_400_000)}`]) keys.push(k);
      }
      for (const key of keys) {
        const ttl = await kit.store.pttl(key);
        expect(ttl).toBeGreaterThan(0);
      }
    });
  }

  test('close() flushes what is buffered: nothing lost', async () => {
    const prefix = uniquePrefix();
    const kit = ctx.makeKit({ prefix, usage: { flushInterval: '1 m' } });
    await kit.ready();
    for (let i = 0; i < 250; i++) kit.usage.record({ workspace: `w${i % 3}`, user: `u${i % 7}` });
    expect(kit.usage.stats().buffered).toBeGreaterThan(0);
    await kit.close();
    expect(kit.usage.stats().buffered).toBe(0);
    if (ctx.tier === 'memory') return; // the embedded store ends with its kit: nothing left to read it from
    const reader = ctx.makeKit({ prefix });
    let total = 0;
    for (const w of ['w0', 'w1', 'w2'])
      total += (await reader.usage.query({ workspace: w, granularity: 'day' })).totals.requests;
    expect(total).toBe(250);
  });
});

describe('usage: buffering and failures (memory store)', () => {
  let kit: RedisKit;
  afterEach(() => kit?.close());

  test('the timer flushes in the background without being asked', async () => {
    kit = createRedisKit({ store: 'memory', env: {}, logger: false, usage: { flushInterval: 50 } });
    kit.usage.record({ workspace: 'w' });
    await new Promise((r) => setTimeout(r, 200));
    expect(kit.usage.stats().flushes).toBeGreaterThanOrEqual(1);
    expect((await kit.usage.query({ workspace: 'w' })).totals.requests).toBe(1);
  });

  test('bad events are ignored, not thrown; misuse of the middleware is explained', () => {
    kit = createRedisKit({ store: 'memory', env: {}, logger: false });
    expect(() => kit.usage.record({ workspace: 'w', count: Number.NaN, tokensUsed: -5 })).not.toThrow();
    expect(() => kit.usage.record(undefined as never)).not.toThrow();
    expect(() => (kit.usage as unknown as (r: object) => void)({ method: 'GET' })).toThrow(/app.use\(kit.usage\(\)\)/);
    expect(() => kit.usage({ workspace: 'x' as never })).toThrow(TypeError);
    expect(() => kit.usage({ worksapce: () => 'x' } as never)).toThrow(/Did you mean 'workspace'/);
    expect(() =>
      createRedisKit({ store: 'memory', env: {}, logger: false, usage: { retention: { minute: 'forever' } } }),
    ).toThrow(/usage.retention.minute/);
    // Retention longer than a timer can wait is fine: it is never a timer.
    expect(() =>
      createRedisKit({ store: 'memory', env: {}, logger: false, usage: { retention: { day: '400 d' } } }).close(),
    ).not.toThrow();
  });
});

describe('usage: the defaults read res.locals as the response finishes', () => {
  test('a user object, a userId, values set after the middleware and a res.locals replaced by a copy', async () => {
    const kit = createRedisKit({ store: 'memory', env: {}, logger: false, usage: { flushInterval: '1 m' } });
    try {
      const app = express();
      app.use(kit.usage());
      app.get('/object', (_req, res) => {
        res.locals.workspace = 'w1';
        res.locals.user = { id: 'u-object' };
        res.locals.feature = 'f1';
        res.json({ ok: true });
      });
      app.get('/id', (_req, res) => {
        res.locals.workspace = 'w1';
        res.locals.userId = 'u-id';
        res.json({ ok: true });
      });
      // A copy that keeps the kit's symbol key (as docs/observability.md says a copy must), set after the middleware.
      app.get('/copy', (_req, res) => {
        res.locals = { ...res.locals, workspace: 'w2', userId: 'u-copy', feature: 'f2' };
        res.json({ ok: true });
      });
      app.get('/none', (_req, res) => {
        res.json({ ok: true });
      });
      for (const path of ['/object', '/id', '/copy', '/none']) expect((await request(app).get(path)).status).toBe(200);
      await kit.usage.flush();
      const w1 = await kit.usage.query({ workspace: 'w1' });
      expect(w1.totals.users).toEqual({ 'u-object': 1, 'u-id': 1 });
      expect(w1.totals.features).toEqual({ f1: 1 });
      const w2 = await kit.usage.query({ workspace: 'w2' });
      expect(w2.totals).toMatchObject({ requests: 1, users: { 'u-copy': 1 }, features: { f2: 1 } });
      expect((await kit.usage.query({ workspace: 'default' })).totals.requests).toBe(1);
    } finally {
      await kit.close();
    }
  });
});

describe('usage: the middleware log (memory store, controlled clock)', () => {
  const MINUTE = 60_000;
  // A controlled clock near the real one: the embedded store expires keys on the real clock, by the retention.
  const BASE = Math.floor(Date.now() / MINUTE) * MINUTE;
  let kit: RedisKit;
  afterEach(() => kit?.close());

  function tracker(now: () => number): UsageTracker {
    kit = createRedisKit({ store: 'memory', env: {}, logger: false });
    return new UsageTracker(kit.store, parseUsageOptions({ flushInterval: '1 m' }), kit.logger, undefined, now);
  }

  test('each logged request counts in the minute it was logged in, across a minute boundary', async () => {
    let clock = BASE + 59_000;
    const t = tracker(() => clock);
    for (let i = 0; i < 3; i++) t.hit('w', 'u1', '/a', '');
    clock += 2_000; // the next minute: the log is folded before the first request of it is written
    for (let i = 0; i < 2; i++) t.hit('w', 'u2', '/a', '');
    await t.flush();
    const r = await t.query({ workspace: 'w', granularity: 'minute', from: BASE, to: BASE + 2 * MINUTE });
    expect(r.buckets.map((b) => b.requests)).toEqual([3, 2]);
    expect(r.totals.users).toEqual({ u1: 3, u2: 2 });
    await t.close();
  });

  test('a full log is folded, and reading the buffer folds it: no request lost, memory bounded', async () => {
    const t = tracker(() => BASE);
    // More than the log holds (512), over three routes.
    for (let i = 0; i < 1_500; i++) t.hit('w', `u${i % 7}`, `/r${i % 3}`, 'f');
    expect(t.buffered).toBe(3 * 7); // distinct (user, route) counters, once folded
    await t.flush();
    const r = await t.query({ workspace: 'w', granularity: 'minute', from: BASE, to: BASE + MINUTE });
    expect(r.totals.requests).toBe(1_500);
    expect(r.totals.routes).toEqual({ '/r0': 500, '/r1': 500, '/r2': 500 });
    expect(r.totals.features).toEqual({ f: 1_500 });
    await t.close();
  });

  test('requests that finish while close() is flushing are counted by its last flush', async () => {
    const t = tracker(() => BASE);
    const backend = (t as unknown as { backend: { apply(batch: unknown): Promise<void> } }).backend;
    const apply = backend.apply.bind(backend);
    backend.apply = async (batch) => {
      await new Promise((r) => setTimeout(r, 30));
      await apply(batch);
    };
    t.hit('w', 'u', '/a', '');
    t.hit('w', 'u', '/a', '');
    const closing = t.close();
    for (let i = 0; i < 3; i++) t.hit('w', 'u', '/a', '');
    await closing;
    const r = await t.query({ workspace: 'w', granularity: 'minute', from: BASE, to: BASE + MINUTE });
    expect(r.totals.requests).toBe(5);
  });

  test('the events counter and stats include requests still in the log', async () => {
    kit = createRedisKit({ store: 'memory', env: {}, logger: false, usage: { flushInterval: '1 m' } });
    const app = express();
    app.use(kit.usage({ workspace: () => 'w' }));
    app.get('/x', (_req, res) => {
      res.json({ ok: true });
    });
    for (let i = 0; i < 4; i++) await request(app).get('/x').expect(200);
    const events = (await kit.metrics.snapshot()).rediskit_usage_events_total?.samples[0];
    expect(events && 'value' in events ? events.value : undefined).toBe(4);
    expect(kit.usage.stats().events).toBe(4);
  });
});
