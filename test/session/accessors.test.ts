// req.session's accessors are shared by every request of an Express copy (defined once on its request prototype):
// sub-apps, routes outside the middleware, other session middlewares on the same app and non-Express objects must
// all behave as with per-request accessors.

import { inspect } from 'node:util';
import express from 'express';
import expressSession from 'express-session';
import express4 from 'express4';
import request from 'supertest';
import { createRedisKit, type RedisKit } from '../../plugin/index';
import { S, SECRET, setCookie } from './helpers';

let kit: RedisKit;
beforeEach(() => {
  kit = createRedisKit({ store: 'memory', logger: false, env: {} });
});
afterEach(() => kit.close());

describe('req.session accessors', () => {
  test('a route in a mounted sub-app sees the session the parent app loaded', async () => {
    const app = express();
    app.use(kit.session({ secret: SECRET }));
    const sub = express();
    sub.post('/set', (req, res) => {
      S(req).colour = 'blue';
      res.json({ ok: true });
    });
    sub.get('/get', (req, res) => {
      res.json({ colour: S(req).colour ?? null });
    });
    app.use('/sub', sub);
    const cookie = setCookie(await request(app).post('/sub/set')) as string;
    expect(cookie).toBeDefined();
    const res = await request(app).get('/sub/get').set('Cookie', cookie);
    expect(res.body).toEqual({ colour: 'blue' });
  });

  test('per request: no own property on req or res, one key in res.locals; the hooks run through the shared prototypes', async () => {
    // New own properties on Express's re-prototyped req/res objects are costly in V8 (see middleware.ts), so the
    // middleware keeps its one slot per request in res.locals and wraps nothing on the response, whether or not the
    // route reads the session; the reads and writes below show the shared hooks still save and send the cookie.
    const footprint: Array<{ req: number; res: number; locals: number }> = [];
    const app = express();
    app.use((req, res, next) => {
      const req0 = Reflect.ownKeys(req).length;
      const res0 = Reflect.ownKeys(res).length;
      const locals0 = Reflect.ownKeys(res.locals).length;
      res.on('finish', () => {
        footprint.push({
          req: Reflect.ownKeys(req).length - req0,
          res: Reflect.ownKeys(res).length - res0,
          locals: Reflect.ownKeys(res.locals).length - locals0,
        });
      });
      next();
    });
    app.use(kit.session({ secret: SECRET }));
    app.get('/untouched', (_req, res) => {
      res.json({ ok: true });
    });
    app.post('/set', (req, res) => {
      S(req).colour = 'green';
      res.json({ ok: true });
    });
    app.get('/get', (req, res) => {
      res.json({ colour: S(req).colour ?? null });
    });
    // Baseline: what Express itself adds on the way (route, params, ...) to a request no session code touches.
    const bare = express();
    const bareFootprint: Array<{ req: number; res: number }> = [];
    bare.use((req, res, next) => {
      const req0 = Reflect.ownKeys(req).length;
      const res0 = Reflect.ownKeys(res).length;
      res.on('finish', () => {
        bareFootprint.push({ req: Reflect.ownKeys(req).length - req0, res: Reflect.ownKeys(res).length - res0 });
      });
      next();
    });
    bare.use((_req, _res, next) => next());
    bare.get('/untouched', (_req, res) => {
      res.json({ ok: true });
    });
    await request(bare).get('/untouched');
    const base = bareFootprint[0] as { req: number; res: number };

    const cookie = setCookie(await request(app).post('/set')) as string;
    expect(cookie).toBeDefined();
    expect((await request(app).get('/get').set('Cookie', cookie)).body).toEqual({ colour: 'green' });
    await request(app).get('/untouched');
    await request(app).get('/untouched').set('Cookie', cookie);
    expect(footprint).toHaveLength(4);
    // The request's one slot is a key of res.locals: nothing on req or res beyond what Express adds.
    expect(footprint).toEqual(Array(4).fill({ ...base, locals: 1 }));
  });

  test('res.locals added to, assigned into or spread into a new object keeps the session (its slot is there)', async () => {
    const app = express();
    app.use(kit.session({ secret: SECRET }));
    app.use((req, res, next) => {
      const how = req.query.how;
      if (how === 'add') res.locals.title = 'x';
      else if (how === 'assign') Object.assign(res.locals, { title: 'x' });
      else res.locals = { ...res.locals, title: 'x' };
      next();
    });
    app.post('/set', (req, res) => {
      S(req).n = Number(S(req).n ?? 0) + 1;
      res.json({ title: res.locals.title });
    });
    app.get('/get', (req, res) => {
      res.json({ n: S(req).n ?? null });
    });
    const cookie = setCookie(await request(app).post('/set?how=spread')) as string;
    expect(cookie).toBeDefined();
    for (const how of ['add', 'assign', 'spread']) {
      expect((await request(app).post(`/set?how=${how}`).set('Cookie', cookie)).body).toEqual({ title: 'x' });
    }
    expect((await request(app).get('/get?how=spread').set('Cookie', cookie)).body).toEqual({ n: 4 });
  });

  test('a res.locals object shared by several responses never hands one request the session of another', async () => {
    const app = express();
    const shared: Record<string, unknown> = {};
    app.use((_req, res, next) => {
      res.locals = shared;
      next();
    });
    app.use(kit.session({ secret: SECRET }));
    let first: { session: unknown } | undefined;
    app.post('/set', (req, res) => {
      S(req).who = req.query.who;
      if (req.query.who === 'a') first = req as unknown as { session: unknown };
      res.json({ ok: true });
    });
    const a = setCookie(await request(app).post('/set?who=a')) as string;
    expect(a).toBeDefined();
    // The slot in the shared object is now b's: a's request object no longer finds a state, rather than b's.
    const b = setCookie(await request(app).post('/set?who=b')) as string;
    expect(b).toBeDefined();
    expect(b).not.toBe(a);
    expect(first?.session).toBeUndefined();
  });

  test('util.inspect of res.locals does not print the session config (its keys are the secrets)', async () => {
    const app = express();
    app.use(kit.session({ secret: SECRET }));
    let shown = '';
    app.get('/x', (req, res) => {
      S(req).n = 1;
      shown = inspect(res.locals, { depth: 5 });
      res.json({ ok: true });
    });
    await request(app).get('/x');
    expect(shown).toContain('SessionRequest');
    expect(shown).not.toContain(SECRET);
    expect(shown).not.toContain('keys');
  });

  test('a route the middleware does not cover reads undefined and creates nothing', async () => {
    const app = express();
    app.get('/outside', (req, res) => {
      res.json({ session: S(req) === undefined, id: (req as unknown as { sessionID?: string }).sessionID ?? null });
    });
    app.use('/inside', kit.session({ secret: SECRET }));
    app.post('/inside/set', (req, res) => {
      S(req).a = 1;
      res.json({ ok: true });
    });
    const cookie = setCookie(await request(app).post('/inside/set')) as string;
    const res = await request(app).get('/outside').set('Cookie', cookie);
    expect(res.body).toEqual({ session: true, id: null });
    expect(res.headers['set-cookie']).toBeUndefined();
  });

  test('express-session on other routes of the same app keeps working', async () => {
    const app = express();
    app.use('/kit', kit.session({ secret: SECRET }));
    app.use('/es', expressSession({ secret: SECRET, resave: false, saveUninitialized: false }));
    app.post('/es/set', (req, res) => {
      (req.session as unknown as Record<string, unknown>).n = 7;
      res.json({ ok: true });
    });
    app.get('/es/get', (req, res) => {
      res.json({ n: (req.session as unknown as Record<string, unknown>).n ?? null, id: req.sessionID });
    });
    app.post('/kit/set', (req, res) => {
      S(req).k = 'x';
      res.json({ ok: true });
    });
    app.get('/kit/get', (req, res) => {
      res.json({ k: S(req).k ?? null });
    });
    const esCookie = setCookie(await request(app).post('/es/set'), 'connect.sid') as string;
    const es = await request(app).get('/es/get').set('Cookie', esCookie);
    expect(es.body.n).toBe(7);
    expect(typeof es.body.id).toBe('string');
    const kitCookie = setCookie(await request(app).post('/kit/set')) as string;
    expect((await request(app).get('/kit/get').set('Cookie', kitCookie)).body).toEqual({ k: 'x' });
  });

  test('works on Express 4 too, and on a request object that is not an Express request', async () => {
    const app4 = express4();
    app4.use(kit.session({ secret: SECRET }));
    app4.post('/set', (req, res) => {
      S(req as never).v = 'four';
      res.json({ ok: true });
    });
    app4.get('/get', (req, res) => {
      res.json({ v: S(req as never).v ?? null });
    });
    const cookie = setCookie(await request(app4).post('/set')) as string;
    expect((await request(app4).get('/get').set('Cookie', cookie)).body).toEqual({ v: 'four' });

    // A plain object with no request prototype: the accessors go on the object itself.
    const mw = kit.session({ secret: SECRET });
    const req = { headers: {}, res: undefined } as never;
    const res = { writeHead() {}, end() {} } as never;
    await new Promise<void>((resolve) => mw(req, res, () => resolve()));
    expect(S(req)).toBeDefined();
    expect(Object.keys(S(req))).toEqual([]);
  });
});

