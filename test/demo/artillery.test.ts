// The artillery load scenarios stay runnable without running them (artillery itself is not installed for the
// tests): every file parses, asks only for routes the demo registers and openapi.yaml documents, names only processor
// functions that exist, sets only demo knobs the demo reads, and encodes the seed's targets in `ensure`. The demo's
// load-test additions (numbered catalogue ids, DEMO_* settings) and the processor's Zipf sampling are checked here too.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { parse } from 'yaml';
import { createDemoApp, type DemoApp, demoOptionsFromEnv } from '../../demo/app';
import { expectMatchesSpec, listRoutes, listSpecOperations } from '../support/openapi';

const dir = join(__dirname, '..', '..', 'artillery');
const processor = require(join(dir, 'processor.cjs')) as Record<string, unknown> & {
  zipfSampler(n: number, s: number, random?: () => number): () => number;
  expectedTtlHitRatio(n: number, s: number, rate: number, ttl: number): number;
  cacheOutcome(header: string | undefined): string;
};
const files = readdirSync(join(dir, 'scenarios')).filter((f) => f.endsWith('.yml'));

interface Step {
  method: string;
  url: string;
  hooks: string[];
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete', 'head'];

/** Every request of a flow, in loops and parallel blocks too, with the processor functions it names. */
function requests(flow: unknown[], out: Step[] = [], functions: string[] = []): { steps: Step[]; functions: string[] } {
  for (const raw of flow) {
    const step = raw as Record<string, unknown>;
    for (const method of METHODS) {
      const spec = step[method];
      if (spec === undefined) continue;
      const s = (typeof spec === 'string' ? { url: spec } : spec) as Record<string, unknown>;
      const hooks = [s.beforeRequest, s.afterResponse].flat().filter((h): h is string => typeof h === 'string');
      out.push({ method: method.toUpperCase(), url: String(s.url), hooks });
    }
    if (typeof step.function === 'string') functions.push(step.function);
    if (Array.isArray(step.loop)) requests(step.loop, out, functions);
    if (Array.isArray(step.parallel)) requests(step.parallel, out, functions);
  }
  return { steps: out, functions };
}

/** Whether a scenario URL (`/api/v1/products/{{ productId }}?x=1`) is an instance of a route template. */
function matches(url: string, template: string): boolean {
  const path = url.split('?')[0] as string;
  const a = path.replace(/\{\{\s*[^}]+\}\}/g, '{}').split('/');
  const b = template.split('/');
  return a.length === b.length && a.every((seg, i) => /^\{[^}]+\}$/.test(b[i] as string) || seg === b[i]);
}

function unknownRoutes(steps: Step[], routes: Array<{ method: string; path: string }>): string[] {
  return steps
    .filter((s) => !routes.some((r) => r.method === s.method && matches(s.url, r.path)))
    .map((s) => `${s.method} ${s.url}`);
}

let demo: DemoApp;
let registered: Array<{ method: string; path: string }>;
const documented = listSpecOperations();

beforeAll(() => {
  demo = createDemoApp({ store: 'memory', logger: false }, { llmLatencyMs: [0, 0], catalogueSize: 50 });
  registered = listRoutes(demo.app);
});
afterAll(() => demo.kit.close());

test('there is a scenario for each feature the load tests cover, and run.mjs finds them', () => {
  expect(files.sort()).toEqual(
    ['cache.yml', 'locks.yml', 'mixed.yml', 'rate-limit.yml', 'semantic.yml', 'sessions.yml'].sort(),
  );
  const root = JSON.parse(readFileSync(join(dir, '..', 'package.json'), 'utf8'));
  expect(root.scripts.load).toBe('node artillery/run.mjs');
  const own = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  expect(Object.keys(own.dependencies)).toEqual(['artillery']);
  // run.mjs installs with `npm ci --prefix artillery`, which needs the lock file, pinned to the same version.
  const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8'));
  expect(lock.packages['node_modules/artillery'].version).toBe(own.dependencies.artillery);
});

test('the route check can fail: an unknown path or a wrong method is reported', () => {
  const steps: Step[] = [
    { method: 'GET', url: '/api/v1/products/{{ id }}', hooks: [] },
    { method: 'GET', url: '/api/v1/prodcts/{{ id }}', hooks: [] },
    { method: 'DELETE', url: '/api/v1/products/{{ id }}', hooks: [] },
    { method: 'GET', url: '/api/v1/products/{{ a }}/{{ b }}', hooks: [] },
  ];
  expect(unknownRoutes(steps, documented)).toEqual([
    'GET /api/v1/prodcts/{{ id }}',
    'DELETE /api/v1/products/{{ id }}',
    'GET /api/v1/products/{{ a }}/{{ b }}',
  ]);
});

