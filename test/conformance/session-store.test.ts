// kit.sessionStore(): express-session's Store contract, driven by express-session itself on every store; and the
// lost update that express-session's whole-object writes cause, next to kit.session()'s field-level writes.

import express from 'express';
import session from 'express-session';
import request from 'supertest';
import type { RedisKit } from '../../plugin/index';
import { pairBarrier, SECRET, sessionApp, setCookie, sleep } from '../session/helpers';
import { describeForEachStore } from '../support/stores';

function expressSessionApp(kit: RedisKit, store: session.Store = kit.sessionStore()) {
  const app = express();
  app.use(session({ secret: SECRET, store, resave: false, saveUninitialized: false, name: 'connect.sid' }));
  app.post('/set/:field/:value', async (req, res) => {
    const delay = Number(req.query.delay ?? 0);
    if (delay) await sleep(delay);
    (req.session as unknown as Record<string, unknown>)[req.params.field as string] = req.params.value;
    res.json({ id: req.sessionID });
  });
  const meet = pairBarrier();
  app.post('/race/:field/:value', async (req, res) => {
    const data = req.session as unknown as Record<string, unknown>;
    await meet(Number(req.query.after ?? 0));
    data[req.params.field as string] = req.params.value;
    res.json({ id: req.sessionID });
  });
  app.get('/all', (req, res) => {
    const { cookie: _cookie, ...data } = req.session as unknown as Record<string, unknown>;
    res.json({ data, id: req.sessionID });
  });
  app.post('/regenerate', (req, res, next) => {
    req.session.regenerate((err) => (err ? next(err) : res.json({ id: req.sessionID })));
  });
  app.post('/destroy', (req, res, next) => {
    req.session.destroy((err) => (err ? next(err) : res.json({ ok: true })));
  });
  return app;
}

const cookieOf = (res: { headers: Record<string, unknown> }) => setCookie(res, 'connect.sid') as string;

describeForEachStore('session store adapter for express-session', ({ makeKit }) => {
  test('express-session stores, reads, regenerates and destroys through it', async () => {
    const kit = makeKit();
    const app = expressSessionApp(kit);
    const first = await request(app).post('/set/a/1');
    const cookie = cookieOf(first);
    expect(cookie).toBeDefined();
    await request(app).post('/set/b/2').set('Cookie', cookie);
    const all = await request(app).get('/all').set('Cookie', cookie);
    expect(all.body).toEqual({ data: { a: '1', b: '2' }, id: first.body.id });

    const store = kit.sessionStore();
    const stored = (await store.get(first.body.id)) as Record<string, unknown>;
    expect(stored.a).toBe('1');
    expect(stored.cookie).toMatchObject({ path: '/', httpOnly: true });

    const regenerated = await request(app).post('/regenerate').set('Cookie', cookie);
    expect(regenerated.body.id).not.toBe(first.body.id);
    expect(await store.get(first.body.id)).toBeNull();

    const again = cookieOf(await request(app).post('/set/c/3'));
    expect((await request(app).post('/destroy').set('Cookie', again)).body.ok).toBe(true);
    expect((await request(app).get('/all').set('Cookie', again)).body.data).toEqual({});
  });

  test('all, ids, length, touch, destroy and clear without SCAN', async () => {
    const kit = makeKit();
    const store = kit.sessionStore({ ttl: '1 h' });
    const cookie = { originalMaxAge: null, expires: null, path: '/', httpOnly: true };
    await store.set('sid-one', { cookie, n: 1 });
    await new Promise<void>((resolve, reject) =>
      store.set('sid-two', { cookie, n: 2 }, (err) => (err ? reject(err) : resolve())),
    );
    await store.set('sid-two', { cookie, n: 22 });
    expect((await store.ids()).sort()).toEqual(['sid-one', 'sid-two']);
    expect(await store.length()).toBe(2);
    const all = await store.all();
    expect(all.map((s) => [s.id, s.n]).sort()).toEqual([
      ['sid-one', 1],
      ['sid-two', 22],
    ]);
    await store.touch('sid-one', { cookie });
    await store.destroy('sid-one');
    expect(await store.get('sid-one')).toBeNull();
    expect(await store.length()).toBe(1);
    // A session whose cookie expires soon is stored with that time to live.
    await store.set('sid-short', { cookie: { ...cookie, expires: new Date(Date.now() + 200).toISOString() } });
    expect(await store.length()).toBe(2);
    await sleep(400);
    expect(await store.get('sid-short')).toBeNull();
    expect(await store.length()).toBe(1);
    await new Promise<void>((resolve, reject) => store.clear((err) => (err ? reject(err) : resolve())));
    expect(await store.length()).toBe(0);
    expect(await store.get('sid-two')).toBeNull();
  });

  test('parallel requests: express-session loses one change, kit.session() keeps both', async () => {
    const kit = makeKit();
    const legacy = expressSessionApp(kit);
    const legacyCookie = cookieOf(await request(legacy).post('/set/start/1'));
    // Both load the same state before either writes; b writes first, then a.
    await Promise.all([
      request(legacy).post('/race/a/A?after=50').set('Cookie', legacyCookie),
      request(legacy).post('/race/b/B').set('Cookie', legacyCookie),
    ]);
    const legacyData = (await request(legacy).get('/all').set('Cookie', legacyCookie)).body.data;
    // Whole-object writes: the later write carries the state it loaded, without the other request's field.
    expect(legacyData).toEqual({ start: '1', a: 'A' });

    const app = sessionApp(kit);
    const cookie = setCookie(await request(app).post('/set/start/1')) as string;
    await Promise.all([
      request(app).post('/race/a/A?after=50').set('Cookie', cookie),
      request(app).post('/race/b/B').set('Cookie', cookie),
    ]);
    expect((await request(app).get('/all').set('Cookie', cookie)).body.data).toEqual({ start: '1', a: 'A', b: 'B' });
  });
});
