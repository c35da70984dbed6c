// The demo app and openapi.yaml describe the same API: every registered route is documented, every documented
// path exists, responses match their schemas, and the document passes an OpenAPI linter.

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import request from 'supertest';
import { createDemoApp, type DemoApp } from '../../demo/app';
import { OPENAPI_PATH } from '../../demo/openapi';
import { expectMatchesSpec, listRoutes, listSpecOperations } from '../support/openapi';

const ADMIN = 'contract-test-admin-token';
let demo: DemoApp;

beforeAll(() => {
  demo = createDemoApp({ store: 'memory', logger: false, admin: { token: ADMIN } });
});

afterAll(() => demo.kit.close());

const key = (r: { method: string; path: string }) => `${r.method} ${r.path}`;

test('every route the demo registers is in openapi.yaml, and every documented operation exists', () => {
  const registered = new Set(listRoutes(demo.app).map(key));
  const documented = new Set(listSpecOperations().map(key));
  expect(registered.size).toBeGreaterThanOrEqual(4);
  expect([...registered].filter((r) => !documented.has(r)).sort()).toEqual([]);
  expect([...documented].filter((r) => !registered.has(r)).sort()).toEqual([]);
});

test.each([
  ['GET', '/', '/'],
  ['GET', '/openapi.json', '/openapi.json'],
  ['GET', '/api/v1/health', '/api/v1/health'],
  ['GET', '/api/v1/health/redis', '/api/v1/health/redis'],
])('%s %s answers as documented', async (method, url, specPath) => {
  const res = await request(demo.app)[method.toLowerCase() as 'get'](url);
  expect(res.status).toBeLessThan(500);
  expectMatchesSpec(method, specPath, res);
});

test.each([['/api/v1/metrics'], ['/api/v1/admin/redis-metrics']])(
  'GET %s refuses without the admin token and answers with it, as documented',
  async (path) => {
    const refused = await request(demo.app).get(path);
    expect(refused.status).toBe(401);
    expectMatchesSpec('GET', path, refused);
    const wrong = await request(demo.app).get(path).set('Authorization', 'Bearer nope');
    expect(wrong.status).toBe(401);
    const ok = await request(demo.app).get(path).set('Authorization', `Bearer ${ADMIN}`);
    expect(ok.status).toBe(200);
    expectMatchesSpec('GET', path, ok);
  },
);

test('GET /api/v1/admin/dashboard serves the page (it asks for the token itself)', async () => {
  const res = await request(demo.app).get('/api/v1/admin/dashboard');
  expect(res.status).toBe(200);
  expectMatchesSpec('GET', '/api/v1/admin/dashboard', res);
});

test('the schema check can fail: a body that breaks the schema is rejected', async () => {
  const res = await request(demo.app).get('/api/v1/health');
  const broken = { ...res, text: JSON.stringify({ status: 'great' }) } as typeof res;
  expect(() => expectMatchesSpec('GET', '/api/v1/health', broken)).toThrow(/does not match/);
  const undocumented = { ...res, status: 418 } as typeof res;
  expect(() => expectMatchesSpec('GET', '/api/v1/health', undocumented)).toThrow(/not documented/);
});

test('Swagger UI is served at /docs from local assets', async () => {
  const page = await request(demo.app).get('/docs/');
  expect(page.status).toBe(200);
  expect(page.text).toContain('swagger-ui');
  expect(page.text).not.toMatch(/https?:\/\/(cdn|unpkg|cdnjs)/);
  const init = await request(demo.app).get('/docs/swagger-ui-init.js');
  expect(init.status).toBe(200);
  expect(init.text).toContain('/api/v1/health/redis');
  const bundle = await request(demo.app).get('/docs/swagger-ui-bundle.js');
  expect(bundle.status).toBe(200);
});

test('openapi.yaml passes the Redocly linter (recommended rules) with no errors or warnings', () => {
  const lint = spawnSync('node', [join(__dirname, '..', 'support', 'lint-openapi.mjs'), OPENAPI_PATH], {
    encoding: 'utf8',
  });
  expect(lint.stdout.trim().split('\n').filter(Boolean)).toEqual([]);
  expect(lint.status).toBe(0);
});
