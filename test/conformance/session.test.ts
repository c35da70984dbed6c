// Sessions, unchanged on every store: laziness, field-level writes under parallel requests, idle and absolute
// expiry, secret rotation, login / list / revoke / revoke-all, workspace isolation and bad cookies.

import { createHmac } from 'node:crypto';
import express from 'express';
import request from 'supertest';
import { describeForEachStore } from '../support/stores';
import { fullSetCookie, recordStoreCalls, S, SECRET, sessionApp, setCookie, sleep } from '../session/helpers';

function signed(id: string, secret = SECRET): string {
  return `rk.sid=${id}.${createHmac('sha256', secret).update(id).digest('base64url')}`;
}

describeForEachStore('session', ({ tier, makeKit }) => {
  test('a request that never touches req.session costs no store call and sets no cookie', async () => {
    const kit = makeKit();
    const app = sessionApp(kit);
    const created = await request(app).post('/set/a/1');
    const cookie = setCookie(created) as string;
    expect(cookie).toMatch(/^rk\.sid=[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);

    const calls = recordStoreCalls(kit);
    const none = await request(app).get('/ping');
    expect(none.status).toBe(200);
    expect(setCookie(none)).toBeUndefined();
    expect(calls).toEqual([]);

    // An untouched new session is never stored and never gets a cookie.
    const read = await request(app).get('/get/a');
    expect(read.body.value).toBeNull();
    expect(setCookie(read)).toBeUndefined();
    expect(calls).toEqual([]);
  });

  test('a request that reads but does not change the session costs one read and no write', async () => {
    const kit = makeKit();
    const app = sessionApp(kit);
    const cookie = setCookie(await request(app).post('/set/a/1')) as string;
    const calls = recordStoreCalls(kit);
    const res = await request(app).get('/get/a').set('Cookie', cookie);
    expect(res.body.value).toBe('1');
    expect(setCookie(res)).toBeUndefined();
    expect(calls).toEqual(tier === 'memory' ? ['get'] : ['command:HGETALL']);
  });

  test('a change writes only the changed and deleted fields', async () => {
    const kit = makeKit();
    const app = sessionApp(kit);
    const cookie = setCookie(await request(app).post('/set/a/1')) as string;
    await request(app).post('/set/b/2').set('Cookie', cookie);
    const calls = recordStoreCalls(kit);
    await request(app).post('/del/a').set('Cookie', cookie);
    expect(calls.filter((c) => c !== 'get' && c !== 'command:HGETALL')).toEqual(
      tier === 'memory' ? ['set'] : ['script:save'],
    );
    const all = await request(app).get('/all').set('Cookie', cookie);
    expect(all.body.data).toEqual({ b: '2' });
  });

  test('two parallel requests that change different fields both keep their change', async () => {
    const kit = makeKit();
    const app = sessionApp(kit);
    const cookie = setCookie(await request(app).post('/set/start/1')) as string;
    // Both load the same state before either writes (they meet after loading); b writes first, then a.
    await Promise.all([
      request(app).post('/race/a/A?after=50').set('Cookie', cookie),
      request(app).post('/race/b/B').set('Cookie', cookie),
    ]);
    const all = await request(app).get('/all').set('Cookie', cookie);
    expect(all.body.data).toEqual({ start: '1', a: 'A', b: 'B' });
  });

  // ioredis-mock's TIME is not the wall clock (seconds rounded, micros from hrtime): off by up to a second per
  // call, so sub-second timeouts cannot be tested on it. Real Redis, Cluster, Upstash and memory run them.
  const timed = tier === 'ioredis-mock' ? test.skip : test;

  timed('idle timeout: activity keeps the session alive, inactivity ends it on the store side', async () => {
    const kit = makeKit();
    const app = sessionApp(kit, { idleTimeout: 1200, absoluteTimeout: '1 h', touchInterval: 50 });
    const cookie = setCookie(await request(app).post('/set/a/1')) as string;
    // 1.6 s of activity, longer than the idle timeout, with gaps well inside it (room for a slow machine).
    for (let i = 0; i < 4; i++) {
      await sleep(400);
      expect((await request(app).get('/get/a').set('Cookie', cookie)).body.value).toBe('1');
    }
    await sleep(1500);
    const res = await request(app).get('/get/a').set('Cookie', cookie);
    expect(res.body.value).toBeNull();
    // The session's id is not adopted by the new, empty session.
    expect(res.body.id).not.toBe(cookie.slice(7, 29));
  });

  timed('reads touch the session at most once per touch interval', async () => {
    const kit = makeKit();
    const app = sessionApp(kit, { idleTimeout: '1 h', touchInterval: 300 });
    const cookie = setCookie(await request(app).post('/login/tom')) as string;
    const seen = async () => (await kit.sessions.list('tom'))[0]?.lastSeen as number;
    const first = await seen();
    const calls = recordStoreCalls(kit);
    const read = async () => {
      const from = calls.length;
      await request(app).get('/get/a').set('Cookie', cookie);
      return calls.slice(from);
    };
    // Within the interval a read is one plain read; once it has passed, one touch goes with it.
    const single = [tier === 'memory' ? 'get' : 'command:HGETALL'];
    expect(await read()).toEqual(single);
    expect(await read()).toEqual(single);
    expect(await seen()).toBe(first);
    await sleep(400);
    // (The embedded store's touch stores the session again with its new expiry, in process: not a round trip.)
    expect(await read()).toEqual(tier === 'memory' ? ['get', 'set'] : ['command:HGETALL', 'script:touch']);
    // The touch is not waited for by the request: give it a moment to land (a read racing it may touch again).
    let moved = false;
    for (let i = 0; i < 40 && !moved; i++) {
      moved = ((await seen()) as number) > (first as number);
      if (!moved) await sleep(25);
    }
    expect(moved).toBe(true);
    expect(await read()).toEqual(single);
  });

  timed('absolute lifetime ends an active session', async () => {
    const kit = makeKit();
    const app = sessionApp(kit, { idleTimeout: 1000, absoluteTimeout: 1200, touchInterval: 50 });
    const cookie = setCookie(await request(app).post('/set/a/1')) as string;
    let alive = true;
    const started = Date.now();
    while (Date.now() - started < 3000 && alive) {
      await sleep(150);
      alive = (await request(app).get('/get/a').set('Cookie', cookie)).body.value === '1';
    }
    expect(alive).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
  });

  test('secret rotation: sign with the first secret, accept all; a dropped secret no longer verifies', async () => {
    const kit = makeKit();
    const old = sessionApp(kit, { secret: 'old-secret-0123456789abcdef0123' });
    const rotated = sessionApp(kit, { secret: ['new-secret-0123456789abcdef0123', 'old-secret-0123456789abcdef0123'] });
    const dropped = sessionApp(kit, { secret: 'new-secret-0123456789abcdef0123' });
    const oldCookie = setCookie(await request(old).post('/set/a/1')) as string;
    expect((await request(rotated).get('/get/a').set('Cookie', oldCookie)).body.value).toBe('1');
    expect((await request(dropped).get('/get/a').set('Cookie', oldCookie)).body.value).toBeNull();

    const id = oldCookie.slice(7, 29);
    const res = await request(rotated).post('/login/u1').set('Cookie', oldCookie);
    const newCookie = setCookie(res) as string;
    expect(newCookie).toBe(signed(res.body.id, 'new-secret-0123456789abcdef0123'));
    expect(res.body.id).not.toBe(id);
    expect((await request(dropped).get('/get/a').set('Cookie', newCookie)).body.value).toBe('1');
  });

  test('login() gives a new id, keeps the data, and the old id is dead (fixation defence)', async () => {
    const kit = makeKit();
    const app = sessionApp(kit);
    const before = setCookie(await request(app).post('/set/cart/3')) as string;
    const res = await request(app).post('/login/alice').set('Cookie', before).set('User-Agent', 'phone');
    const after = setCookie(res) as string;
    expect(after).toBeDefined();
    expect(after).not.toBe(before);
    expect((await request(app).get('/get/cart').set('Cookie', after)).body.value).toBe('3');
    expect((await request(app).get('/get/cart').set('Cookie', before)).body.value).toBeNull();
    const list = await kit.sessions.list('alice');
    expect(list.map((s) => s.id)).toEqual([res.body.id]);
    expect(list[0]?.userAgent).toBe('phone');
    expect(list[0]?.ip).toMatch(/127\.0\.0\.1/);
    expect(list[0]?.created).toBeGreaterThan(Date.now() - 60_000);
    expect(list[0]?.lastSeen).toBeGreaterThanOrEqual(list[0]?.created as number);
  });

  test("a login whose session is too large to store fails and leaves nothing in the user's index", async () => {
    const kit = makeKit();
    const app = express();
    app.use(kit.session({ secret: SECRET, maxBytes: 1024 }));
    app.post('/big-login', async (req, res) => {
      S(req).big = 'x'.repeat(2000);
      try {
        await S(req).login('dora');
        res.json({ ok: true });
      } catch (error) {
        res.status(413).json({ code: (error as { code?: string }).code });
      }
    });
    const calls = recordStoreCalls(kit);
    const res = await request(app).post('/big-login');
    expect(res.status).toBe(413);
    expect(res.body.code).toBe('ERR_KIT_SESSION_TOO_LARGE');
    // Refused before any store call: no index entry for a session that was never stored.
    expect(calls).toEqual([]);
    expect(await kit.sessions.list('dora')).toEqual([]);
  });

  test('list, revoke one, and revoke all except the current one ("log out everywhere")', async () => {
    const kit = makeKit();
    const app = sessionApp(kit);
    const devices: Array<{ cookie: string; id: string }> = [];
    for (const agent of ['laptop', 'phone', 'tablet']) {
      const res = await request(app).post('/login/bob').set('User-Agent', agent);
      devices.push({ cookie: setCookie(res) as string, id: res.body.id });
      await request(app)
        .post('/set/device/x')
        .set('Cookie', setCookie(res) as string);
    }
    const other = setCookie(await request(app).post('/login/carol')) as string;
    const listed = await kit.sessions.list('bob');
    expect(listed.map((s) => s.userAgent).sort()).toEqual(['laptop', 'phone', 'tablet']);

    const [laptop, phone, tablet] = devices as [(typeof devices)[0], (typeof devices)[0], (typeof devices)[0]];
    expect(await kit.sessions.revoke(phone.id)).toBe(true);
    expect(await kit.sessions.revoke(phone.id)).toBe(false);
    expect(await kit.sessions.revoke('not an id')).toBe(false);
    expect((await request(app).get('/get/device').set('Cookie', phone.cookie)).body.value).toBeNull();
    expect((await kit.sessions.list('bob')).length).toBe(2);

    expect(await kit.sessions.revokeAll('bob', { except: laptop.id })).toBe(1);
    expect((await request(app).get('/get/device').set('Cookie', tablet.cookie)).body.value).toBeNull();
    expect((await request(app).get('/get/device').set('Cookie', laptop.cookie)).body.value).toBe('x');
    expect((await kit.sessions.list('bob')).map((s) => s.id)).toEqual([laptop.id]);
    expect((await kit.sessions.list('carol')).length).toBe(1);
    expect((await request(app).get('/all').set('Cookie', other)).body.id).toBe(other.slice(7, 29));

    expect(await kit.sessions.revokeAll('bob')).toBe(1);
    expect(await kit.sessions.list('bob')).toEqual([]);
  });

  test('a write from a request whose session was revoked meanwhile does not bring it back', async () => {
    const kit = makeKit();
    let loaded!: () => void;
    const started = new Promise<void>((resolve) => {
      loaded = resolve;
    });
    let revoked!: () => void;
    const done = new Promise<void>((resolve) => {
      revoked = resolve;
    });
    const app = sessionApp(kit, {}, (a) => {
      a.post('/slow', kit.session({ secret: SECRET }), async (req, res) => {
        const s = S(req);
        loaded();
        await done;
        s.late = 1;
        res.json({ id: s.id });
      });
    });
    const cookie = setCookie(await request(app).post('/login/dan')) as string;
    const slow = request(app)
      .post('/slow')
      .set('Cookie', cookie)
      .then((r) => r);
    await started;
    await kit.sessions.revokeAll('dan');
    revoked();
    const answered = await slow;
    expect(answered.status).toBe(200);
    // No new cookie either way: the old one now reads as no session.
    expect(setCookie(answered)).toBeUndefined();
    expect((await request(app).get('/all').set('Cookie', cookie)).body.data).toEqual({});
    expect(await kit.sessions.list('dan')).toEqual([]);
  });

  test('revoke-all racing a login: the login that indexed its id first does not survive', async () => {
    if (tier === 'memory') return; // the race needs a pause between the two store calls of a login (Redis only)
    const kit = makeKit();
    const app = sessionApp(kit);
    const store = kit.store as unknown as { script: (s: { name: string }, k: string[], a: string[]) => unknown };
    const original = store.script.bind(store);
    store.script = async (script, keys, args) => {
      // After the login indexed its new id and before it creates the session: log out everywhere.
      if (script.name === 'save' && args[0] === 'c') await kit.sessions.revokeAll('erin');
      return original(script, keys, args);
    };
    const res = await request(app).post('/login/erin');
    expect(res.status).toBe(401);
    store.script = original;
    expect(await kit.sessions.list('erin')).toEqual([]);
  });

  test('listing racing a login: the id the login indexed is not forgotten, so log out everywhere still ends it', async () => {
    if (tier === 'memory') return; // the race needs a pause between the two store calls of a login (Redis only)
    const kit = makeKit();
    const app = sessionApp(kit);
    const store = kit.store as unknown as { script: (s: { name: string }, k: string[], a: string[]) => unknown };
    const original = store.script.bind(store);
    let listedDuring: unknown[] | undefined;
    store.script = async (script, keys, args) => {
      // After the login indexed its new id and before it creates the session, the user lists their sessions
      // (another tab): the new id has no session data yet and must not be dropped from the index.
      if (script.name === 'save' && args[0] === 'c') listedDuring = await kit.sessions.list('fay');
      return original(script, keys, args);
    };
    const res = await request(app).post('/login/fay');
    store.script = original;
    expect(res.status).toBe(200);
    expect(listedDuring).toEqual([]);
    expect((await kit.sessions.list('fay')).map((s) => s.id)).toEqual([res.body.id]);
    expect(await kit.sessions.revokeAll('fay')).toBe(1);
    expect(await kit.sessions.list('fay')).toEqual([]);
  });

  test('a session is bound to its workspace; keys are namespaced per workspace', async () => {
    const kit = makeKit();
    const app = sessionApp(kit, { workspace: { header: 'x-workspace' } });
    const cookie = setCookie(await request(app).post('/set/secret/acme-data').set('x-workspace', 'acme')) as string;
    const same = await request(app).get('/get/secret').set('Cookie', cookie).set('x-workspace', 'acme');
    expect(same.body.value).toBe('acme-data');
    const other = await request(app).get('/get/secret').set('Cookie', cookie).set('x-workspace', 'globex');
    expect(other.body.value).toBeNull();
    const none = await request(app).get('/get/secret').set('Cookie', cookie);
    expect(none.body.value).toBeNull();
    // Writing in the other workspace makes a new session with a new id; the acme one is untouched.
    const write = await request(app).post('/set/secret/globex-data').set('Cookie', cookie).set('x-workspace', 'globex');
    expect(write.body.id).not.toBe(same.body.id);
    expect((await request(app).get('/get/secret').set('Cookie', cookie).set('x-workspace', 'acme')).body.value).toBe(
      'acme-data',
    );
    // Per-user operations are per workspace too.
    const login = await request(app).post('/login/u7').set('x-workspace', 'acme');
    expect((await kit.sessions.list('u7', { workspace: 'acme' })).map((s) => s.id)).toEqual([login.body.id]);
    expect(await kit.sessions.list('u7', { workspace: 'globex' })).toEqual([]);
    expect(await kit.sessions.list('u7')).toEqual([]);
  });

  test('keys: prefix:session:{workspace:id}, nothing else for a plain session', async () => {
    if (tier !== 'standalone') return; // KEYS is a test-only look at one server's keyspace
    const kit = makeKit();
    const app = sessionApp(kit, { workspace: { header: 'x-workspace' } });
    const a = await request(app).post('/set/a/1').set('x-workspace', 'acme');
    const b = await request(app).post('/set/a/1').set('x-workspace', 'we/ird {tag}');
    await request(app).post('/set/a/1');
    const store = kit.store as unknown as { command: (...a: string[]) => Promise<string[]> };
    const prefix = kit.store.keys.prefix;
    const keys = (await store.command('KEYS', `${prefix}:*`)).sort();
    expect(keys).toHaveLength(3);
    expect(keys).toContain(`${prefix}:session:{acme:${a.body.id}}`);
    expect(keys.find((k) => k.endsWith(`${b.body.id}}`))).toMatch(new RegExp(`^${prefix}:session:\\{~[\\w-]{24}:`));
    expect(keys.find((k) => k.startsWith(`${prefix}:session:{_:`))).toBeDefined();
    const fields = await store.command('HKEYS', `${prefix}:session:{acme:${a.body.id}}`);
    expect(fields.sort()).toEqual(['@c', '@ip', '@s', 'a']);
  });

  test('bad cookies read as no session, never a 500, and an unknown id is never adopted', async () => {
    const kit = makeKit();
    const app = sessionApp(kit);
    const good = setCookie(await request(app).post('/set/a/1')) as string;
    const value = good.slice('rk.sid='.length);
    const id = value.slice(0, 22);
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    const bad = [
      `rk.sid=${flip(value, 3)}`, // tampered id
      `rk.sid=${flip(value, value.length - 2)}`, // tampered signature
      `rk.sid=${value.slice(0, -5)}`, // truncated
      `rk.sid=${value}${'A'.repeat(9000)}`, // oversized
      `rk.sid=${'x'.repeat(8200)}`,
      `${good}; rk.sid=${value}`, // duplicated
      `rk.sid=${value}; other=1; rk.sid=${signed('AAAAAAAAAAAAAAAAAAAAAA').slice(7)}`,
      `rk.sid=${value.slice(0, 10)}é${value.slice(11)}`, // non-ASCII
      `rk.sid="${value}"`,
      `rk.sid=${id}`,
      'rk.sid=',
    ];
    for (const cookie of bad) {
      const res = await request(app).get('/get/a').set('Cookie', Buffer.from(cookie, 'latin1').toString('latin1'));
      expect(res.status).toBe(200);
      expect(res.body.value).toBeNull();
    }
    // A correctly signed id that does not exist: the new session gets a fresh id.
    const forged = signed('forgedForgedForgedAAAA');
    const res = await request(app).post('/set/x/1').set('Cookie', forged);
    expect(res.body.id).not.toBe('forgedForgedForgedAAAA');
    expect(setCookie(res)).not.toBe(forged);
    // And the good cookie still works next to an unrelated cookie.
    expect((await request(app).get('/get/a').set('Cookie', `theme=dark; ${good}`)).body.value).toBe('1');
  });

  test('regenerate, destroy, save and reload work with callbacks and promises', async () => {
    const kit = makeKit();
    const app = express();
    app.use(kit.session({ secret: SECRET }));
    app.post('/flow', async (req, res, next) => {
      try {
        const s = S(req);
        s.n = 1;
        await s.save();
        await new Promise<void>((resolve, reject) => s.save((err) => (err ? reject(err) : resolve())));
        s.n = 2;
        await s.reload(); // drops the unsaved change
        const afterReload = S(req).n;
        await new Promise<void>((resolve, reject) => S(req).regenerate((err) => (err ? reject(err) : resolve())));
        S(req).m = 'fresh';
        res.json({ afterReload, keys: Object.keys(S(req)), touched: S(req).touch() === S(req) });
      } catch (error) {
        next(error);
      }
    });
    app.get('/all', (req, res) => {
      res.json({ data: { ...S(req) } });
    });
    app.post('/destroy', async (req, res) => {
      await S(req).destroy();
      res.json({ gone: S(req) === undefined });
    });
    const flow = await request(app).post('/flow');
    expect(flow.body).toEqual({ afterReload: 1, keys: ['m'], touched: true });
    const cookie = setCookie(flow) as string;
    expect((await request(app).get('/all').set('Cookie', cookie)).body.data).toEqual({ m: 'fresh' });
    const destroyed = await request(app).post('/destroy').set('Cookie', cookie);
    expect(destroyed.body.gone).toBe(true);
    expect(fullSetCookie(destroyed)).toMatch(/Max-Age=0/);
    expect((await request(app).get('/all').set('Cookie', cookie)).body.data).toEqual({});
  });

  test('values keep their JSON types; fields named like metadata or methods are data', async () => {
    const kit = makeKit();
    const app = express();
    app.use(kit.session({ secret: SECRET }));
    app.post('/w', (req, res) => {
      Object.assign(S(req), { '@c': 'mine', '@@x': 1, obj: { a: [1, 'two', null] }, num: 3.5, yes: true });
      res.end();
    });
    app.get('/r', (req, res) => {
      res.json({ ...S(req) });
    });
    const cookie = setCookie(await request(app).post('/w')) as string;
    expect((await request(app).get('/r').set('Cookie', cookie)).body).toEqual({
      '@c': 'mine',
      '@@x': 1,
      obj: { a: [1, 'two', null] },
      num: 3.5,
      yes: true,
    });
  });
});
