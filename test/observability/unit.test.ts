// Small pure pieces of the observability code: quantile estimation, INFO parsing, command labels, the histogram
// and counter series caps that keep label sets bounded.

import { httpMetricsHook } from '../../plugin/observability/http';
import { MAX_SERIES, MetricsRegistry, quantile } from '../../plugin/observability/metrics';
import { parseInfo } from '../../plugin/observability/redis-metrics';
import { commandLabel } from '../../plugin/observability/setup';

test('quantile interpolates inside the bucket holding the rank, like histogram_quantile', () => {
  const bounds = [0.001, 0.01, 0.1, 1];
  // 10 observations ≤ 1 ms, 80 in (1, 10] ms, 10 in (10, 100] ms
  const counts = [10, 80, 10, 0, 0];
  expect(quantile(bounds, counts, 0.5)).toBeCloseTo(0.001 + 0.009 * (40 / 80), 6);
  expect(quantile(bounds, counts, 0.99)).toBeCloseTo(0.01 + 0.09 * (9 / 10), 6);
  expect(quantile(bounds, [0, 0, 0, 0, 0], 0.5)).toBeNull();
  // Everything above the last bound: the last bound is the best estimate (as Prometheus does).
  expect(quantile(bounds, [0, 0, 0, 0, 5], 0.5)).toBe(1);
});

test('parseInfo reads fields and commandstats lines', () => {
  const info = parseInfo(
    '# Server\r\nredis_version:7.2.4\r\nuptime_in_seconds:42\r\n\r\n# Commandstats\r\ncmdstat_get:calls=10,usec=20,usec_per_call=2.00,rejected_calls=0,failed_calls=0\r\n',
  );
  expect(info.redis_version).toBe('7.2.4');
  expect(info.uptime_in_seconds).toBe('42');
  expect(info.cmdstat_get).toMatch(/^calls=10,/);
});

test('command labels never carry a channel name or an unbounded string', () => {
  expect(commandLabel('GET')).toBe('GET');
  expect(commandLabel('script incr_ttl')).toBe('script:incr_ttl');
  expect(commandLabel('SUBSCRIBE rk:realtime:ch:user-123')).toBe('SUBSCRIBE');
  expect(commandLabel('X'.repeat(100))).toBe('other');
});

test('a metric keeps at most MAX_SERIES label sets; later ones are counted under other', () => {
  const registry = new MetricsRegistry();
  const c = registry.counter('t_total', 'test', ['id']);
  const h = registry.histogram('t_seconds', 'test', ['id'], [0.1, 1]);
  for (let i = 0; i < MAX_SERIES + 500; i++) {
    c.inc([`id-${i}`]);
    h.observe([`id-${i}`], 0.5);
  }
  const samples = c.samples();
  expect(samples).toHaveLength(MAX_SERIES + 1);
  expect(samples.find((s) => s.labels?.id === 'other')?.value).toBe(500);
  expect(h.samples()).toHaveLength(MAX_SERIES + 1);
  expect(h.samples().reduce((n, s) => n + s.count, 0)).toBe(MAX_SERIES + 500);
});

test('a response that no Node HTTP server finishes (a test double, a serverless adapter) is still counted', async () => {
  const { EventEmitter } = await import('node:events');
  const { createRedisKit } = await import('../../plugin/index');
  const kit = createRedisKit({ store: 'memory', env: {}, logger: false });
  try {
    const metrics = kit.metrics();
    const usage = kit.usage();
    const req = { method: 'GET', baseUrl: '', route: { path: '/fake/:id' } };
    const res = Object.assign(new EventEmitter(), { statusCode: 204, locals: { workspace: 'w' }, req });
    metrics(req as never, res as never, () => undefined);
    usage(req as never, res as never, () => undefined);
    res.emit('finish');
    const snap = await kit.metrics.snapshot();
    expect(snap.rediskit_http_requests_total?.samples).toEqual([
      { labels: { method: 'GET', route: '/fake/:id', status: '204' }, value: 1 },
    ]);
    await kit.usage.flush();
    expect((await kit.usage.query({ workspace: 'w' })).totals.routes).toEqual({ '/fake/:id': 1 });
  } finally {
    await kit.close();
  }
});