describe('two copies of the kit in one process (its CommonJS and ESM builds both loaded)', () => {
  test('sessions and req.rateLimit of each copy work on one app: the second copy works per request', async () => {
    let other: typeof import('../../plugin/index') | undefined;
    jest.isolateModules(() => {
      other = require('../../plugin/index') as typeof import('../../plugin/index');
    });
    if (!other) throw new Error('the second copy did not load');
    const second = other.createRedisKit({ store: 'memory', logger: false, env: {} });
    try {
      const app = express();
      const a = express.Router();
      a.use(kit.session({ secret: SECRET }), kit.rateLimit({ name: 'a', limit: 5, window: '1 m' }));
      const b = express.Router();
      b.use(second.session({ secret: SECRET }), second.rateLimit({ name: 'b', limit: 7, window: '1 m' }));
      for (const [path, router] of [
        ['/a', a],
        ['/b', b],
      ] as const) {
        router.post('/set', (req, res) => {
          S(req).v = path;
          res.json({ limit: req.rateLimit?.limit });
        });
        router.get('/get', (req, res) => {
          res.json({ v: S(req).v ?? null, limit: req.rateLimit?.limit });
        });
        app.use(path, router);
      }
      const setA = await request(app).post('/a/set');
      const setB = await request(app).post('/b/set');
      expect([setA.body.limit, setB.body.limit]).toEqual([5, 7]);
      const cookieA = setCookie(setA) as string;
      const cookieB = setCookie(setB) as string;
      expect(cookieA).toBeDefined();
      expect(cookieB).toBeDefined();
      // Each copy, after the other one has run on the same app, still reads its session and its decision.
      expect((await request(app).get('/a/get').set('Cookie', cookieA)).body).toEqual({ v: '/a', limit: 5 });
      expect((await request(app).get('/b/get').set('Cookie', cookieB)).body).toEqual({ v: '/b', limit: 7 });
      expect((await request(app).get('/a/get').set('Cookie', cookieA)).body).toEqual({ v: '/a', limit: 5 });
    } finally {
      await second.close();
    }
  });
});