describe.each(files)('%s', (file) => {
  const script = parse(readFileSync(join(dir, 'scenarios', file), 'utf8')) as {
    config: {
      processor: string;
      phases: Array<{ duration: number; arrivalRate?: number; arrivalCount?: number }>;
      variables?: Record<string, unknown>;
      ensure: { thresholds: Array<Record<string, number>>; conditions: Array<{ expression: string }> };
      plugins?: Record<string, unknown>;
    };
    scenarios: Array<{
      name: string;
      flow: unknown[];
      beforeScenario?: string | string[];
      beforeRequest?: string | string[];
      afterResponse?: string | string[];
    }>;
  };
  const all = script.scenarios.map((s) => ({ scenario: s, ...requests(s.flow) }));

  test('has bounded phases and uses the shared processor', () => {
    expect(script.config.processor).toBe('../processor.cjs');
    expect(script.config.phases.length).toBeGreaterThan(0);
    const seconds = script.config.phases.reduce((sum, p) => sum + p.duration, 0);
    expect(seconds).toBeGreaterThan(0);
    expect(seconds).toBeLessThanOrEqual(120);
    expect(all.every((s) => s.steps.length > 0)).toBe(true);
  });

  test('asks only for routes the demo registers and openapi.yaml documents', () => {
    const steps = all.flatMap((s) => s.steps);
    expect(unknownRoutes(steps, registered)).toEqual([]);
    expect(unknownRoutes(steps, documented)).toEqual([]);
  });

  test('names only processor functions that exist', () => {
    const names = all.flatMap(({ scenario, steps, functions }) => [
      ...functions,
      ...steps.flatMap((s) => s.hooks),
      ...[scenario.beforeScenario, scenario.beforeRequest, scenario.afterResponse].flat(),
    ]);
    const missing = names.filter((n): n is string => typeof n === 'string' && typeof processor[n] !== 'function');
    expect(missing).toEqual([]);
    // Every user is a client of its own, and every answer is counted (5xx, 429, rate-limit headers).
    for (const { scenario } of all) {
      expect([scenario.beforeScenario].flat()).toContain('startUser');
      expect(scenario.beforeRequest).toBe('sendAsClient');
      expect(scenario.afterResponse).toBe('countResponse');
    }
  });

  test('sets only demo settings that the demo reads', () => {
    const demoVars = Object.entries(script.config.variables ?? {}).filter(([k]) => /^demo[A-Z]/.test(k));
    const env = Object.fromEntries(
      demoVars.map(([k, v]) => [
        `DEMO_${k
          .slice(4)
          .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
          .toUpperCase()}`,
        String(v),
      ]),
    );
    const options = demoOptionsFromEnv(env);
    expect(Object.keys(options).length).toBe(demoVars.length);
  });

  test("encodes the seed's targets in ensure: p95 < 200 ms, no 5xx, no failed users", () => {
    expect(script.config.plugins).toHaveProperty('ensure');
    expect(script.config.ensure.thresholds).toContainEqual({ 'http.response_time.p95': 200 });
    const conditions = script.config.ensure.conditions.map((c) => c.expression);
    expect(conditions).toContain('responses.5xx == 0');
    expect(conditions).toContain('vusers.failed == 0');
    if (file === 'rate-limit.yml') {
      expect(conditions).toContain('responses.429 / http.responses >= 0.30 and responses.429 / http.responses <= 0.37');
      // 30 requests per client against the limit: the expected share of 429s is (30 - limit) / 30.
      expect((30 - Number(script.config.variables?.demoApiLimit)) / 30).toBeCloseTo(1 / 3, 5);
    }
    if (file === 'cache.yml') {
      expect(conditions).toContain(
        'cache.measured.hit / (cache.measured.hit + cache.measured.miss + cache.measured.other) > 0.85',
      );
      const warm = script.config.phases[0];
      expect(warm?.duration).toBe(script.config.variables?.warmSeconds);
      // The warm-up lasts at least one ttl, so the measured phase sees entries expire and refill.
      expect(Number(script.config.variables?.warmSeconds)).toBeGreaterThanOrEqual(
        Number(script.config.variables?.ttlSeconds),
      );
    }
  });
});