test('usage of a response without res.locals: counted under default, or under what res.locals holds at the finish', async () => {
  const { EventEmitter } = await import('node:events');
  const { createRedisKit } = await import('../../plugin/index');
  const kit = createRedisKit({ store: 'memory', env: {}, logger: false });
  try {
    const usage = kit.usage();
    const req = { method: 'GET', baseUrl: '', route: { path: '/bare' } };
    // None at all (the old defaults threw here, inside the finish hook).
    const none = Object.assign(new EventEmitter(), { statusCode: 200, req });
    usage(req as never, none as never, () => undefined);
    none.emit('finish');
    // None when the middleware ran, one by the time the response finished: its values count.
    const later = Object.assign(new EventEmitter(), { statusCode: 200, req }) as InstanceType<typeof EventEmitter> & {
      locals?: Record<string, unknown>;
    };
    usage(req as never, later as never, () => undefined);
    later.locals = { workspace: 'late', userId: 'u9', feature: 'f9' };
    later.emit('finish');
    await kit.usage.flush();
    expect((await kit.usage.query({ workspace: 'default' })).totals).toMatchObject({
      requests: 1,
      routes: { '/bare': 1 },
    });
    expect((await kit.usage.query({ workspace: 'late' })).totals).toMatchObject({
      requests: 1,
      users: { u9: 1 },
      features: { f9: 1 },
    });
  } finally {
    await kit.close();
  }
});

test('request metrics logged before folding: every response is in the next read, past the log size too', async () => {
  const { EventEmitter } = await import('node:events');
  const { createRedisKit } = await import('../../plugin/index');
  const kit = createRedisKit({ store: 'memory', env: {}, logger: false });
  try {
    let fail = false;
    const metrics = kit.metrics({
      route: (req) => {
        if (fail) throw new Error('a route label function that fails');
        return (req as unknown as { route: { path: string } }).route.path;
      },
    });
    const finish = (status: number) => {
      const req = { method: 'GET', baseUrl: '', route: { path: '/r' } };
      const res = Object.assign(new EventEmitter(), { statusCode: status, locals: {}, req });
      metrics(req as never, res as never, () => undefined);
      res.emit('finish');
    };
    const count = async () => {
      const snap = await kit.metrics.snapshot();
      const byStatus: Record<string, number> = {};
      for (const s of snap.rediskit_http_requests_total?.samples ?? []) {
        if ('value' in s) byStatus[s.labels?.status ?? '?'] = s.value;
      }
      const histogram = snap.rediskit_http_request_duration_seconds?.samples[0];
      return { byStatus, observed: histogram && 'count' in histogram ? histogram.count : 0 };
    };
    finish(200);
    expect(await count()).toEqual({ byStatus: { '200': 1 }, observed: 1 });
    // 1,300 more: the log (512) fills and is folded twice before the read folds the rest.
    for (let i = 0; i < 1_300; i++) finish(i % 4 === 0 ? 404 : 200);
    // A label function that throws leaves what was logged as it was.
    fail = true;
    expect(() => finish(500)).toThrow(/fails/);
    fail = false;
    expect(await count()).toEqual({ byStatus: { '200': 976, '404': 325 }, observed: 1_301 });
  } finally {
    await kit.close();
  }
});

test('a request-metrics log is registered for reads only while it holds entries; labels of other types are kept as text', async () => {
  const registry = new MetricsRegistry();
  const requests = registry.counter('rediskit_http_requests_total');
  const duration = registry.histogram('rediskit_http_request_duration_seconds');
  const readers = new Set<() => void>();
  let label: unknown = '/a';
  const hook = httpMetricsHook(
    requests,
    duration,
    { maxRoutes: 10, route: () => label as string },
    {
      beforeRead: (fold) => {
        readers.add(fold);
      },
      offBeforeRead: (fold) => {
        readers.delete(fold);
      },
    },
  );
  const finish = () => hook({ method: 'GET' } as never, { statusCode: 200 } as never, { started: 0 } as never);
  finish();
  expect(readers.size).toBe(1);
  label = 42; // a custom label function returning a number: logged as '42', the fold of the others still runs
  finish();
  for (const fold of readers) fold();
  // Folded: the registry need not keep this middleware (a discarded one is then collected).
  expect(readers.size).toBe(0);
  expect(requests.samples().map((s) => [s.labels?.route, s.value])).toEqual([
    ['/a', 1],
    ['42', 1],
  ]);
});
