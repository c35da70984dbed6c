// The Express middleware on the embedded store: headers, the 429 problem body, keys, lists, skip, cost,
// misconfiguration, hostile input, and the express-rate-limit store adapter.

import express, { type Express, type RequestHandler } from 'express';
import { rateLimit as expressRateLimit } from 'express-rate-limit';
import request from 'supertest';
import { createRedisKit, type RedisKit } from '../../plugin/index';
import { buildKeyFn, ipKey } from '../../plugin/rate-limit/keys';

const kits: RedisKit[] = [];
afterEach(async () => {
  await Promise.all(kits.splice(0).map((k) => k.close()));
});

function makeKit(logger: RedisKit['logger'] | false = false): RedisKit {
  const kit = createRedisKit({ store: 'memory', logger: logger as false, env: {} });
  kits.push(kit);
  return kit;
}

/** A kit on the embedded store whose logger keeps the warnings it is given, with their messages. */
function warningKit(): { kit: RedisKit; warnings: Array<{ code?: string; msg?: string }> } {
  const warnings: Array<{ code?: string; msg?: string }> = [];
  const logger = {
    info() {},
    error() {},
    warn: (obj: { code?: string }, msg?: string) => warnings.push({ ...obj, msg }),
  };
  const kit = createRedisKit({ store: 'memory', logger, env: {} });
  kits.push(kit);
  return { kit, warnings };
}

function appWith(...mw: RequestHandler[]): Express {
  const app = express();
  app.get('/ping', ...mw, (req, res) => {
    res.json({ ok: true, rateLimit: req.rateLimit?.remaining });
  });
  app.post('/ping', ...mw, (_req, res) => {
    res.json({ ok: true });
  });
  return app;
}

