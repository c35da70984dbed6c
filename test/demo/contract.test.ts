// The demo app and openapi.yaml describe the same API: every registered route is documented, every documented
// path exists, responses match their schemas, and the document passes an OpenAPI linter.

import { spawnSync } from 'node:child_process';
import { get as httpGet } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import request from 'supertest';
import { createDemoApp, type DemoApp } from '../../demo/app';
import { OPENAPI_PATH } from '../../demo/openapi';
import { expectMatchesSpec, listRoutes, listSpecOperations } from '../support/openapi';

const ADMIN = 'contract-test-admin-token';
let demo: DemoApp;

beforeAll(() => {
  demo = createDemoApp({ store: 'memory', logger: false, admin: { token: ADMIN } }, { llmLatencyMs: [0, 0] });
});

afterAll(() => demo.kit.close());

const key = (r: { method: string; path: string }) => `${r.method} ${r.path}`;

test('every route the demo registers is in openapi.yaml, and every documented operation exists', () => {
  const registered = new Set(listRoutes(demo.app).map(key));
  const documented = new Set(listSpecOperations().map(key));
  expect(registered.size).toBeGreaterThanOrEqual(23);
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

test('the landing page names the demo accounts and links the docs and the dashboard', async () => {
  const page = await request(demo.app).get('/');
  expect(page.text).toContain('<code>alice</code> / <code>alice-password</code>');
  expect(page.text).toContain('<code>bob</code> / <code>bob-password</code>');
  expect(page.text).toContain('href="/docs"');
  expect(page.text).toContain('href="/api/v1/admin/dashboard"');
});

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

// ---- The demo's own routes: each one exercised with a realistic request, its answers checked against the spec ----

const exercised = new Set<string>();
const XFF = (n: number) => `198.51.100.${n}`;

/** Checks `res` against the spec and notes the operation as exercised; API routes must carry the limit fields. */
function check(method: string, specPath: string, res: request.Response, status?: number): request.Response {
  if (status !== undefined) expect({ status: res.status, body: res.text }).toMatchObject({ status });
  expectMatchesSpec(method, specPath, res);
  exercised.add(`${method} ${specPath}`);
  if (specPath.startsWith('/api/v1/') && !specPath.startsWith('/api/v1/health')) {
    expect(res.headers['ratelimit-policy']).toMatch(/^"api";q=\d+;w=60/);
    expect(res.headers.ratelimit).toMatch(/r=\d+;t=\d+/);
  }
  return res;
}

async function login(username: string, password: string, client = XFF(1)) {
  const agent = request.agent(demo.app);
  const res = await agent.post('/api/v1/auth/login').set('X-Forwarded-For', client).send({ username, password });
  return { agent, res };
}

describe('sessions', () => {
  test('login: 200 with a session cookie, 400 on bad input, 401 on a wrong password, never a 500', async () => {
    const { res } = await login('alice', 'alice-password');
    check('POST', '/api/v1/auth/login', res, 200);
    expect(res.body.user).toEqual({ id: 'alice', name: 'Alice', workspace: 'acme' });
    expect(String(res.headers['set-cookie'])).toMatch(/^rk\.sid=[^;]+; Path=\/; HttpOnly; SameSite=Lax/);

    const post = () => request(demo.app).post('/api/v1/auth/login').set('X-Forwarded-For', XFF(2));
    check('POST', '/api/v1/auth/login', await post().send({ username: 'alice' }), 400);
    check('POST', '/api/v1/auth/login', await post().send([1, 2]), 400);
    check('POST', '/api/v1/auth/login', await post().set('Content-Type', 'application/json').send('{"user'), 400);
    check('POST', '/api/v1/auth/login', await post().send({ username: 'alice', password: 'bob-password' }), 401);
    check('POST', '/api/v1/auth/login', await post().send({ username: 'mallory', password: 'x' }), 401);
    const huge = check(
      'POST',
      '/api/v1/auth/login',
      await post().send({ username: 'a', password: 'p'.repeat(5000) }),
      413,
    );
    expect(huge.body.title).toBe('Payload Too Large');
  });

  test('login is limited more strictly than the API: the 11th attempt in a minute is a 429 with Retry-After', async () => {
    const attempt = () =>
      request(demo.app)
        .post('/api/v1/auth/login')
        .set('X-Forwarded-For', XFF(3))
        .send({ username: 'bob', password: 'guess' });
    for (let i = 0; i < 10; i++) expect((await attempt()).status).toBe(401);
    const refused = await attempt();
    expectMatchesSpec('POST', '/api/v1/auth/login', refused);
    expect(refused.status).toBe(429);
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(refused.headers['ratelimit-policy']).toBe('"api";q=300;w=60, "login";q=10;w=60');
    expect(refused.headers.ratelimit).toMatch(/^"api";r=\d+;t=\d+, "login";r=0;t=\d+$/);
  });

  test('me, my sessions, revoke one, log out everywhere, log out', async () => {
    check('GET', '/api/v1/me', await request(demo.app).get('/api/v1/me'), 401);
    check('GET', '/api/v1/me/sessions', await request(demo.app).get('/api/v1/me/sessions'), 401);
    check('DELETE', '/api/v1/me/sessions', await request(demo.app).delete('/api/v1/me/sessions'), 401);
    check('DELETE', '/api/v1/me/sessions/{id}', await request(demo.app).delete('/api/v1/me/sessions/x'), 401);
    check('POST', '/api/v1/auth/logout', await request(demo.app).post('/api/v1/auth/logout'), 401);

    const laptop = await login('alice', 'alice-password');
    const phone = await login('alice', 'alice-password');
    const tablet = await login('alice', 'alice-password');
    const bob = await login('bob', 'bob-password');
    const me = check('GET', '/api/v1/me', await laptop.agent.get('/api/v1/me'), 200);
    expect(me.body.sessionId).toBe(laptop.res.body.sessionId);

    const list = check('GET', '/api/v1/me/sessions', await laptop.agent.get('/api/v1/me/sessions'), 200);
    const ids = (list.body.sessions as Array<{ id: string; current: boolean }>).map((s) => s.id);
    expect(ids).toEqual(expect.arrayContaining([laptop, phone, tablet].map((s) => s.res.body.sessionId)));
    expect(ids).not.toContain(bob.res.body.sessionId);
    expect(list.body.sessions.filter((s: { current: boolean }) => s.current)).toHaveLength(1);

    // Someone else's session is not found, not revoked.
    const other = await laptop.agent.delete(`/api/v1/me/sessions/${bob.res.body.sessionId}`);
    check('DELETE', '/api/v1/me/sessions/{id}', other, 404);
    check('GET', '/api/v1/me', await bob.agent.get('/api/v1/me'), 200);
    check('DELETE', '/api/v1/me/sessions/{id}', await laptop.agent.delete('/api/v1/me/sessions/not%20an%20id'), 400);

    const revoked = await laptop.agent.delete(`/api/v1/me/sessions/${phone.res.body.sessionId}`);
    check('DELETE', '/api/v1/me/sessions/{id}', revoked, 204);
    check('GET', '/api/v1/me', await phone.agent.get('/api/v1/me'), 401);

    const everywhere = await laptop.agent.delete('/api/v1/me/sessions?keepCurrent=true');
    check('DELETE', '/api/v1/me/sessions', everywhere, 200);
    // The tablet, and the session the login test made (laptop stays).
    expect(everywhere.body.revoked).toBeGreaterThanOrEqual(1);
    check('GET', '/api/v1/me', await tablet.agent.get('/api/v1/me'), 401);
    check('GET', '/api/v1/me', await laptop.agent.get('/api/v1/me'), 200);

    check('POST', '/api/v1/auth/logout', await laptop.agent.post('/api/v1/auth/logout'), 204);
    check('GET', '/api/v1/me', await laptop.agent.get('/api/v1/me'), 401);
    const all = check('DELETE', '/api/v1/me/sessions', await bob.agent.delete('/api/v1/me/sessions'), 200);
    expect(all.body.revoked).toBe(1);
  });
});

describe('catalogue (response cache)', () => {
  test('a list is cached, an update invalidates the products tag, a cookie-carrying request bypasses', async () => {
    const first = check('GET', '/api/v1/products', await request(demo.app).get('/api/v1/products'), 200);
    expect(first.headers['cache-status']).toMatch(/fwd=miss/);
    const second = check('GET', '/api/v1/products', await request(demo.app).get('/api/v1/products'), 200);
    expect(second.headers['cache-status']).toMatch(/; hit/);

    const item = check('GET', '/api/v1/products/{id}', await request(demo.app).get('/api/v1/products/grinder'), 200);
    expect(item.body).toMatchObject({ id: 'grinder', name: 'Burr grinder' });
    check('GET', '/api/v1/products/{id}', await request(demo.app).get('/api/v1/products/none'), 404);

    const anonymous = await request(demo.app).put('/api/v1/products/grinder').send({ name: 'x', price: 1 });
    check('PUT', '/api/v1/products/{id}', anonymous, 401);
    const editor = await login('alice', 'alice-password', XFF(6));
    const put = (id: string, body: unknown) => editor.agent.put(`/api/v1/products/${id}`).send(body as object);
    check('PUT', '/api/v1/products/{id}', await put('grinder', { name: 'Burr grinder, v2', price: 139 }), 200);
    check('PUT', '/api/v1/products/{id}', await put('scale', { name: 'Scale', price: 19 }), 201);
    check('PUT', '/api/v1/products/{id}', await put('grinder', { name: 'x', price: -1 }), 400);
    check('PUT', '/api/v1/products/{id}', await put('grinder', { price: 1 }), 400);
    check('PUT', '/api/v1/products/{id}', await put('Bad_Id', { name: 'x', price: 1 }), 400);

    const after = check('GET', '/api/v1/products', await request(demo.app).get('/api/v1/products'), 200);
    expect(after.headers['cache-status']).not.toMatch(/; hit/);
    expect(after.body.products.map((p: { name: string }) => p.name)).toContain('Burr grinder, v2');

    const { agent } = await login('bob', 'bob-password', XFF(4));
    const private_ = check('GET', '/api/v1/products', await agent.get('/api/v1/products'), 200);
    expect(private_.headers['cache-status']).toMatch(/bypass/);
  });

  test('over the API limit: 429 problem details with RateLimit, RateLimit-Policy and Retry-After', async () => {
    const small = createDemoApp({ store: 'memory', logger: false }, { apiLimit: 2 });
    try {
      for (let i = 0; i < 2; i++) expect((await request(small.app).get('/api/v1/products')).status).toBe(200);
      const refused = await request(small.app).get('/api/v1/products');
      expect(refused.status).toBe(429);
      expectMatchesSpec('GET', '/api/v1/products', refused);
      expect(refused.headers.ratelimit).toMatch(/"api";r=0;t=\d+/);
      expect(refused.headers['ratelimit-policy']).toBe('"api";q=2;w=60');
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      // Health probes are never limited.
      const health = await request(small.app).get('/api/v1/health');
      expect(health.status).toBe(200);
      expect(health.headers.ratelimit).toBeUndefined();
    } finally {
      await small.kit.close();
    }
  });
});

describe('llm, locks, jobs, usage', () => {
  test('POST /api/v1/llm/chat: a miss, then a hit for the same question; 400 on a bad body', async () => {
    const ask = (content: string) =>
      request(demo.app)
        .post('/api/v1/llm/chat')
        .send({ model: 'demo-model', messages: [{ role: 'user', content }] });
    const miss = check('POST', '/api/v1/llm/chat', await ask('How do I reset my password?'), 200);
    expect(miss.headers['x-llm-cache']).toBe('miss');
    const hit = check('POST', '/api/v1/llm/chat', await ask('How do I reset my password?'), 200);
    expect(hit.headers['x-llm-cache']).toBe('hit');
    expect(hit.body.choices).toEqual(miss.body.choices);
    check('POST', '/api/v1/llm/chat', await request(demo.app).post('/api/v1/llm/chat').send({ model: 3 }), 400);
    const badJson = await request(demo.app).post('/api/v1/llm/chat').set('Content-Type', 'application/json').send('{');
    check('POST', '/api/v1/llm/chat', badJson, 400);
  });

  test('reports run once under a lock; documents take only newer fencing tokens', async () => {
    const gen = () => request(demo.app).post('/api/v1/reports/q3/generate');
    const [a, b] = await Promise.all([gen(), gen()]);
    check('POST', '/api/v1/reports/{id}/generate', a!, 200);
    check('POST', '/api/v1/reports/{id}/generate', b!, 200);
    expect([a!.body.runs, b!.body.runs]).toEqual([1, 1]);
    check('POST', '/api/v1/reports/{id}/generate', await request(demo.app).post('/api/v1/reports/a.b/generate'), 400);

    check('GET', '/api/v1/documents/{id}', await request(demo.app).get('/api/v1/documents/notes'), 404);
    check('GET', '/api/v1/documents/{id}', await request(demo.app).get('/api/v1/documents/a.b'), 400);
    const write = (token: string, content: unknown) =>
      request(demo.app).put('/api/v1/documents/notes').set('Fencing-Token', token).send({ content });
    check('PUT', '/api/v1/documents/{id}', await write('7', 'draft 1'), 200);
    const stale = check('PUT', '/api/v1/documents/{id}', await write('6', 'late'), 409);
    expect(stale.body.lastFencingToken).toBe(7);
    check('PUT', '/api/v1/documents/{id}', await write('x', 'draft'), 400);
    check('PUT', '/api/v1/documents/{id}', await write('8', 42), 400);
    const read = check('GET', '/api/v1/documents/{id}', await request(demo.app).get('/api/v1/documents/notes'), 200);
    expect(read.body).toMatchObject({ content: 'draft 1', fencingToken: 7 });
  });

  test('jobs: 202 with a Location, then the job; 400 and 404 on bad input', async () => {
    const added = await request(demo.app)
      .post('/api/v1/jobs')
      .set('Idempotency-Key', 'signup-alice')
      .send({ type: 'welcome-email', to: 'alice@example.com', name: 'Alice' });
    check('POST', '/api/v1/jobs', added, 202);
    expect(added.headers.location).toBe('/api/v1/jobs/signup-alice');
    const job = check('GET', '/api/v1/jobs/{id}', await request(demo.app).get(added.headers.location!), 200);
    expect(job.body).toMatchObject({ id: 'signup-alice', type: 'welcome-email' });
    check('POST', '/api/v1/jobs', await request(demo.app).post('/api/v1/jobs').send({ type: 'sms', to: 'x' }), 400);
    check('GET', '/api/v1/jobs/{id}', await request(demo.app).get('/api/v1/jobs/nope'), 404);
    check('GET', '/api/v1/jobs/{id}', await request(demo.app).get('/api/v1/jobs/a%20b'), 400);
  });

  test("usage: the logged-in user's workspace, 400 on a bad granularity, 401 when logged out", async () => {
    check('GET', '/api/v1/usage', await request(demo.app).get('/api/v1/usage'), 401);
    const { agent } = await login('bob', 'bob-password', XFF(5));
    await agent.get('/api/v1/me');
    const report = check('GET', '/api/v1/usage', await agent.get('/api/v1/usage?granularity=day'), 200);
    expect(report.body).toMatchObject({ workspace: 'globex', granularity: 'day' });
    check('GET', '/api/v1/usage', await agent.get('/api/v1/usage?granularity=year'), 400);
    check('GET', '/api/v1/usage', await agent.get('/api/v1/usage?from=yesterday'), 400);
  });

  test('an unknown API path is a problem-details 404', async () => {
    const res = await request(demo.app).get('/api/v1/nothing-here');
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  });
});

test("with the store unreachable, login answers the session feature's 503 at once (no hang, no 500)", async () => {
  const down = createDemoApp(
    { redis: 'redis://127.0.0.1:1', env: {}, logger: false, commandTimeout: 300, connectTimeout: 300 },
    { llmLatencyMs: [0, 0] },
  );
  try {
    const res = await request(down.app)
      .post('/api/v1/auth/login')
      .send({ username: 'alice', password: 'alice-password' });
    check('POST', '/api/v1/auth/login', res, 503);
    expect(res.body.error.code).toBe('ERR_KIT_SESSION_STORE_UNAVAILABLE');
    expect(res.headers['retry-after']).toBe('1');
    // The API limiter falls back to local counting: the answer still says where the client stands.
    expect(res.headers['ratelimit-policy']).toContain('"login";q=10;w=60');
  } finally {
    await down.kit.close();
  }
});

test('realtime: the demo page and its scripts', async () => {
  check('GET', '/realtime', await request(demo.app).get('/realtime'), 200);
  const client = check('GET', '/realtime/client.js', await request(demo.app).get('/realtime/client.js'), 200);
  expect(client.text).toContain('export');
  check('GET', '/realtime/app.js', await request(demo.app).get('/realtime/app.js'), 200);
});

test('realtime: publish, presence and the stream, with their refusals', async () => {
  const api = '/api/v1/realtime';
  const xff = XFF(40);
  const published = check(
    'POST',
    '/api/v1/realtime/{channel}',
    await request(demo.app)
      .post(`${api}/demo:contract`)
      .set('X-Forwarded-For', xff)
      .send({ type: 'message', data: { text: 'hi' } }),
    201,
  );
  expect(published.body.id).toEqual(expect.any(String));
  check(
    'POST',
    '/api/v1/realtime/{channel}',
    await request(demo.app).post(`${api}/private`).set('X-Forwarded-For', xff).send({ data: 1 }),
    403,
  );
  check(
    'POST',
    '/api/v1/realtime/{channel}',
    await request(demo.app)
      .post(`${api}/demo:contract`)
      .set('X-Forwarded-For', xff)
      .set('Content-Type', 'application/json')
      .send('{"broken'),
    400,
  );

  check(
    'POST',
    '/api/v1/realtime/{channel}/presence',
    await request(demo.app)
      .post(`${api}/demo:contract/presence`)
      .set('X-Forwarded-For', xff)
      .send({ member: 'alice', meta: { name: 'Alice' } }),
    200,
  );
  check(
    'POST',
    '/api/v1/realtime/{channel}/presence',
    await request(demo.app).post(`${api}/demo:contract/presence`).set('X-Forwarded-For', xff).send({}),
    400,
  );
  const listed = check(
    'GET',
    '/api/v1/realtime/{channel}/presence',
    await request(demo.app).get(`${api}/demo:contract/presence`).set('X-Forwarded-For', xff),
    200,
  );
  expect(JSON.stringify(listed.body.members)).toContain('alice');
  check(
    'GET',
    '/api/v1/realtime/{channel}/presence',
    await request(demo.app).get(`${api}/private/presence`).set('X-Forwarded-For', xff),
    403,
  );
  check(
    'DELETE',
    '/api/v1/realtime/{channel}/presence',
    await request(demo.app)
      .delete(`${api}/demo:contract/presence`)
      .set('X-Forwarded-For', xff)
      .send({ member: 'alice' }),
    200,
  );
  check(
    'DELETE',
    '/api/v1/realtime/{channel}/presence',
    await request(demo.app).delete(`${api}/private/presence`).set('X-Forwarded-For', xff).send({ member: 'alice' }),
    403,
  );

  check(
    'GET',
    '/api/v1/realtime/{channel}',
    await request(demo.app).get(`${api}/private`).set('X-Forwarded-For', xff),
    403,
  );
  // The stream never ends by itself: read its head and the replayed event, then hang up.
  const server = demo.app.listen(0, '127.0.0.1');
  try {
    await new Promise((r) => server.once('listening', r));
    const { port } = server.address() as AddressInfo;
    const head = await new Promise<{ status: number; headers: Record<string, unknown>; text: string }>(
      (resolve, reject) => {
        const req = httpGet(
          {
            host: '127.0.0.1',
            port,
            path: `${api}/demo:contract`,
            headers: { 'Last-Event-ID': '0', 'X-Forwarded-For': xff },
          },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => {
              text += chunk;
              if (text.includes('"hi"')) {
                req.destroy();
                resolve({ status: res.statusCode ?? 0, headers: res.headers, text });
              }
            });
          },
        );
        req.on('error', (error) => (req.destroyed ? undefined : reject(error)));
        setTimeout(() => reject(new Error('no replayed event on the stream within 5 s')), 5000).unref();
      },
    );
    expect(head.text).toMatch(/^id: /m);
    check(
      'GET',
      '/api/v1/realtime/{channel}',
      { status: head.status, headers: head.headers, text: head.text } as unknown as request.Response,
      200,
    );
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test('every documented operation was exercised by this file', () => {
  const earlier = ['GET /', 'GET /openapi.json', 'GET /api/v1/health', 'GET /api/v1/health/redis'];
  const admin = ['GET /api/v1/metrics', 'GET /api/v1/admin/redis-metrics', 'GET /api/v1/admin/dashboard'];
  const covered = new Set([...exercised, ...earlier, ...admin]);
  expect(
    listSpecOperations()
      .map(key)
      .filter((op) => !covered.has(op)),
  ).toEqual([]);
});
