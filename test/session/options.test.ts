// Configuration checks and the cookie's attributes, on the embedded store.

import express from 'express';
import request from 'supertest';
import { createRedisKit, type RedisKit } from '../../plugin/index';
import { readCookie, VerifiedCookies, verify } from '../../plugin/session/cookie';
import { sign } from '../../plugin/session/options';
import { fullSetCookie, S, SECRET, sessionApp, setCookie } from './helpers';

let kit: RedisKit;
beforeEach(() => {
  kit = createRedisKit({ store: 'memory', logger: false, env: {} });
});
afterEach(() => kit.close());

describe('kit.session options', () => {
  test('fails fast on misconfiguration, with the fix in the message', () => {
    // @ts-expect-error: options are required
    expect(() => kit.session()).toThrow(/secret/);
    // @ts-expect-error: secret is required
    expect(() => kit.session({})).toThrow(/secret is required/);
    expect(() => kit.session({ secret: [] })).toThrow(/secret is required/);
    // @ts-expect-error: a typo
    expect(() => kit.session({ secret: SECRET, idleTimout: '1 h' })).toThrow(/Did you mean 'idleTimeout'/);
    expect(() => kit.session({ secret: SECRET, idleTimeout: '2 d', absoluteTimeout: '1 d' })).toThrow(/longer/);
    expect(() => kit.session({ secret: SECRET, idleTimeout: 'soon' })).toThrow(/idleTimeout/);
    expect(() => kit.session({ secret: SECRET, name: 'bad name' })).toThrow(/cookie name/);
    expect(() => kit.session({ secret: SECRET, cookie: { hostPrefix: true, domain: 'example.com' } })).toThrow(
      /__Host-/,
    );
    expect(() => kit.session({ secret: SECRET, cookie: { sameSite: 'none', secure: false } })).toThrow(/requires/);
    // @ts-expect-error: wrong value
    expect(() => kit.session({ secret: SECRET, onStoreError: 'ignore' })).toThrow(/'fail' or 'degrade'/);
    // @ts-expect-error: wrong shape
    expect(() => kit.session({ secret: SECRET, workspace: { cookie: 'x' } })).toThrow(/workspace must be/);
    // @ts-expect-error: a typo
    expect(() => kit.sessionStore({ tll: '1 h' })).toThrow(/Did you mean 'ttl'/);
    // app.use(kit.session) without calling it
    expect(() => kit.session({ method: 'GET', headers: {} } as never)).toThrow(/must be called/);
  });

  test('cookie: HttpOnly, SameSite=Lax, Path=/, Max-Age of the absolute lifetime, no Secure over plain HTTP', async () => {
    const res = await request(sessionApp(kit)).post('/set/a/1');
    const cookie = fullSetCookie(res) as string;
    expect(cookie).toMatch(/; Path=\/; HttpOnly; SameSite=Lax; Max-Age=1209600$/);
    expect(cookie).not.toMatch(/Secure/);
  });

  test('Secure is automatic behind a trusted TLS proxy, and not from an untrusted one', async () => {
    const trusted = express();
    trusted.set('trust proxy', 'loopback');
    trusted.use(kit.session({ secret: SECRET }));
    trusted.get('/', (req, res) => {
      S(req).a = 1;
      res.end();
    });
    const viaProxy = await request(trusted).get('/').set('X-Forwarded-Proto', 'https');
    expect(fullSetCookie(viaProxy)).toMatch(/; Secure/);
    const untrusted = await request(sessionApp(kit)).post('/set/a/1').set('X-Forwarded-Proto', 'https');
    expect(fullSetCookie(untrusted)).not.toMatch(/Secure/);
  });

  test('__Host- prefix, strict SameSite, browser-session cookie', async () => {
    const app = sessionApp(kit, { cookie: { hostPrefix: true, sameSite: 'strict', maxAge: null } });
    const res = await request(app).post('/set/a/1');
    const cookie = fullSetCookie(res, '__Host-rk.sid') as string;
    expect(cookie).toMatch(/^__Host-rk\.sid=[^;]+; Path=\/; HttpOnly; SameSite=Strict; Secure$/);
    const pair = setCookie(res, '__Host-rk.sid') as string;
    expect((await request(app).get('/get/a').set('Cookie', pair)).body.value).toBe('1');
  });

  test('changing cookie.maxAge ("remember me") sends the cookie again', async () => {
    const app = express();
    app.use(kit.session({ secret: SECRET }));
    app.post('/a', (req, res) => {
      S(req).a = 1;
      res.end();
    });
    app.post('/remember', (req, res) => {
      S(req).cookie.maxAge = 3_600_000;
      res.end();
    });
    const cookie = setCookie(await request(app).post('/a')) as string;
    const again = await request(app).post('/remember').set('Cookie', cookie);
    expect(fullSetCookie(again)).toMatch(/Max-Age=3600$/);
    expect(setCookie(again)).toBe(cookie);
  });

  test('a session over maxBytes is not written, and the response still goes out', async () => {
    const app = sessionApp(kit, { maxBytes: 1024 });
    const big = 'x'.repeat(2000);
    const res = await request(app).post(`/set/a/${big}`);
    expect(res.status).toBe(200);
    expect(setCookie(res)).toBeUndefined();
  });

  test('workspace from a subdomain, a route parameter or a function', async () => {
    const bySub = sessionApp(kit, { workspace: { subdomain: true } });
    const c = setCookie(await request(bySub).post('/set/a/1').set('Host', 'acme.example.com')) as string;
    expect((await request(bySub).get('/get/a').set('Cookie', c).set('Host', 'acme.example.com')).body.value).toBe('1');
    expect((await request(bySub).get('/get/a').set('Cookie', c).set('Host', 'evil.example.com')).body.value).toBeNull();

    const byParam = express();
    byParam.use('/w/:ws', kit.session({ secret: SECRET, workspace: { param: 'ws' } }));
    byParam.post('/w/:ws/set', (req, res) => {
      S(req).a = req.params.ws;
      res.end();
    });
    byParam.get('/w/:ws/get', (req, res) => {
      res.json({ a: S(req).a ?? null });
    });
    const p = setCookie(await request(byParam).post('/w/one/set')) as string;
    expect((await request(byParam).get('/w/one/get').set('Cookie', p)).body.a).toBe('one');
    expect((await request(byParam).get('/w/two/get').set('Cookie', p)).body.a).toBeNull();

    const byFn = sessionApp(kit, { workspace: (req) => req.query.ws as string | undefined });
    const f = setCookie(await request(byFn).post('/set/a/1?ws=x')) as string;
    expect((await request(byFn).get('/get/a?ws=x').set('Cookie', f)).body.value).toBe('1');
    expect((await request(byFn).get('/get/a?ws=y').set('Cookie', f)).body.value).toBeNull();
  });

  test('userId: a custom reader indexes the session; false leaves it out', async () => {
    const custom = sessionApp(kit, { userId: (session) => session.uid as string | undefined });
    const cookie = setCookie(await request(custom).post('/set/uid/u-42')) as string;
    expect((await kit.sessions.list('u-42')).map((s) => s.id)).toEqual([cookie.slice(7, 29)]);
    const off = sessionApp(kit, { userId: false });
    await request(off).post('/set/uid/u-43');
    expect(await kit.sessions.list('u-43')).toEqual([]);
    // @ts-expect-error: wrong type
    expect(() => kit.session({ secret: SECRET, userId: 'passport' })).toThrow(/userId/);
  });

  test('touch() moves the idle deadline within the touch interval; req.session = null destroys', async () => {
    const app = sessionApp(kit, {}, (a) => {
      a.post('/touch', kit.session({ secret: SECRET }), (req, res) => {
        S(req).touch();
        res.end();
      });
      a.post('/null', kit.session({ secret: SECRET }), (req, res) => {
        (req as unknown as { session: unknown }).session = null;
        res.end();
      });
    });
    const cookie = setCookie(await request(app).post('/login/zoe')) as string;
    const seen = async () => (await kit.sessions.list('zoe'))[0]?.lastSeen;
    const first = await seen();
    await new Promise((r) => setTimeout(r, 20));
    await request(app).get('/get/a').set('Cookie', cookie);
    expect(await seen()).toBe(first);
    await request(app).post('/touch').set('Cookie', cookie);
    expect(await seen()).toBeGreaterThan(first as number);

    const cleared = await request(app).post('/null').set('Cookie', cookie);
    expect(fullSetCookie(cleared)).toMatch(/Max-Age=0/);
    expect(await kit.sessions.list('zoe')).toEqual([]);
  });

  test('the embedded store stays bounded by its key cap', async () => {
    const small = createRedisKit({ store: 'memory', logger: false, env: {}, memory: { maxKeys: 50 } });
    try {
      const app = sessionApp(small);
      for (let i = 0; i < 120; i++) await request(app).post('/set/a/1');
      expect(small.store.mode === 'memory' && small.store.engine.size).toBeLessThanOrEqual(50);
    } finally {
      await small.close();
    }
  });
});

