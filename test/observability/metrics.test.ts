// Prometheus /metrics and the admin routes: credential required, every kit metric present and moving with traffic,
// route labels bounded by templates (10,000 raw paths → a handful of labels), collectors for other features.

import type { AddressInfo } from 'node:net';
import { Agent, request as httpRequest } from 'node:http';
import express from 'express';
import request from 'supertest';
import { createRedisKit, type RedisKit } from '../../plugin/index';
import { RESERVED_METRICS } from '../../plugin/observability/names';
import { describeForEachStore } from '../support/stores';

const TOKEN = 'test-admin-token-0123456789';
const auth = { Authorization: `Bearer ${TOKEN}` };

/** Parses Prometheus text into `name{labels}` → value. */
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

function appFor(kit: RedisKit) {
  const app = express();
  app.use(kit.metrics());
  app.get('/items/:id', (req, res) => {
    res.json({ id: req.params.id });
  });
  app.get('/store/:id', async (req, res, next) => {
    try {
      await kit.store.incrBy(kit.store.keys.key('test', req.params.id), 1, 10_000);
      res.json({ ok: true });
    } catch (error) {
      next(error);
    }
  });
  app.get('/boom', () => {
    throw new Error('boom');
  });
  kit.mount(app);
  return app;
}

async function scrape(app: express.Express): Promise<Map<string, number>> {
  const res = await request(app).get('/api/v1/metrics').set(auth);
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return parse(res.text);
}

describe('admin protection', () => {
  const kits: RedisKit[] = [];
  afterEach(async () => {
    await Promise.all(kits.splice(0).map((k) => k.close()));
  });
  const make = (extra: Parameters<typeof createRedisKit>[0] = {}) => {
    const warnings: unknown[] = [];
    const kit = createRedisKit({
      store: 'memory',
      env: {},
      logger: { info() {}, warn: (o: unknown) => warnings.push(o), error() {} },
      ...extra,
    });
    kits.push(kit);
    const app = express();
    kit.mount(app);
    return { app, warnings };
  };

  test('with no token configured the data routes refuse everyone, and say how to configure', async () => {
    const { app, warnings } = make();
    for (const path of ['/api/v1/metrics', '/api/v1/admin/redis-metrics']) {
      const res = await request(app).get(path).set(auth);
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('ERR_KIT_ADMIN_DISABLED');
      expect(res.body.error.message).toMatch(/REDIS_KIT_ADMIN_TOKEN/);
    }
    expect(warnings).toEqual([expect.objectContaining({ code: 'ERR_KIT_ADMIN_DISABLED' })]);
  });

  test('a token from options or REDIS_KIT_ADMIN_TOKEN is required and checked', async () => {
    for (const extra of [{ admin: { token: TOKEN } }, { env: { REDIS_KIT_ADMIN_TOKEN: TOKEN } }]) {
      const { app } = make(extra);
      for (const path of ['/api/v1/metrics', '/api/v1/admin/redis-metrics']) {
        const none = await request(app).get(path);
        expect(none.status).toBe(401);
        expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
        expect((await request(app).get(path).set('Authorization', `Bearer ${TOKEN}x`)).status).toBe(401);
        expect((await request(app).get(path).set('Authorization', TOKEN)).status).toBe(401);
        expect((await request(app).get(path).set(auth)).status).toBe(200);
      }
    }
  });

  test('open: true serves without a credential and warns', async () => {
    const { app, warnings } = make({ admin: { open: true } });
    expect((await request(app).get('/api/v1/metrics')).status).toBe(200);
    expect(warnings).toEqual([expect.objectContaining({ code: 'ERR_KIT_ADMIN_OPEN' })]);
  });

  test('bad admin options fail at construction', () => {
    expect(() => createRedisKit({ store: 'memory', env: {}, logger: false, admin: { token: 'short' } })).toThrow(
      /at least 16/,
    );
    expect(() => createRedisKit({ store: 'memory', env: {}, logger: false, admin: { tokn: TOKEN } as never })).toThrow(
      /Did you mean 'token'/,
    );
    const kit = createRedisKit({ store: 'memory', env: {}, logger: false });
    kits.push(kit);
    expect(() => express().use(kit.metrics as never)).not.toThrow();
    expect(() => (kit.metrics as unknown as (r: object) => void)({ method: 'GET' })).toThrow(
      /app.use\(kit.metrics\(\)\)/,
    );
  });
});

