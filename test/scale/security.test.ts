// Security checks across the kit and the demo: admin routes locked by default, no secret in any log line, the
// response cache never handing one user's private answer to another, and no session fixation.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import express from 'express';
import request from 'supertest';
import { createDemoApp } from '../../demo/app';
import { createRedisKit, type Logger, type RedisKit, type RedisKitOptions } from '../../plugin/index';
import { sign } from '../../plugin/session/options';
import { listRoutes } from '../support/openapi';
import { freePort, type RedisProcess, startRedis } from '../support/redis-server';
import { describeWithRedis } from '../support/require-redis';
import { describeForEachStore } from '../support/stores';
import { startUpstashEmulator, type UpstashEmulator } from '../support/upstash-emulator';
import { startDemo, stopDemo } from './demo-instances';

const cookieOf = (res: request.Response) =>
  (([] as string[]).concat(res.headers['set-cookie'] ?? [])[0] ?? '').split(';')[0] ?? '';

/** Every admin-looking GET route the app registers (the dashboard page itself holds no data and is public). */
function adminRoutes(app: express.Express): string[] {
  return listRoutes(app)
    .filter((r) => r.method === 'GET' && /metrics|admin/.test(r.path) && !r.path.endsWith('/admin/dashboard'))
    .map((r) => r.path);
}