describe('session cookie parsing', () => {
  test('reads one cookie-pair by exact name', () => {
    expect(readCookie('a=1; rk.sid=v; b=2', 'rk.sid')).toBe('v');
    expect(readCookie('xrk.sid=v', 'rk.sid')).toBeUndefined();
    expect(readCookie('a=rk.sid=v', 'rk.sid')).toBeUndefined();
    expect(readCookie('rk.sid=v;rk.sid=w', 'rk.sid')).toBeUndefined();
    expect(readCookie('rk.sid=v', 'rk.sid')).toBe('v');
  });

  test('verifies with any listed key and rejects everything else', () => {
    const keys = [Buffer.from('k1'), Buffer.from('k2')];
    expect(verify('short', keys)).toBeUndefined();
    expect(verify(`${'A'.repeat(22)}.${'B'.repeat(43)}`, keys)).toBeUndefined();
    const id = 'A'.repeat(22);
    expect(verify(`${id}.${sign(id, Buffer.from('k2'))}`, keys)).toBe(id);
    expect(verify(`${id}.${sign(id, Buffer.from('k3'))}`, keys)).toBeUndefined();
  });

  test('the verified-cookie cache keeps only values that verified, and stays bounded', () => {
    const key = Buffer.from('k1');
    const cache = new VerifiedCookies([key], (id) => `key:${id}`, 3);
    const seen = (cache as unknown as { seen: Map<string, unknown> }).seen;
    const value = (n: number) => {
      const id = String(n).padStart(22, 'A');
      return `${id}.${sign(id, key)}`;
    };
    const first = cache.verify(value(1));
    expect(first).toEqual({ id: 'AAAAAAAAAAAAAAAAAAAAA1', key: 'key:AAAAAAAAAAAAAAAAAAAAA1' });
    // The second look is the remembered entry itself: its key string is not built again.
    expect(cache.verify(value(1))).toBe(first);
    expect(cache.verify(`${'B'.repeat(22)}.${'C'.repeat(43)}`)).toBeUndefined();
    expect(seen.size).toBe(1);
    expect(new VerifiedCookies([key]).verify(value(1))).toEqual({ id: 'AAAAAAAAAAAAAAAAAAAAA1', key: undefined });
    for (let n = 2; n <= 5; n++) cache.verify(value(n));
    expect(seen.size).toBeLessThanOrEqual(3);
  });
});