describe('kit.rateLimit middleware', () => {
  test('IETF RateLimit-Policy and RateLimit fields, one item per policy', async () => {
    const kit = makeKit();
    const app = appWith(
      kit.rateLimit({
        policies: [
          { name: 'burst', limit: 10, window: '1 s', algorithm: 'token-bucket' },
          { name: 'hourly', limit: 1000, window: '1 h' },
        ],
      }),
    );
    const res = await request(app).get('/ping');
    expect(res.status).toBe(200);
    expect(res.headers['ratelimit-policy']).toBe('"burst";q=10;w=1, "hourly";q=1000;w=3600');
    expect(res.headers.ratelimit).toMatch(/^"burst";r=9;t=\d+, "hourly";r=999;t=\d+$/);
    expect(res.headers['x-ratelimit-limit']).toBeUndefined();
    expect(res.body.rateLimit).toBe(9);
  });

  test('429 is a problem+json with Retry-After; legacy headers on request', async () => {
    const kit = makeKit();
    const app = appWith(kit.rateLimit({ limit: 2, window: '1 m', legacyHeaders: true, algorithm: 'fixed-window' }));
    await request(app).get('/ping');
    const second = await request(app).get('/ping');
    expect(second.headers['x-ratelimit-limit']).toBe('2');
    expect(second.headers['x-ratelimit-remaining']).toBe('0');
    const res = await request(app).get('/ping');
    expect(res.status).toBe(429);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    const retryAfter = Number(res.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(JSON.parse(res.text)).toEqual({
      type: 'about:blank',
      title: 'Too Many Requests',
      status: 429,
      detail: expect.any(String),
      retryAfter,
    });
  });

  test('cost as a function of the request; skip; allow and deny lists', async () => {
    const kit = makeKit();
    const app = appWith(
      kit.rateLimit({
        limit: 5,
        window: '1 m',
        cost: (req) => (req.method === 'POST' ? 3 : 1),
        skip: (req) => req.headers['x-internal'] === '1',
        allowList: ['10.0.0.1'],
        denyList: ['10.0.0.66'],
      }),
    );
    app.set('trust proxy', true);
    expect((await request(app).post('/ping')).headers.ratelimit).toMatch(/r=2;/);
    expect((await request(app).post('/ping')).status).toBe(429);
    expect((await request(app).get('/ping').set('x-internal', '1')).status).toBe(200);
    for (let i = 0; i < 10; i++) {
      expect((await request(app).get('/ping').set('x-forwarded-for', '10.0.0.1')).status).toBe(200);
    }
    const denied = await request(app).get('/ping').set('x-forwarded-for', '10.0.0.66');
    expect(denied.status).toBe(403);
  });

  test('per-route limiters do not share counters', async () => {
    const kit = makeKit();
    const app = express();
    app.get('/a', kit.rateLimit({ limit: 1, window: '1 m' }), (_q, r) => r.send('a'));
    app.get('/b', kit.rateLimit({ limit: 1, window: '1 m' }), (_q, r) => r.send('b'));
    expect((await request(app).get('/a')).status).toBe(200);
    expect((await request(app).get('/b')).status).toBe(200);
    expect((await request(app).get('/a')).status).toBe(429);
  });

  test('keyBy user, apiKey, workspace and function, falling back to the IP', async () => {
    const kit = makeKit();
    const app = express();
    app.use((req, _res, next) => {
      const user = req.headers['x-user'];
      if (user) (req as unknown as { user: { id: string } }).user = { id: String(user) };
      next();
    });
    app.get('/u', kit.rateLimit({ limit: 1, window: '1 m', keyBy: 'user' }), (_q, r) => r.send('u'));
    app.get('/k', kit.rateLimit({ limit: 1, window: '1 m', keyBy: 'apiKey' }), (_q, r) => r.send('k'));
    app.get('/f', kit.rateLimit({ limit: 1, window: '1 m', keyBy: (req) => req.query.t as string }), (_q, r) =>
      r.send('f'),
    );
    expect((await request(app).get('/u').set('x-user', 'alice')).status).toBe(200);
    expect((await request(app).get('/u').set('x-user', 'bob')).status).toBe(200);
    expect((await request(app).get('/u').set('x-user', 'alice')).status).toBe(429);
    expect((await request(app).get('/u')).status).toBe(200); // anonymous: by IP
    expect((await request(app).get('/k').set('x-api-key', 'k1')).status).toBe(200);
    expect((await request(app).get('/k').set('x-api-key', 'k2')).status).toBe(200);
    expect((await request(app).get('/k').set('x-api-key', 'k1')).status).toBe(429);
    expect((await request(app).get('/f?t=1')).status).toBe(200);
    expect((await request(app).get('/f?t=2')).status).toBe(200);
    expect((await request(app).get('/f?t=1')).status).toBe(429);
  });

  test('IPv6 clients are grouped by /64 (configurable); IPv4-mapped addresses count as IPv4', async () => {
    expect(ipKey('2001:db8:1:2:aaaa::1', 64)).toBe(ipKey('2001:db8:1:2:ffff:1:2:3', 64));
    expect(ipKey('2001:db8:1:2::1', 64)).not.toBe(ipKey('2001:db8:1:3::1', 64));
    expect(ipKey('2001:db8:1:2::1', 128)).not.toBe(ipKey('2001:db8:1:2::2', 128));
    expect(ipKey('::ffff:192.0.2.7', 64)).toBe('192.0.2.7');
    expect(ipKey('192.0.2.7', 64)).toBe('192.0.2.7');
    const kit = makeKit();
    const app = appWith(kit.rateLimit({ limit: 2, window: '1 m' }));
    app.set('trust proxy', true);
    const statuses = [];
    for (const tail of ['1', '2', '3']) {
      statuses.push((await request(app).get('/ping').set('x-forwarded-for', `2001:db8:5:6::${tail}`)).status);
    }
    expect(statuses).toEqual([200, 200, 429]);
    expect((await request(app).get('/ping').set('x-forwarded-for', '2001:db8:5:7::1')).status).toBe(200);
  });

  test('req.rateLimit: the last decision, in sub-apps too; an assignment wins; other requests see their own', async () => {
    const kit = makeKit();
    const first = kit.rateLimit({ name: 'a', limit: 5, window: '1 m' });
    const second = kit.rateLimit({ name: 'b', limit: 50, window: '1 m' });
    const app = express();
    app.get('/two', first, second, (req, res) => {
      // Read through the accessor Express's requests share: no own property was added to the request.
      res.json({
        limit: req.rateLimit?.limit,
        remaining: req.rateLimit?.remaining,
        own: Object.hasOwn(req, 'rateLimit'),
      });
    });
    // Set before the limiter (express-rate-limit on the same route does this): the limiter's decision replaces it.
    app.get(
      '/before',
      (req, _res, next) => {
        (req as { rateLimit?: unknown }).rateLimit = { limit: -1 };
        next();
      },
      first,
      (req, res) => {
        res.json({ limit: req.rateLimit?.limit, own: Object.hasOwn(req, 'rateLimit') });
      },
    );
    // Set after the limiter: the route sees what was assigned.
    app.get(
      '/after',
      first,
      (req, _res, next) => {
        (req as { rateLimit?: unknown }).rateLimit = { limit: -2 };
        next();
      },
      (req, res) => {
        res.json({ limit: req.rateLimit?.limit });
      },
    );
    // res.locals copied into a new object (as some apps do) keeps the decision.
    app.get(
      '/locals',
      first,
      (_req, res, next) => {
        res.locals = { ...res.locals, extra: 1 };
        next();
      },
      (req, res) => {
        res.json({ limit: req.rateLimit?.limit });
      },
    );
    app.get('/none', (req, res) => {
      res.json({ has: req.rateLimit !== undefined });
    });
    const sub = express();
    sub.get('/in', second, (req, res) => {
      res.json({ limit: req.rateLimit?.limit });
    });
    app.use('/sub', sub);
    expect((await request(app).get('/two')).body).toEqual({ limit: 50, remaining: 49, own: false });
    expect((await request(app).get('/before')).body).toEqual({ limit: 5, own: true });
    expect((await request(app).get('/after')).body).toEqual({ limit: -2 });
    expect((await request(app).get('/locals')).body).toEqual({ limit: 5 });
    expect((await request(app).get('/none')).body).toEqual({ has: false });
    expect((await request(app).get('/sub/in')).body).toEqual({ limit: 50 });
    // Not an Express request: the decision is a plain property of the request object.
    const req = { socket: { remoteAddress: '192.0.2.1' }, headers: {}, method: 'GET' } as unknown as express.Request;
    const res = { setHeader() {} } as unknown as express.Response;
    await new Promise<void>((resolve, reject) =>
      first(req, res, (error?: unknown) => (error ? reject(error) : resolve())),
    );
    expect(Object.hasOwn(req, 'rateLimit')).toBe(true);
    expect(req.rateLimit?.limit).toBe(5);
  });

  test('client keys stay right past the size of the address-key cache', () => {
    const keyOf = buildKeyFn('ip', 64, makeKit().logger);
    const app = { settings: {} };
    const reqFor = (address: string) =>
      ({ app, headers: {}, socket: { remoteAddress: address } }) as unknown as express.Request;
    // More distinct clients than the cache holds (4,096), so it is cleared and refilled on the way.
    const ips = Array.from({ length: 10_000 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    for (const ip of ips) expect(keyOf(reqFor(ip))).toBe(`ip:${ip}`);
    for (const ip of [ips[0], ips[5000], ips[9999]] as string[]) expect(keyOf(reqFor(ip))).toBe(`ip:${ip}`);
    expect(keyOf(reqFor('2001:db8:1:2::7'))).toBe(keyOf(reqFor('2001:db8:1:2:ffff::1')));
    const junk = `x${'9'.repeat(500)}`;
    expect(keyOf(reqFor(junk))).toBe(keyOf(reqFor(junk)));
    expect(keyOf(reqFor(junk)).length).toBeLessThan(100);
  });

  test("warns once, with a code, when X-Forwarded-For arrives and 'trust proxy' is off", async () => {
    const { kit, warnings } = warningKit();
    const app = appWith(kit.rateLimit({ limit: 100, window: '1 m' }));
    await request(app).get('/ping');
    expect(warnings).toHaveLength(0);
    await request(app).get('/ping').set('x-forwarded-for', '1.2.3.4');
    await request(app).get('/ping').set('x-forwarded-for', '1.2.3.5');
    expect(warnings).toEqual([expect.objectContaining({ code: 'ERR_KIT_TRUST_PROXY' })]);
  });

  test("'trust proxy' set while the app serves takes effect within 256 requests; X-Forwarded-For is still noticed late", async () => {
    const { kit, warnings } = warningKit();
    const mw = kit.rateLimit({ limit: 1000, window: '1 h' });
    const app = appWith(mw);
    // 300 requests without the header: past the ones that are all looked at.
    for (let i = 0; i < 300; i++) await request(app).get('/ping');
    let sent = 0;
    while (warnings.length === 0 && sent < 16) {
      await request(app).get('/ping').set('x-forwarded-for', '9.9.9.9');
      sent++;
    }
    expect(warnings).toEqual([expect.objectContaining({ code: 'ERR_KIT_TRUST_PROXY' })]);
    const used = async (key: string) => 1000 - (await mw.limiter.peek(key)).remaining;
    // Not trusted yet: counted under the socket's address.
    expect(await used('ip:9.9.9.9')).toBe(0);
    app.set('trust proxy', true);
    const before = 300 + sent;
    for (let i = 0; i < 256; i++) await request(app).get('/ping').set('x-forwarded-for', '9.9.9.9');
    // The setting is read again at the 512th request of this middleware: every request from it on counts there.
    expect(await used('ip:9.9.9.9')).toBe(before + 256 - 511);
    // No warning for a setting turned on after the first request: the warning checks the setting as it is now.
    const late = warningKit();
    const lateApp = appWith(late.kit.rateLimit({ limit: 1000, window: '1 h' }));
    await request(lateApp).get('/ping');
    lateApp.set('trust proxy', true);
    await request(lateApp).get('/ping').set('x-forwarded-for', '9.9.9.9');
    expect(late.warnings).toEqual([]);
  });

  test('hostile input: huge or malformed X-Forwarded-For, long, unicode and CRLF keys never 500', async () => {
    const kit = makeKit();
    const app = express();
    app.set('trust proxy', true);
    app.get('/ip', kit.rateLimit({ limit: 1000, window: '1 m' }), (_q, r) => r.send('ok'));
    app.get('/fn', kit.rateLimit({ limit: 1000, window: '1 m', keyBy: (req) => String(req.headers['x-k']) }), (_q, r) =>
      r.send('ok'),
    );
    const xffs = [
      `${'9.9.9.9, '.repeat(1500)}1.1.1.1`,
      'not-an-ip',
      ', , ,',
      '::::::::::',
      '1.2.3.4.5.6',
      'ünïcødé',
      `${'a'.repeat(10_000)}`,
    ];
    for (const xff of xffs) expect((await request(app).get('/ip').set('x-forwarded-for', xff)).status).toBe(200);
    for (const k of ['k'.repeat(10_000), 'ünïcødé 🚀', '{tag}', 'a b', '%0d%0aSet-Cookie: x=1']) {
      const res = await request(app).get('/fn').set('x-k', encodeURIComponent(k).slice(0, 8000));
      expect(res.status).toBe(200);
    }
    // Two long keys that share their first kilobytes are still two clients.
    const long = (tail: string) => `${'p'.repeat(5000)}${tail}`;
    const app2 = express();
    app2.get('/', kit.rateLimit({ limit: 1, window: '1 m', keyBy: (req) => long(String(req.query.t)) }), (_q, r) =>
      r.send('ok'),
    );
    expect((await request(app2).get('/?t=a')).status).toBe(200);
    expect((await request(app2).get('/?t=b')).status).toBe(200);
    expect((await request(app2).get('/?t=a')).status).toBe(429);
    // A CRLF inside a key given to the programmatic limiter.
    const rl = kit.rateLimiter({ limit: 2, window: '1 m' });
    expect((await rl.limit('a\r\nb')).allowed).toBe(true);
    expect((await rl.limit('a\r\nb')).remaining).toBe(0);
    // Stored keys stay bounded whatever the client key was.
    const engine = (kit.store as { engine: { size: number } }).engine;
    expect(engine.size).toBeGreaterThan(0);
  });

  test('misuse fails at construction with the fix in the message', () => {
    const kit = makeKit();
    expect(() => kit.rateLimit({ limit: 10, window: '1 m', windw: 1 } as never)).toThrow(/Did you mean 'window'/);
    expect(() => kit.rateLimit({ limit: 10 } as never)).toThrow(/window is required/);
    expect(() => kit.rateLimit({ limit: 10, window: 'soon' })).toThrow(/duration/);
    expect(() => kit.rateLimit({ limit: 10, window: '1 m', algorithm: 'leaky' as never })).toThrow(/expected one of/);
    expect(() => kit.rateLimit({ limit: 10, window: '1 m', burst: 5 })).toThrow(/burst only applies/);
    expect(() =>
      kit.rateLimit({
        policies: [
          { name: 'a', limit: 1, window: 1000 },
          { name: 'a', limit: 2, window: 1000 },
        ],
      }),
    ).toThrow(/two policies are named/);
    const app = express();
    app.use(kit.rateLimit as never);
    return request(app)
      .get('/')
      .then((res) => {
        expect(res.status).toBe(500);
        expect(res.text).toMatch(/without calling it/);
      });
  });

  test('tiers: each tier its own limits, headers and counters; tier() chooses, the default takes the rest', async () => {
    const { kit, warnings } = warningKit();
    const limiter = kit.rateLimit({
      name: 'api',
      keyBy: 'apiKey',
      algorithm: undefined,
      tiers: {
        free: { limit: 2, window: '1 m', algorithm: 'fixed-window' },
        pro: { policies: [{ name: 'minute', limit: 4, window: '1 m', algorithm: 'fixed-window' }] },
      },
      // In an app: the plan of the authenticated user or workspace.
      tier: (req) => req.get('x-plan'),
    });
    const app = appWith(limiter);
    const send = (key: string, plan?: string) => {
      const r = request(app).get('/ping').set('x-api-key', key);
      return plan === undefined ? r : r.set('x-plan', plan);
    };
    const statuses = async (key: string, plan: string | undefined, n: number) => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push((await send(key, plan)).status);
      return out;
    };
    expect(await statuses('k-free', 'free', 3)).toEqual([200, 200, 429]);
    expect(await statuses('k-pro', 'pro', 5)).toEqual([200, 200, 200, 200, 429]);
    expect((await send('k-pro2', 'pro')).headers['ratelimit-policy']).toBe('"minute";q=4;w=60');
    expect((await send('k-free2', 'free')).headers['ratelimit-policy']).toBe('"default";q=2;w=60');
    // Each tier counts on its own: the client refused on free has a fresh count on pro.
    expect((await send('k-free', 'pro')).status).toBe(200);
    // No tier: the default one (the first listed), silently.
    expect(await statuses('k-none', undefined, 3)).toEqual([200, 200, 429]);
    expect(warnings).toHaveLength(0);
    // A name that is not a tier: the default tier too, logged once with a code.
    expect(await statuses('k-odd', `platinum-${'x'.repeat(100)}`, 3)).toEqual([200, 200, 429]);
    expect(warnings).toEqual([expect.objectContaining({ code: 'ERR_KIT_RATE_LIMIT_TIER' })]);
    // The name came from the request: logged cut to 40 characters.
    expect(warnings[0]?.msg).toContain(`"platinum-${'x'.repeat(31)}"`);
    expect(limiter.limiter).toBe(limiter.limiters.free);
    expect(Object.keys(limiter.limiters)).toEqual(['free', 'pro']);
    expect(limiter.limiters.pro?.name).toBe('api/pro');
    expect((await limiter.limiters.pro?.peek('key:k-pro'))?.remaining).toBe(0);
  });

  test('tiers: defaultTier names the tier of unplaced requests; misconfiguration fails at construction', () => {
    const kit = makeKit();
    const tiers = { free: { limit: 1, window: '1 m' }, pro: { limit: 5, window: '1 m' } };
    const mw = kit.rateLimit({ name: 't', tiers, tier: () => undefined, defaultTier: 'pro' });
    expect(mw.limiter).toBe(mw.limiters.pro);
    expect(kit.rateLimit({ limit: 1, window: '1 m' }).limiters).toEqual({ default: expect.anything() });
    const bad = (options: object) => () => kit.rateLimit(options as never);
    // The types refuse these misuses as the middleware does (`npm run typecheck` checks each line is an error).
    // @ts-expect-error: tiers need tier()
    expect(() => kit.rateLimit({ name: 't', tiers })).toThrow(/tier: a function of the request/);
    // @ts-expect-error: with tiers, the policies go in each tier
    expect(() => kit.rateLimit({ name: 't', tiers, tier: () => 'x', limit: 3 })).toThrow(/top level \(limit\)/);
    // @ts-expect-error: tiers need a name
    expect(() => kit.rateLimit({ tiers, tier: () => 'x' })).toThrow(/tiers need a name/);
    // @ts-expect-error: tier() without tiers
    expect(() => kit.rateLimit({ limit: 1, window: '1 m', tier: () => 'x' })).toThrow(/go with tiers/);
    expect(bad({ name: 't', tiers, tier: () => 'x', policies: [] })).toThrow(/not at the top level \(policies\)/);
    expect(bad({ name: 'a b', tiers, tier: () => 'x' })).toThrow(/kit\.rateLimit\.name: "a b"/);
    expect(bad({ name: 't', tiers: {}, tier: () => 'x' })).toThrow(/1 to 32 tiers/);
    for (const name of ['a b', '100', '__proto__']) {
      const odd = JSON.parse(`{${JSON.stringify(name)}: { "limit": 1, "window": 1000 }}`);
      expect(bad({ name: 't', tiers: odd, tier: () => 'x' })).toThrow(/must be 1-16 characters .* not digits only/);
    }
    expect(bad({ name: 't', tiers, tier: () => 'x', defaultTier: 'gold' })).toThrow(/"gold" is not one of/);
    expect(bad({ name: 't', tiers: { free: { limit: 1 } }, tier: () => 'x' })).toThrow(
      /tiers\.free\.window is required/,
    );
    expect(
      bad({ name: 't', tiers: { free: { limit: 1, window: 1000, blockDuration: '1 m' } }, tier: () => 'x' }),
    ).toThrow(/tiers\.free\.blockDuration: blockDuration applies to every tier/);
    expect(bad({ name: 't', tiers: { free: { limit: 1, window: 1000, keyBy: 'ip' } }, tier: () => 'x' })).toThrow(
      /keyBy/,
    );
    // Options every tier shares are checked where they were given.
    expect(bad({ name: 't', tiers, tier: () => 'x', onStoreError: 'maybe' })).toThrow(/^kit\.rateLimit\.onStoreError/);
    // A window is never a timer: a month is fine, past 400 days is not.
    expect(() => kit.rateLimit({ limit: 1, window: '30 d' })).not.toThrow();
    expect(bad({ limit: 1, window: '401 d' })).toThrow(/longer than the maximum of 400 days/);
  });

  test('tiers: options given once reach every tier; odd answers of tier() go to the default tier', async () => {
    const { kit, warnings } = warningKit();
    let answer: unknown;
    const app = appWith(
      kit.rateLimit({
        name: 'shared',
        keyBy: () => 'one-client',
        blockDuration: '1 h',
        tiers: {
          free: { limit: 1, window: '1 m', algorithm: 'fixed-window' },
          pro: { limit: 2, window: '1 m', algorithm: 'fixed-window' },
        },
        tier: (req) => {
          if (req.get('x-throw')) throw new Error('no plan');
          return (req.get('x-plan') ?? answer) as string;
        },
        handler: (_req, res, _next, result) => {
          res.status(429).json({ retryAfterMs: result.retryAfterMs });
        },
      }),
    );
    // blockDuration, given at the top level, holds in both tiers: a refusal blocks for the hour, not the minute.
    for (const plan of ['free', 'pro']) {
      let last = await request(app).get('/ping').set('x-plan', plan);
      while (last.status === 200) last = await request(app).get('/ping').set('x-plan', plan);
      expect(last.status).toBe(429);
      expect(last.body.retryAfterMs).toBeGreaterThan(3_000_000);
    }
    // A tier() that throws fails the request as any middleware error does.
    expect((await request(app).get('/ping').set('x-throw', '1')).status).toBe(500);
    // Not a string: the default tier (free, blocked above), logged once.
    answer = 42;
    expect((await request(app).get('/ping')).status).toBe(429);
    expect(warnings.filter((w) => w.code === 'ERR_KIT_RATE_LIMIT_TIER')).toHaveLength(1);
    expect(warnings[0]?.msg).toContain(`kit.rateLimit 'shared': tier() returned "42"`);
  });

  test('tiers: a tier() that answers with a promise is named in the warning', async () => {
    const { kit, warnings } = warningKit();
    const tier = (async () => 'pro') as unknown as () => string;
    const app = appWith(kit.rateLimit({ name: 'p', tiers: { free: { limit: 5, window: '1 m' } }, tier }));
    expect((await request(app).get('/ping')).status).toBe(200);
    expect((await request(app).get('/ping')).status).toBe(200);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.msg).toContain('a promise (tier() must answer synchronously)');
    // Another tiered middleware of the same kit logs its own stray answer, once.
    const other = appWith(kit.rateLimit({ name: 'q', tiers: { free: { limit: 5, window: '1 m' } }, tier: () => 'x' }));
    await request(other).get('/ping');
    await request(other).get('/ping');
    expect(warnings.map((w) => w.msg?.slice(0, 17))).toEqual(["kit.rateLimit 'p'", "kit.rateLimit 'q'"]);
  });

  test('a long refusal is not answered from the blocked-keys cache past a minute: the store is asked again', async () => {
    const kit = makeKit();
    // Two limiters of one name share their counters, as two instances of an app do; each has its own cache.
    const here = kit.rateLimiter({ name: 'quota', limit: 1, window: '30 d', algorithm: 'fixed-window' });
    const there = kit.rateLimiter({ name: 'quota', limit: 1, window: '30 d', algorithm: 'fixed-window' });
    expect((await here.limit('ws1')).allowed).toBe(true);
    const refused = await here.limit('ws1');
    expect(refused.allowed).toBe(false);
    expect(refused.retryAfterMs).toBeGreaterThan(60_000);
    expect((await here.limit('ws1')).reason).toBe('cache');
    await there.reset('ws1');
    // Within the minute the cache still answers, with the retry time it learned.
    expect(await here.limit('ws1')).toMatchObject({ allowed: false, reason: 'cache' });
    const now = Date.now();
    const clock = jest.spyOn(Date, 'now').mockImplementation(() => now + 61_000);
    try {
      expect((await here.limit('ws1')).allowed).toBe(true);
    } finally {
      clock.mockRestore();
    }
  });

  test('express-rate-limit keeps its options and counts in the kit store', async () => {
    const kit = makeKit();
    const app = appWith(
      expressRateLimit({
        windowMs: 60_000,
        limit: 2,
        store: kit.rateLimitStore(),
        standardHeaders: 'draft-8',
        keyGenerator: () => 'client-1',
      }),
    );
    expect((await request(app).get('/ping')).status).toBe(200);
    expect((await request(app).get('/ping')).status).toBe(200);
    expect((await request(app).get('/ping')).status).toBe(429);
    const store = kit.rateLimitStore();
    store.init({ windowMs: 60_000 });
    const info = await store.get('client-1');
    expect(info?.totalHits).toBe(3);
    expect(info?.resetTime?.getTime()).toBeGreaterThan(Date.now());
    await store.resetKey('client-1');
    expect((await request(app).get('/ping')).status).toBe(200);
  });
});