describe('admin routes are locked by default', () => {
  test('a bare kit with no admin option: every admin route refuses everyone (403), whatever the credential', async () => {
    const kit = createRedisKit({ store: 'memory', logger: false, env: {} });
    const app = express();
    kit.mount(app);
    const routes = adminRoutes(app);
    expect(routes.sort()).toEqual(['/api/v1/admin/redis-metrics', '/api/v1/metrics']);
    for (const path of routes) {
      expect((await request(app).get(path)).status).toBe(403);
      expect((await request(app).get(path).set('Authorization', 'Bearer anything-at-all-0123')).status).toBe(403);
    }
    const page = await request(app).get('/api/v1/admin/dashboard');
    expect(page.status).toBe(200);
    expect(page.text).not.toMatch(/http_requests_total|redis_kit_/);
    await kit.close();
  });

  test('a bare kit with a token: 401 without it or with a wrong one, 200 with it, never cached', async () => {
    const token = randomBytes(24).toString('base64url');
    const kit = createRedisKit({ store: 'memory', logger: false, env: {}, admin: { token } });
    const app = express();
    kit.mount(app);
    for (const path of adminRoutes(app)) {
      expect((await request(app).get(path)).status).toBe(401);
      expect((await request(app).get(path).set('Authorization', `Bearer ${token}x`)).status).toBe(401);
      expect((await request(app).get(path).set('Authorization', token)).status).toBe(401);
      const ok = await request(app).get(path).set('Authorization', `Bearer ${token}`);
      expect(ok.status).toBe(200);
      expect(ok.headers['cache-control']).toMatch(/no-store/);
    }
    await kit.close();
  });

  test('the demo process (npm start) with no token configured: 401 on every admin route without the run’s token', async () => {
    const demo = await startDemo({ DEMO_LLM_LATENCY_MS: '0,0' });
    try {
      // The run's token is printed in the dashboard link's fragment (deliberately: there is no other way to hand it
      // over); everyone else is refused.
      const token = /#token=([A-Za-z0-9_-]+)/.exec(demo.output())?.[1];
      expect(token).toBeDefined();
      for (const path of ['/api/v1/metrics', '/api/v1/admin/redis-metrics']) {
        expect((await fetch(`${demo.url}${path}`)).status).toBe(401);
        const wrong = await fetch(`${demo.url}${path}`, {
          headers: { authorization: 'Bearer guess-0123456789abcdef' },
        });
        expect(wrong.status).toBe(401);
        const ok = await fetch(`${demo.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
        expect(ok.status).toBe(200);
      }
    } finally {
      await stopDemo(demo);
    }
  }, 90_000);

  test('the demo app without a token configured: 403 on every admin route', async () => {
    const { app, kit } = createDemoApp({ store: 'memory', logger: false, env: {} });
    const routes = adminRoutes(app);
    expect(routes.length).toBeGreaterThanOrEqual(2);
    for (const path of routes) expect((await request(app).get(path)).status).toBe(403);
    await kit.close();
  });
});

// ---------------------------------------------------------------------------------------------------------------

/** A pino-like logger that keeps every line, serialising errors with all their own properties (as pino does). */
function capture(): { logger: Logger; text: () => string } {
  const lines: string[] = [];
  const replacer = (_key: string, value: unknown) => {
    if (value instanceof Error) {
      const out: Record<string, unknown> = { name: value.name, message: value.message, stack: value.stack };
      for (const k of Object.keys(value)) out[k] = (value as unknown as Record<string, unknown>)[k];
      return out;
    }
    return typeof value === 'bigint' ? String(value) : value;
  };
  const push = (level: string) => (obj: unknown, msg?: string) => {
    lines.push(`${level} ${msg ?? ''} ${JSON.stringify(obj, replacer)}`);
  };
  return {
    logger: { debug: push('debug'), info: push('info'), warn: push('warn'), error: push('error') },
    text: () => lines.join('\n'),
  };
}

function expectNoSecrets(text: string, secrets: Record<string, string>): void {
  const leaked = Object.entries(secrets)
    .filter(([, value]) => text.includes(value))
    .map(
      ([name, value]) =>
        `${name} in: ${text
          .split('\n')
          .find((l) => l.includes(value))
          ?.slice(0, 300)}`,
    );
  expect(leaked).toEqual([]);
}

test('the kit logger takes credentials out of errors that carry the failed command (ioredis AUTH, HELLO)', () => {
  const log = capture();
  const kit = createRedisKit({ store: 'memory', logger: log.logger, env: {} });
  const auth = Object.assign(new Error('WRONGPASS invalid username-password pair'), {
    name: 'ReplyError',
    command: { name: 'auth', args: ['hunter2-password'] },
  });
  const hello = Object.assign(new Error('NOAUTH'), {
    command: { name: 'HELLO', args: ['3', 'AUTH', 'u', 'pw-hello'] },
  });
  const get = Object.assign(new Error('ERR'), { command: { name: 'get', args: ['some-key'] } });
  kit.logger.warn({ err: auth, where: 'connection' }, 'store connection error');
  kit.logger.error(hello);
  kit.logger.warnOnce('ERR_KIT_TEST_REDACT', 'once', { err: auth });
  kit.logger.error({ err: get }, 'other command');
  expectNoSecrets(log.text(), { auth: 'hunter2-password', hello: 'pw-hello' });
  expect(log.text()).toContain('WRONGPASS invalid username-password pair');
  expect(log.text()).toContain('"args":["***"]');
  // Other commands keep their arguments (keys help debugging and are not credentials).
  expect(log.text()).toContain('some-key');
  // The caller's error object is left as it was.
  expect(auth.command.args).toEqual(['hunter2-password']);
  void kit.close();
});

describeWithRedis('no secrets or tokens in logs', () => {
  jest.setTimeout(90_000);
  let redis: RedisProcess;
  let emulator: UpstashEmulator;
  const redisPassword = `pw-${randomBytes(12).toString('hex')}`;
  const upstashToken = `up-${randomBytes(16).toString('hex')}`;
  const adminToken = `adm-${randomBytes(16).toString('hex')}`;
  const sessionSecret = `sec-${randomBytes(16).toString('hex')}`;

  beforeAll(async () => {
    redis = await startRedis();
    execFileSync('redis-cli', ['-p', String(redis.port), 'CONFIG', 'SET', 'requirepass', redisPassword]);
    emulator = await startUpstashEmulator(`redis://:${redisPassword}@127.0.0.1:${redis.port}`, upstashToken);
  });
  afterAll(async () => {
    await emulator?.close();
    await redis?.stop();
  });

  /** Logs in, uses the session, reads admin routes with right and wrong tokens, logs out; returns the secrets seen. */
  async function exercise(options: RedisKitOptions, log: { text: () => string }): Promise<Record<string, string>> {
    const { app, kit } = createDemoApp(
      { ...options, admin: { token: adminToken }, env: {} },
      { sessionSecret, llmLatencyMs: [0, 0] },
    );
    const login = await request(app).post('/api/v1/auth/login').send({ username: 'alice', password: 'alice-password' });
    const cookie = cookieOf(login);
    const sessionId = String(login.body?.sessionId ?? 'no-session-id');
    await request(app).get('/api/v1/me').set('Cookie', cookie);
    await request(app).get('/api/v1/metrics').set('Authorization', `Bearer ${adminToken}`);
    await request(app).get('/api/v1/admin/redis-metrics').set('Authorization', `Bearer ${adminToken}`);
    await request(app)
      .get('/api/v1/metrics')
      .set('Authorization', `Bearer ${adminToken.slice(0, -1)}`);
    await request(app)
      .post('/api/v1/llm/chat')
      .send({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
    await request(app).post('/api/v1/jobs').send({ type: 'welcome-email', to: 'a@example.com' });
    await request(app).post('/api/v1/reports/sec/generate?wait=false');
    await request(app).post('/api/v1/auth/logout').set('Cookie', cookie);
    await request(app).get('/api/v1/me').set('Cookie', cookie);
    await kit.close();
    expect(log.text().length).toBeGreaterThan(0);
    return {
      redisPassword,
      upstashToken,
      adminToken,
      sessionSecret,
      'session id': sessionId,
      'session cookie': cookie.split('=')[1] ?? 'none',
      'demo password': 'alice-password',
    };
  }

  test('Redis with a password in the URL, working', async () => {
    const log = capture();
    const secrets = await exercise(
      { redis: `redis://:${redisPassword}@127.0.0.1:${redis.port}`, logger: log.logger },
      log,
    );
    expect(secrets['session id']).not.toBe('no-session-id');
    expectNoSecrets(log.text(), secrets);
  });

  test('Redis with a wrong password, and an unreachable Redis with a password: errors logged, no secret', async () => {
    const wrong = capture();
    const wrongPassword = `wrong-${randomBytes(8).toString('hex')}`;
    const secrets = await exercise(
      { redis: `redis://:${wrongPassword}@127.0.0.1:${redis.port}`, logger: wrong.logger },
      wrong,
    );
    expect(wrong.text()).toMatch(/WRONGPASS|NOAUTH|invalid|password/i);
    expectNoSecrets(wrong.text(), { ...secrets, wrongPassword });

    const down = capture();
    const port = await freePort();
    await exercise(
      { redis: `redis://user:${redisPassword}@127.0.0.1:${port}`, logger: down.logger, connectTimeout: '200 ms' },
      down,
    );
    expect(down.text()).toMatch(/ECONNREFUSED|unavailable|unreachable|timed out|did not answer/i);
    expectNoSecrets(down.text(), secrets);
  });

  test('Upstash REST with its token, and with a wrong one', async () => {
    const ok = capture();
    const secrets = await exercise({ upstash: { url: emulator.url, token: upstashToken }, logger: ok.logger }, ok);
    expectNoSecrets(ok.text(), secrets);
    const wrong = capture();
    const wrongToken = `wrong-${randomBytes(12).toString('hex')}`;
    await exercise({ upstash: { url: emulator.url, token: wrongToken }, logger: wrong.logger }, wrong);
    expect(wrong.text()).toMatch(/Unauthorized|401|unavailable/i);
    expectNoSecrets(wrong.text(), { ...secrets, wrongToken });
  });

  test('the demo server process (npm start) prints none of its configured secrets', async () => {
    const env = {
      REDIS_URL: `redis://:${redisPassword}@127.0.0.1:${redis.port}`,
      REDIS_KIT_ADMIN_TOKEN: adminToken,
      SESSION_SECRET: sessionSecret,
      DEMO_LLM_LATENCY_MS: '0,0',
    };
    const demo = await startDemo(env);
    try {
      const login = await fetch(`${demo.url}/api/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'alice', password: 'alice-password' }),
      });
      const cookie = (login.headers.getSetCookie()[0] ?? '').split(';')[0] ?? '';
      await fetch(`${demo.url}/api/v1/me`, { headers: { cookie } });
      await fetch(`${demo.url}/api/v1/metrics`, { headers: { authorization: 'Bearer wrong-token-0123456789' } });
      const metrics = await fetch(`${demo.url}/api/v1/metrics`);
      expect(metrics.status).toBe(401);
      await stopDemo(demo);
      expect(demo.output()).toMatch(/listening on/);
      expectNoSecrets(demo.output(), {
        redisPassword,
        adminToken,
        sessionSecret,
        'session cookie': cookie.split('=')[1] ?? 'none',
      });
    } finally {
      await stopDemo(demo);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------

describeForEachStore(
  'the response cache never serves one user’s private answer to another',
  ({ makeKit }) => {
    function app(kit: RedisKit): express.Express {
      const a = express();
      const who = (req: express.Request) => /user=(\w+)/.exec(req.get('cookie') ?? '')?.[1] ?? 'anonymous';
      a.use(kit.session({ secret: 'cache-privacy-secret-0123456789' }));
      a.post('/login/:user', async (req, res) => {
        const session = req.session as unknown as { login(id: string): Promise<void>; user?: string };
        session.user = String(req.params.user);
        await session.login(String(req.params.user));
        res.json({ ok: true });
      });
      const cached = kit.cache({ ttl: '1 m' });
      // A personal page that says so: Cache-Control private.
      a.get('/private', cached, (req, res) => {
        res.set('Cache-Control', 'private, max-age=60').json({ user: who(req) });
      });
      // A personal page that sets a cookie.
      a.get('/cookie', cached, (req, res) => {
        res.cookie('pref', `for-${who(req)}`).json({ user: who(req) });
      });
      // A page that depends on the Authorization header.
      a.get('/auth', cached, (req, res) => {
        res.json({ user: req.get('authorization') ?? 'none' });
      });
      // A page that depends on the session.
      a.get('/session', cached, (req, res) => {
        res.json({ user: (req.session as unknown as { user?: string }).user ?? 'anonymous' });
      });
      // Per-user caching asked for explicitly.
      a.get('/mine', kit.cache({ ttl: '1 m', userKey: (req) => who(req) }), (req, res) => {
        res.json({ user: who(req) });
      });
      return a;
    }

    test('two users: private, Set-Cookie, Authorization, session and per-user routes stay theirs', async () => {
      const kit = makeKit();
      const a = app(kit);
      for (const path of ['/private', '/cookie', '/mine']) {
        for (let round = 0; round < 2; round++) {
          const alice = await request(a).get(path).set('Cookie', 'user=alice');
          const bob = await request(a).get(path).set('Cookie', 'user=bob');
          expect([path, alice.body.user, bob.body.user]).toEqual([path, 'alice', 'bob']);
          if (path === '/cookie') expect(String(bob.headers['set-cookie'])).toContain('for-bob');
        }
      }
      for (let round = 0; round < 2; round++) {
        const alice = await request(a).get('/auth').set('Authorization', 'Bearer alice');
        const bob = await request(a).get('/auth').set('Authorization', 'Bearer bob');
        expect([alice.body.user, bob.body.user]).toEqual(['Bearer alice', 'Bearer bob']);
        expect(alice.headers['cache-status']).toMatch(/bypass/);
      }
      const anon = await request(a).get('/auth');
      expect(anon.body.user).toBe('none');

      const aliceCookie = cookieOf(await request(a).post('/login/alice'));
      const bobCookie = cookieOf(await request(a).post('/login/bob'));
      for (let round = 0; round < 2; round++) {
        const alice = await request(a).get('/session').set('Cookie', aliceCookie);
        const bob = await request(a).get('/session').set('Cookie', bobCookie);
        expect([alice.body.user, bob.body.user]).toEqual(['alice', 'bob']);
      }
      expect((await request(a).get('/session')).body.user).toBe('anonymous');
    });
  },
  { tiers: ['memory', 'standalone'] },
);

// ---------------------------------------------------------------------------------------------------------------

describeForEachStore(
  'session fixation is impossible',
  ({ makeKit }) => {
    const SECRET = 'fixation-secret-0123456789abcdef';
    function app(kit: RedisKit): express.Express {
      const a = express();
      a.use(kit.session({ secret: SECRET }));
      // An anonymous visitor gets a session (a basket): the attacker's way to obtain a valid id to plant.
      a.post('/basket', (req, res) => {
        (req.session as unknown as { basket?: number }).basket = 1;
        res.json({ id: (req.session as unknown as { id: string }).id });
      });
      a.post('/login', async (req, res) => {
        const session = req.session as unknown as { id: string; user?: string; login(id: string): Promise<void> };
        session.user = 'victim';
        await session.login('victim');
        res.json({ id: session.id });
      });
      a.get('/me', (req, res) => {
        const session = req.session as unknown as { id: string; user?: string };
        res.json({ id: session.id, user: session.user ?? null });
      });
      return a;
    }
    const idOf = (cookie: string) => decodeURIComponent(cookie.split('=')[1] ?? '').split('.')[0];

    test('an attacker-chosen id is never adopted, signed or not', async () => {
      const kit = makeKit();
      const a = app(kit);
      const chosen = 'AttackerChosenId123456'; // 22 characters, the shape of a real id
      const signed = `rk.sid=${chosen}.${sign(chosen, Buffer.from(SECRET, 'utf8'))}`;
      for (const planted of [`rk.sid=${chosen}`, signed]) {
        const login = await request(a).post('/login').set('Cookie', planted);
        expect(login.body.id).not.toBe(chosen);
        const issued = cookieOf(login);
        expect(idOf(issued)).toBe(login.body.id);
        // The planted cookie carries no login.
        expect((await request(a).get('/me').set('Cookie', planted)).body.user).toBeNull();
        expect((await request(a).get('/me').set('Cookie', issued)).body.user).toBe('victim');
      }
    });

    test('a real session planted by the attacker is rotated at login: the attacker’s copy is not logged in', async () => {
      const kit = makeKit();
      const a = app(kit);
      const basket = await request(a).post('/basket');
      const planted = cookieOf(basket);
      expect(idOf(planted)).toBe(basket.body.id);
      const login = await request(a).post('/login').set('Cookie', planted);
      expect(login.body.id).not.toBe(basket.body.id);
      const issued = cookieOf(login);
      expect(issued).not.toBe(planted);
      expect((await request(a).get('/me').set('Cookie', planted)).body.user).toBeNull();
      expect((await request(a).get('/me').set('Cookie', issued)).body.user).toBe('victim');
    });
  },
  { tiers: ['memory', 'standalone'] },
);

describe('session fixation in the demo', () => {
  const SECRET = 'fixation-secret-0123456789abcdef';
  test('the demo: login through a planted cookie issues a new id', async () => {
    const { app: demo, kit } = createDemoApp({ store: 'memory', logger: false, env: {} }, { sessionSecret: SECRET });
    const chosen = 'AttackerChosenId654321';
    const planted = `rk.sid=${chosen}.${sign(chosen, Buffer.from(SECRET, 'utf8'))}`;
    const login = await request(demo)
      .post('/api/v1/auth/login')
      .set('Cookie', planted)
      .send({ username: 'alice', password: 'alice-password' });
    expect(login.status).toBe(200);
    expect(login.body.sessionId).not.toBe(chosen);
    expect((await request(demo).get('/api/v1/me').set('Cookie', planted)).status).toBe(401);
    expect((await request(demo).get('/api/v1/me').set('Cookie', cookieOf(login))).status).toBe(200);
    await kit.close();
  });
});