describe('HTTP metrics (memory store)', () => {
  let kit: RedisKit;
  beforeEach(() => {
    kit = createRedisKit({ store: 'memory', env: {}, logger: false, admin: { token: TOKEN } });
  });
  afterEach(() => kit.close());

  test('request count and latency move by route template, method and status', async () => {
    const app = appFor(kit);
    const before = await scrape(app);
    for (let i = 0; i < 7; i++) expect((await request(app).get(`/items/${i}`)).status).toBe(200);
    expect((await request(app).get('/nowhere/at/all')).status).toBe(404);
    expect((await request(app).get('/boom')).status).toBe(500);
    const after = await scrape(app);

    const route = 'route="/items/:id"';
    expect(sum(after, 'rediskit_http_requests_total', route, 'status="200"', 'method="GET"')).toBe(
      sum(before, 'rediskit_http_requests_total', route, 'status="200"') + 7,
    );
    expect(sum(after, 'rediskit_http_requests_total', 'route="unmatched"', 'status="404"')).toBe(1);
    expect(sum(after, 'rediskit_http_requests_total', 'route="/boom"', 'status="500"')).toBe(1);
    expect(sum(after, 'rediskit_http_request_duration_seconds_count', route)).toBe(7);
    expect(sum(after, 'rediskit_http_request_duration_seconds_bucket', route, 'le="+Inf"')).toBe(7);
    expect(sum(after, 'rediskit_http_request_duration_seconds_sum', route)).toBeGreaterThan(0);
    // Never the raw path.
    expect([...after.keys()].some((k) => k.includes('/items/3'))).toBe(false);
    // The foundation's metrics are there on every scrape.
    expect(after.get('rediskit_store_circuit_state{state="closed"}')).toBe(1);
    expect(after.get('rediskit_store_circuit_state{state="open"}')).toBe(0);
    expect(after.has('rediskit_store_circuit_opens_total')).toBe(true);
  });

  test('10,000 distinct raw paths give a handful of route labels', async () => {
    const app = appFor(kit);
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const { port } = server.address() as AddressInfo;
    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    const get = (path: string) =>
      new Promise<number>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, path, agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end();
      });
    try {
      let next = 0;
      const worker = async () => {
        while (next < 10_000) {
          const i = next++;
          // Half hit a parameterised route, half hit no route at all (scanners, typos).
          await get(i % 2 === 0 ? `/items/${i}-${Math.random().toString(36).slice(2)}` : `/random/${i}/x`);
        }
      };
      await Promise.all(Array.from({ length: 16 }, worker));
    } finally {
      agent.destroy();
      await new Promise((r) => server.close(r));
    }
    const metrics = await scrape(app);
    const routes = new Set<string>();
    for (const k of metrics.keys()) {
      const m = /^rediskit_http_requests_total\{.*route="([^"]*)"/.exec(k);
      if (m) routes.add(m[1] as string);
    }
    expect([...routes].sort()).toEqual(['/items/:id', 'unmatched']);
    expect(sum(metrics, 'rediskit_http_requests_total')).toBe(10_000);
  }, 180_000);

  test('kit.observe(): metrics and usage in one middleware', async () => {
    const app = express();
    app.use((_req, res, next) => {
      res.locals.workspace = 'acme';
      next();
    });
    app.use(kit.observe());
    app.get('/things/:id', (_req, res) => {
      res.json({});
    });
    kit.mount(app);
    for (let i = 0; i < 4; i++) await request(app).get(`/things/${i}`);
    const m = await scrape(app);
    expect(sum(m, 'rediskit_http_requests_total', 'route="/things/:id"')).toBe(4);
    expect(sum(m, 'rediskit_http_request_duration_seconds_count', 'route="/things/:id"')).toBe(4);
    await kit.usage.flush();
    expect((await kit.usage.query({ workspace: 'acme' })).totals.routes).toMatchObject({ '/things/:id': 4 });
    expect(() => kit.observe({ metric: {} } as never)).toThrow(/Did you mean 'metrics'/);
    const onlyUsage = express();
    onlyUsage.use(kit.observe({ metrics: false }));
    onlyUsage.get('/u', (_req, res) => {
      res.end();
    });
    await request(onlyUsage).get('/u');
    expect(sum(await scrape(app), 'rediskit_http_requests_total', 'route="/u"')).toBe(0);
  });

  test('the route template is computed once for both hooks, and a custom label of one never reaches the other', async () => {
    // Counts the reads of req.route the kit's hooks make at finish (Express sets it once the route matched).
    const reads: number[] = [];
    const countRouteReads: express.RequestHandler = (req, res, next) => {
      let route = req.route;
      let n = 0;
      Object.defineProperty(req, 'route', {
        configurable: true,
        enumerable: true,
        get: () => {
          n++;
          return route;
        },
        set: (value) => {
          route = value;
        },
      });
      res.once('finish', () => setImmediate(() => reads.push(n)));
      next();
    };
    const withWorkspace =
      (workspace: string): express.RequestHandler =>
      (_req, res, next) => {
        res.locals.workspace = workspace;
        next();
      };
    const shared = express();
    shared.use(withWorkspace('labels0'), kit.observe());
    shared.get('/s/:id', countRouteReads, (_req, res) => {
      res.json({});
    });
    // A label of its own on either side, whichever hook runs first.
    const app = express();
    app.use(withWorkspace('labels'), kit.metrics({ route: () => 'custom-metrics' }), kit.usage());
    app.get('/a/:id', (_req, res) => {
      res.json({});
    });
    const other = express();
    other.use(withWorkspace('labels2'), kit.usage({ route: () => 'custom-usage' }), kit.metrics());
    other.get('/b/:id', (_req, res) => {
      res.json({});
    });
    kit.mount(app);
    for (let i = 0; i < 3; i++) {
      await request(shared).get(`/s/${i}`).expect(200);
      await request(app).get(`/a/${i}`).expect(200);
      await request(other).get(`/b/${i}`).expect(200);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(reads).toEqual([1, 1, 1]);
    const m = await scrape(app);
    expect(sum(m, 'rediskit_http_requests_total', 'route="/s/:id"')).toBe(3);
    expect(sum(m, 'rediskit_http_requests_total', 'route="custom-metrics"')).toBe(3);
    expect(sum(m, 'rediskit_http_requests_total', 'route="/b/:id"')).toBe(3);
    expect(sum(m, 'rediskit_http_requests_total', 'route="custom-usage"')).toBe(0);
    await kit.usage.flush();
    expect((await kit.usage.query({ workspace: 'labels0' })).totals.routes).toEqual({ '/s/:id': 3 });
    // (The scrape itself is counted too: the workspace middleware runs before the kit's routes.)
    const a = (await kit.usage.query({ workspace: 'labels' })).totals.routes;
    expect(a).toMatchObject({ '/a/:id': 3 });
    expect(a).not.toHaveProperty('custom-metrics');
    expect((await kit.usage.query({ workspace: 'labels2' })).totals.routes).toEqual({ 'custom-usage': 3 });
  });

  test('per-request state: in res.locals under a symbol (no property on the response), kept by a spread, lost by a replacement, a WeakMap without res.locals', async () => {
    const app = express();
    const ownKeys: string[][] = [];
    app.use(kit.metrics(), kit.usage());
    app.use((req, res, next) => {
      if (req.path === '/spread') res.locals = { ...res.locals, extra: 1 };
      if (req.path === '/replaced') res.locals = { user: 'x' };
      next();
    });
    app.get(['/plain', '/spread', '/replaced'], (_req, res) => {
      ownKeys.push(Object.getOwnPropertySymbols(res).map(String));
      ownKeys.push(Object.getOwnPropertySymbols(res.locals).map(String));
      res.json({});
    });
    kit.mount(app);
    for (const path of ['/plain', '/plain', '/spread', '/replaced']) await request(app).get(path);
    const m = await scrape(app);
    expect(sum(m, 'rediskit_http_requests_total', 'route="/plain,/spread,/replaced"')).toBe(3);
    // The response carries no symbol of ours; its res.locals carries one (and loses it when replaced).
    expect(ownKeys[0]).not.toContain('Symbol(rediskit finish state)');
    expect(ownKeys[1]).toEqual(['Symbol(rediskit finish state)']);
    expect(ownKeys[5]).toEqual(['Symbol(rediskit finish state)']);
    expect(ownKeys[7]).toEqual([]);
    // A response of a plain Node server (no res.locals): the WeakMap, and a 'finish' listener or the channel.
    const mw = kit.metrics();
    const server = (await import('node:http')).createServer((req, res) => {
      mw(req as never, res as never, () => {
        expect((res as { locals?: unknown }).locals).toBeUndefined();
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const before = sum(await scrape(app), 'rediskit_http_requests_total', 'route="unmatched"');
    await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/x`).then((r) => r.text());
    await new Promise<void>((resolve) => server.close(() => resolve()));
    expect(sum(await scrape(app), 'rediskit_http_requests_total', 'route="unmatched"')).toBe(before + 1);
  });

  test('maxRoutes caps templates from a parameterised mount path', async () => {
    const app = express();
    app.use(kit.metrics({ maxRoutes: 3 }));
    const tenant = express.Router();
    tenant.get('/x', (_req, res) => {
      res.end();
    });
    app.use('/t/:tenant', tenant);
    kit.mount(app);
    for (let i = 0; i < 10; i++) await request(app).get(`/t/${i}/x`);
    const routes = new Set<string>();
    for (const k of (await scrape(app)).keys()) {
      const m = /^rediskit_http_requests_total\{.*route="([^"]*)"/.exec(k);
      if (m) routes.add(m[1] as string);
    }
    // the three first mount values, then 'other' (the scrape itself is the 'other' of /api/v1/metrics)
    expect(routes.size).toBe(4);
    expect(routes.has('other')).toBe(true);
  });
});

describe('collectors: how other features plug in', () => {
  let kit: RedisKit;
  beforeEach(() => {
    kit = createRedisKit({ store: 'memory', env: {}, logger: false, admin: { token: TOKEN } });
  });
  afterEach(() => kit.close());

  test('a reserved name takes its type, help and labels from the table; samples are read at scrape time', async () => {
    const app = express();
    kit.mount(app);
    const stats = { hits: 3, misses: 1 };
    kit.metrics.collect({
      name: 'rediskit_cache_requests_total',
      collect: () => [
        { labels: { result: 'hit' }, value: stats.hits },
        { labels: { result: 'miss' }, value: stats.misses },
      ],
    });
    kit.metrics.collect({
      name: 'rediskit_semantic_cache_score',
      collect: () => [{ counts: [0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0], sum: 2.7, count: 3 }],
    });
    const res = await request(app).get('/api/v1/metrics').set(auth);
    expect(res.text).toContain(
      `# HELP rediskit_cache_requests_total ${RESERVED_METRICS.rediskit_cache_requests_total.help}`,
    );
    expect(res.text).toContain('# TYPE rediskit_cache_requests_total counter');
    let m = parse(res.text);
    expect(m.get('rediskit_cache_requests_total{result="hit"}')).toBe(3);
    expect(m.get('rediskit_semantic_cache_score_bucket{le="0.9"}')).toBe(1);
    expect(m.get('rediskit_semantic_cache_score_bucket{le="0.925"}')).toBe(3);
    expect(m.get('rediskit_semantic_cache_score_bucket{le="+Inf"}')).toBe(3);
    expect(m.get('rediskit_semantic_cache_score_count')).toBe(3);
    stats.hits = 10;
    m = parse((await request(app).get('/api/v1/metrics').set(auth)).text);
    expect(m.get('rediskit_cache_requests_total{result="hit"}')).toBe(10);
  });

  test('misuse is rejected with the fix; a failing collector does not fail the scrape', async () => {
    expect(() =>
      kit.metrics.collect({ name: 'rediskit_cache_requests_total', type: 'gauge', collect: () => [] }),
    ).toThrow(/reserved as a counter/);
    expect(() => kit.metrics.collect({ name: 'my_thing', collect: () => [] })).toThrow(/give it a type and a help/);
    expect(() => kit.metrics.collect({ name: 'bad name', type: 'gauge', help: 'x', collect: () => [] })).toThrow(
      /not a valid Prometheus metric name/,
    );
    expect(() => kit.metrics.collect({ name: 'rediskit_http_requests_total', collect: () => [] })).toThrow(
      /already registered/,
    );
    kit.metrics.collect({
      name: 'my_broken',
      type: 'gauge',
      help: 'broken on purpose',
      collect: () => {
        throw new Error('nope');
      },
    });
    const remove = kit.metrics.collect({
      name: 'my_queue_depth',
      type: 'gauge',
      help: 'depth',
      collect: () => [{ value: 4 }],
    });
    const app = express();
    kit.mount(app);
    let res = await request(app).get('/api/v1/metrics').set(auth);
    expect(res.status).toBe(200);
    expect(parse(res.text).get('my_queue_depth')).toBe(4);
    remove();
    res = await request(app).get('/api/v1/metrics').set(auth);
    expect(parse(res.text).has('my_queue_depth')).toBe(false);
  });
});

describeForEachStore('store metrics', (ctx) => {
  test('store command latency histogram moves with store traffic; usage flushes are counted', async () => {
    const kit = ctx.makeKit({ admin: { token: TOKEN } });
    const app = appFor(kit);
    app.use(kit.usage());
    await kit.ready();
    const before = await scrape(app);
    for (let i = 0; i < 5; i++) expect((await request(app).get(`/store/${i}`)).status).toBe(200);
    kit.usage.record({ workspace: 'w1', tokensUsed: 10 });
    await kit.usage.flush();
    const after = await scrape(app);
    if (ctx.tier === 'memory') {
      // in-process calls are not timed: no series rather than fake ones
      expect(sum(after, 'rediskit_store_command_duration_seconds_count')).toBe(0);
    } else {
      expect(
        sum(after, 'rediskit_store_command_duration_seconds_count', 'command="script:incr_ttl"', 'outcome="ok"') -
          sum(before, 'rediskit_store_command_duration_seconds_count', 'command="script:incr_ttl"', 'outcome="ok"'),
      ).toBe(5);
      expect(sum(after, 'rediskit_store_command_duration_seconds_count', 'command="pipeline"')).toBeGreaterThanOrEqual(
        1,
      );
    }
    expect(after.get('rediskit_usage_flushes_total{outcome="ok"}')).toBeGreaterThanOrEqual(1);
    expect(after.get('rediskit_usage_events_total')).toBe(0); // a token-only event adds no count
    expect(after.get('rediskit_usage_flush_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(after.get('rediskit_store_circuit_state{state="closed"}')).toBe(1);
  });

  test('the redis-metrics report: kit figures, and the server figures the store has (the rest marked)', async () => {
    const kit = ctx.makeKit({ admin: { token: TOKEN } });
    const app = appFor(kit);
    await kit.ready();
    for (let i = 0; i < 3; i++) await request(app).get(`/store/${i}`);
    const first = await request(app).get('/api/v1/admin/redis-metrics').set(auth);
    expect(first.status).toBe(200);
    const r = first.body;
    expect(r.store).toEqual(expect.objectContaining({ mode: kit.mode, circuit: 'closed' }));
    expect(r.kit.http.requests).toBeGreaterThanOrEqual(3);
    expect(r.kit.http.routes).toEqual(expect.arrayContaining([expect.objectContaining({ route: '/store/:id' })]));
    expect(r.kit.rateLimit).toBeNull(); // not wired here: null, not zero
    if (ctx.tier === 'memory') {
      expect(r.server.available).toBe(false);
      expect(r.server.unavailable).toEqual(expect.arrayContaining(['version', 'usedMemoryBytes', 'hitRatio']));
      expect(r.server.embedded.keys).toBeGreaterThanOrEqual(3);
    } else if (ctx.tier === 'ioredis-mock') {
      // ioredis-mock's INFO has few fields: whatever is missing is listed, never invented.
      expect(Array.isArray(r.server.unavailable)).toBe(true);
    } else {
      expect(r.server.available).toBe(true);
      expect(r.server.version).toMatch(/^\d+\.\d+/);
      expect(r.server.usedMemoryBytes).toBeGreaterThan(0);
      expect(r.server.uptimeSeconds).toBeGreaterThanOrEqual(0);
      expect(r.server.connectedClients).toBeGreaterThan(0);
      expect(r.server.commandStats).toEqual(expect.arrayContaining([expect.objectContaining({ command: 'evalsha' })]));
      expect(r.kit.store.latencyMs.p50).toBeGreaterThan(0);
      if (ctx.tier === 'cluster') expect(r.server.scope).toMatch(/one node/);
    }
    // A second report within the window has rates.
    await new Promise((res) => setTimeout(res, 1100));
    await request(app).get('/store/x');
    const second = (await request(app).get('/api/v1/admin/redis-metrics').set(auth)).body;
    expect(second.windowSeconds).toBeGreaterThan(0.5);
    expect(second.kit.http.requestsPerSecond).toBeGreaterThan(0);
  });
});