describe('processor', () => {
  // A fixed sequence instead of Math.random, so the figures below are exact.
  const lcg = (seed: number) => () => {
    seed = (seed * 1664525 + 1013904223) % 4294967296;
    return seed / 4294967296;
  };

  test('zipfSampler draws ranks 1..n with P(k) proportional to 1/k^s', () => {
    const n = 100;
    const draw = processor.zipfSampler(n, 1, lcg(7));
    const counts = new Array<number>(n + 1).fill(0);
    const draws = 200_000;
    for (let i = 0; i < draws; i++) counts[draw()]! += 1;
    let harmonic = 0;
    for (let k = 1; k <= n; k++) harmonic += 1 / k;
    expect(counts[0]).toBe(0);
    for (const k of [1, 2, 10, 100]) {
      expect(counts[k]! / draws).toBeCloseTo(1 / k / harmonic, 2);
    }
    const uniform = processor.zipfSampler(4, 0, lcg(3));
    const seen = new Set(Array.from({ length: 200 }, () => uniform()));
    expect([...seen].sort()).toEqual([1, 2, 3, 4]);
    expect(() => processor.zipfSampler(0, 1)).toThrow(RangeError);
  });

  test('expectedTtlHitRatio follows the TTL-cache model', () => {
    // One key: hits are lambda*T / (1 + lambda*T).
    expect(processor.expectedTtlHitRatio(1, 1, 10, 30)).toBeCloseTo(300 / 301, 10);
    const low = processor.expectedTtlHitRatio(1000, 1, 50, 30);
    const high = processor.expectedTtlHitRatio(1000, 1, 200, 30);
    expect(low).toBeLessThan(high);
    expect(processor.expectedTtlHitRatio(1000, 1, 150, 30)).toBeGreaterThan(0.85);
  });

  test('cacheOutcome reads RFC 9211 Cache-Status values', () => {
    expect(processor.cacheOutcome('express-redis-kit; hit')).toBe('hit');
    expect(processor.cacheOutcome('express-redis-kit; hit; detail=memory')).toBe('hit');
    expect(processor.cacheOutcome('express-redis-kit; fwd=miss; stored')).toBe('miss');
    expect(processor.cacheOutcome('express-redis-kit; fwd=miss; collapsed')).toBe('collapsed');
    expect(processor.cacheOutcome('express-redis-kit; fwd=bypass; detail=session-cookie')).toBe('bypass');
    expect(processor.cacheOutcome(undefined)).toBe('none');
  });
});

describe('demo settings for load tests', () => {
  test('numbered catalogue ids 1..catalogueSize are served and cached; others are 404', async () => {
    const first = await request(demo.app).get('/api/v1/products/17');
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ id: '17', name: 'Catalogue item 17' });
    expectMatchesSpec('GET', '/api/v1/products/{id}', first);
    const again = await request(demo.app).get('/api/v1/products/17');
    expect(again.headers['cache-status']).toMatch(/; hit/);
    expect(again.body).toEqual(first.body);
    for (const id of ['51', '0', '017']) {
      const missing = await request(demo.app).get(`/api/v1/products/${id}`);
      expect(missing.status).toBe(404);
    }
    // Numbered items are not listed: the list stays the named products.
    const list = await request(demo.app).get('/api/v1/products');
    expect(list.body.products.map((p: { id: string }) => p.id)).not.toContain('17');
  });

  test('updating a numbered item answers 200 (it exists), a new id 201', async () => {
    const agent = request.agent(demo.app);
    await agent.post('/api/v1/auth/login').send({ username: 'alice', password: 'alice-password' }).expect(200);
    expect((await agent.put('/api/v1/products/5').send({ name: 'Five', price: 5 })).status).toBe(200);
    expect((await agent.put('/api/v1/products/tripod').send({ name: 'Tripod', price: 30 })).status).toBe(201);
    expect((await request(demo.app).get('/api/v1/products/5')).body.name).toBe('Five');
  });

  test('demoOptionsFromEnv reads the DEMO_* variables and rejects bad values', () => {
    expect(demoOptionsFromEnv({})).toEqual({});
    expect(
      demoOptionsFromEnv({
        DEMO_API_LIMIT: '20',
        DEMO_LOGIN_LIMIT: '5',
        DEMO_CATALOGUE_SIZE: '1000',
        DEMO_CATALOGUE_MS: '20',
        DEMO_REPORT_MS: '50',
        DEMO_LLM_LATENCY_MS: '20,60',
      }),
    ).toEqual({
      apiLimit: 20,
      loginLimit: 5,
      catalogueSize: 1000,
      catalogueLatencyMs: 20,
      reportMs: 50,
      llmLatencyMs: [20, 60],
    });
    expect(demoOptionsFromEnv({ DEMO_LLM_LATENCY_MS: '30' }).llmLatencyMs).toEqual([30, 30]);
    expect(() => demoOptionsFromEnv({ DEMO_API_LIMIT: '0' })).toThrow(/DEMO_API_LIMIT/);
    expect(() => demoOptionsFromEnv({ DEMO_REPORT_MS: 'soon' })).toThrow(/DEMO_REPORT_MS/);
    expect(() => demoOptionsFromEnv({ DEMO_LLM_LATENCY_MS: '60,20' })).toThrow(/DEMO_LLM_LATENCY_MS/);
  });
});
