// The response cache, unchanged on every store: hits and misses, Vary, conditionals, HEAD, coalescing, the stale
// windows, invalidation seen by another instance, and bad input that must stay bounded.

import express, { type Express, type RequestHandler } from 'express';
import request from 'supertest';
import { safeId } from '../../plugin/core/keys';
import type { RedisKit } from '../../plugin/index';
import { describeForEachStore, type TierContext } from '../support/stores';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function app(route: string, cache: RequestHandler, handler: RequestHandler): Express {
  const a = express();
  a.get(route, cache, handler);
  return a;
}

/** Two instances of one app on one store (two kits, two connections). On the memory tier: one kit twice. */
function twoKits(ctx: TierContext): [RedisKit, RedisKit] {
  // A generous command timeout: on a loaded test machine a 1 s timeout can expire, and the cache then (rightly)
  // bypasses the store, which is not what these tests are about.
  const a = ctx.makeKit({ commandTimeout: '5 s' });
  if (ctx.tier === 'memory') return [a, a];
  const b = ctx.makeKit({ prefix: a.store.keys.prefix, commandTimeout: '5 s' });
  return [a, b];
}

describeForEachStore('response cache', (ctx) => {
  const { tier, makeKit } = ctx;
  // ioredis-mock's TIME is whole seconds (rounded) plus a microsecond field taken from process.hrtime(), not from
  // the wall clock, so its clock jumps back and forth by up to a second: sub-second expiry cannot be tested on it.
  const subSecondClock = tier === 'ioredis-mock' ? test.skip : test;

  test('a miss is stored, then served with Age and Cache-Status; query order does not matter', async () => {
    const kit = makeKit();
    let calls = 0;
    const a = app('/items', kit.cache({ ttl: '30 s' }), (req, res) => {
      calls++;
      res.json({ calls, q: req.query });
    });
    const first = await request(a).get('/items?b=2&a=1');
    expect(first.headers['cache-status']).toBe('express-redis-kit; fwd=miss');
    const second = await request(a).get('/items?a=1&b=%32');
    // Loose bounds: on a loaded machine seconds can pass between the two requests.
    expect(second.headers['cache-status']).toMatch(/^express-redis-kit; hit; ttl=(2\d|30)$/);
    const ttl = Number(String(second.headers['cache-status']).split('ttl=')[1]);
    expect(ttl + Number(second.headers.age)).toBeGreaterThanOrEqual(29);
    expect(Number(second.headers.age)).toBeLessThan(10);
    expect(second.body).toEqual(first.body);
    expect(second.headers.etag).toMatch(/^"[A-Za-z0-9_-]{27}"$/);
    expect(calls).toBe(1);
  });

  test('Vary: each Accept-Language gets its own body', async () => {
    const kit = makeKit();
    let calls = 0;
    const a = app('/greet', kit.cache(), (req, res) => {
      calls++;
      res.vary('Accept-Language');
      res.send(req.get('accept-language') === 'fr' ? 'bonjour' : 'hello');
    });
    expect((await request(a).get('/greet').set('Accept-Language', 'en')).text).toBe('hello');
    expect((await request(a).get('/greet').set('Accept-Language', 'fr')).text).toBe('bonjour');
    const en = await request(a).get('/greet').set('Accept-Language', 'en');
    const fr = await request(a).get('/greet').set('Accept-Language', 'fr');
    expect([en.text, fr.text]).toEqual(['hello', 'bonjour']);
    expect(en.headers['cache-status']).toMatch(/hit/);
    expect(fr.headers['cache-status']).toMatch(/hit/);
    expect(calls).toBe(2);
  });

  test('If-None-Match (list, *) and If-Modified-Since answer 304 from the cache; HEAD from a cached GET', async () => {
    const kit = makeKit();
    let calls = 0;
    const a = app('/doc', kit.cache(), (_req, res) => {
      calls++;
      res.type('text').send('document body');
    });
    const { headers } = await request(a).get('/doc');
    const hit = await request(a).get('/doc');
    const etag = hit.headers.etag as string;
    expect((await request(a).get('/doc').set('If-None-Match', `"nope", W/${etag}`)).status).toBe(304);
    expect((await request(a).get('/doc').set('If-None-Match', '*')).status).toBe(304);
    expect((await request(a).get('/doc').set('If-None-Match', '"other"')).status).toBe(200);
    const lm = hit.headers['last-modified'] as string;
    expect((await request(a).get('/doc').set('If-Modified-Since', lm)).status).toBe(304);
    expect((await request(a).get('/doc').set('If-Modified-Since', 'Thu, 01 Jan 1970 00:00:00 GMT')).status).toBe(200);
    const head = await request(a).head('/doc');
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String('document body'.length));
    expect(head.headers['cache-status']).toMatch(/hit/);
    expect(headers['cache-status']).toMatch(/fwd=miss/);
    expect(calls).toBe(1);
  });

  test('concurrent misses on one cold key across two instances run the handler once', async () => {
    const [k1, k2] = twoKits(ctx);
    let calls = 0;
    const handler: RequestHandler = async (_req, res) => {
      calls++;
      await sleep(150);
      res.json({ ok: true });
    };
    const a1 = app('/cold', k1.cache(), handler);
    const a2 = app('/cold', k2.cache(), handler);
    // Let the instances subscribe to fill notices before the burst.
    await sleep(100);
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => request(i % 2 ? a1 : a2).get('/cold')));
    expect(replies.every((r) => r.status === 200 && r.body.ok === true)).toBe(true);
    const storeErrors = k1.cache.stats().storeErrors + (k2 === k1 ? 0 : k2.cache.stats().storeErrors);
    expect({ calls, storeErrors }).toEqual({ calls: 1, storeErrors: 0 });
    // Each of the others either waited for that fill or (arriving after it) found it stored.
    const statuses = replies.map((r) => r.headers['cache-status'] as string);
    expect(statuses.filter((s) => /fwd=miss$/.test(s))).toHaveLength(1);
    expect(statuses.filter((s) => /collapsed|hit/.test(s))).toHaveLength(19);
    expect(statuses.some((s) => /collapsed/.test(s))).toBe(true);
  });

  test('when the filler cannot store (private), waiters run their own handlers at once', async () => {
    const [k1, k2] = twoKits(ctx);
    let calls = 0;
    const handler: RequestHandler = async (_req, res) => {
      calls++;
      await sleep(100);
      res.set('Cache-Control', 'private').json({ mine: true });
    };
    const a1 = app('/private', k1.cache({ coalesce: { wait: '10 s' } }), handler);
    const a2 = app('/private', k2.cache({ coalesce: { wait: '10 s' } }), handler);
    await sleep(100);
    const started = Date.now();
    const replies = await Promise.all(Array.from({ length: 6 }, (_, i) => request(i % 2 ? a1 : a2).get('/private')));
    // Not serialised one after another, and never waiting out the 10 s bound.
    expect(Date.now() - started).toBeLessThan(5000);
    expect(calls).toBe(6);
    for (const r of replies) expect(r.headers['cache-status']).toMatch(/fwd=miss(; collapsed)?; detail=private$/);
  });

  test('a filler that never answers holds the others only until its lease expires, not for the whole wait', async () => {
    const [k1, k2] = twoKits(ctx);
    let calls = 0;
    let unblock: () => void = () => undefined;
    const blocked = new Promise<void>((r) => {
      unblock = r;
    });
    const handler: RequestHandler = async (_req, res) => {
      // The first filler hangs (a stuck process: no store, no announcement); the next one answers.
      if (calls++ === 0) await blocked;
      res.json({ call: calls });
    };
    const options = { coalesce: { lease: '1 s', wait: '10 s' } } as const;
    const a1 = app('/stuck', k1.cache(options), handler);
    const a2 = app('/stuck', k2.cache(options), handler);
    await sleep(100);
    const stuck = request(a1)
      .get('/stuck')
      .then((r) => r);
    await sleep(100);
    const started = Date.now();
    const second = await request(a2).get('/stuck');
    const waited = Date.now() - started;
    unblock();
    await stuck;
    expect(second.status).toBe(200);
    // The lease expires after 1 s and the waiter looks again within a second: well under the 10 s bound.
    expect(waited).toBeLessThan(5000);
    expect(second.headers['cache-status']).toMatch(/fwd=miss/);
  });

  test('invalidation by tag on instance A is seen on instance B, even through its hot layer', async () => {
    const [k1, k2] = twoKits(ctx);
    let version = 1;
    const handler: RequestHandler = (_req, res) => {
      res.json({ version });
    };
    const hotLayer = k2.store.canSubscribe;
    const a1 = app('/p/:id', k1.cache({ tags: (req) => [`product:${req.params.id}`] }), handler);
    const a2 = app('/p/:id', k2.cache({ tags: (req) => [`product:${req.params.id}`], hotLayer }), handler);
    await sleep(100);
    expect((await request(a1).get('/p/1')).body.version).toBe(1);
    expect((await request(a2).get('/p/1')).body.version).toBe(1);
    const again = await request(a2).get('/p/1');
    if (hotLayer) expect(again.headers['cache-status']).toMatch(/detail=memory/);
    version = 2;
    expect((await k1.cache.invalidate({ tags: ['product:1'] })).deleted).toBe(1);
    // The store copy is gone when invalidate() resolves; B's in-process copy goes when the pub/sub message lands
    // on B's own connection. Poll briefly rather than assume a delivery time.
    let seen = (await request(a2).get('/p/1')).body.version;
    for (let i = 0; i < 50 && seen !== 2 && hotLayer; i++) {
      await sleep(20);
      seen = (await request(a2).get('/p/1')).body.version;
    }
    expect(seen).toBe(2);
  });

  test('the hot layer answers from process memory where the store can subscribe, and is refused where not', async () => {
    const warnings: unknown[] = [];
    const logger = { info() {}, error() {}, warn: (o: unknown) => warnings.push(o) };
    const kit = makeKit({ logger });
    let calls = 0;
    const a = app('/h', kit.cache({ hotLayer: { maxEntries: 10 } }), (_req, res) => {
      calls++;
      res.json({ calls });
    });
    await sleep(50);
    const statuses: string[] = [];
    // Until its subscription is confirmed an instance does not use its hot layer; allow a loaded machine time.
    for (let i = 0; i < 20 && !statuses.at(-1)?.includes('memory'); i++) {
      statuses.push(String((await request(a).get('/h')).headers['cache-status']));
      if (i > 2) await sleep(25);
    }
    expect(calls).toBe(1);
    if (kit.store.canSubscribe) {
      expect(statuses.at(-1)).toMatch(/hit; detail=memory/);
      expect(kit.cache.stats().hotHits).toBeGreaterThan(0);
    } else {
      expect(statuses.some((s) => s.includes('memory'))).toBe(false);
      expect(warnings).toEqual([expect.objectContaining({ code: 'ERR_KIT_CACHE_HOT_LAYER' })]);
    }
  });

  test('the Vary spec outlives every variant (a short-lived variant does not shorten it)', async () => {
    const kit = makeKit();
    const a = app('/v', kit.cache(), (req, res) => {
      res.vary('X-V');
      res.set('Cache-Control', req.get('x-v') === 'long' ? 'max-age=600' : 'max-age=2');
      res.json({ v: req.get('x-v') });
    });
    await request(a).get('/v').set('X-V', 'long');
    await sleep(20);
    await request(a).get('/v').set('X-V', 'short');
    await sleep(20);
    const specKey = `${kit.store.keys.prefix}:rc:{${safeId('GET /v')}}:vary`;
    expect(await kit.store.pttl(specKey)).toBeGreaterThan(500_000);
  });

  subSecondClock(
    'the variant index of a key that stays cached holds its live variants only; a purge reads it',
    async () => {
      const kit = makeKit();
      const a = app('/many', kit.cache({ vary: ['x-v'] }), (req, res) => {
        // The 'old' variants live a second; the others ten minutes, and keep the key (and its index) alive.
        res.set('Cache-Control', String(req.get('x-v')).startsWith('old') ? 'max-age=1' : 'max-age=600');
        res.json({ v: req.get('x-v') });
      });
      await request(a).get('/many').set('x-v', 'long');
      for (let i = 0; i < 60; i++) await request(a).get('/many').set('x-v', `old${i}`);
      // Past the entries' second and the one-second margin the Redis script allows for clocks.
      await sleep(2_300);
      for (let i = 0; i < 60; i++) await request(a).get('/many').set('x-v', `new${i}`);
      const head = `${kit.store.keys.prefix}:rc:{${safeId('GET /many')}}`;
      const store = kit.store as unknown as {
        mode: string;
        engine?: { get(k: string): unknown };
        command(...args: unknown[]): Promise<unknown>;
      };
      const indexed = async () =>
        store.mode === 'memory'
          ? ((store.engine?.get(`${head}:vz`) as { members: Map<string, number> } | undefined)?.members.size ?? 0)
          : Number(await store.command('ZCARD', `${head}:vz`));
      // 61 live variants; the 60 expired ones are no longer listed.
      expect(await indexed()).toBe(61);
      expect((await request(a).get('/many').set('x-v', 'new7')).headers['cache-status']).toMatch(/hit/);
      if (store.mode !== 'memory') {
        // An earlier version's plain set of variants (an instance still running it during a rolling deploy).
        await store.command('SET', `${head}:e:legacy`, 'x', 'PX', 60_000);
        await store.command('SADD', `${head}:variants`, `${head}:e:legacy`);
      }
      const legacy = store.mode === 'memory' ? 0 : 1;
      expect((await kit.cache.invalidate({ key: '/many' })).deleted).toBe(61 + legacy);
      expect(await indexed()).toBe(0);
      if (store.mode !== 'memory') {
        const left = await store.command('EXISTS', `${head}:variants`, `${head}:e:legacy`, `${head}:vary`);
        expect(Number(left)).toBe(0);
      }
      expect((await request(a).get('/many').set('x-v', 'new7')).headers['cache-status']).toMatch(/fwd=miss/);
    },
  );

  test('invalidate by key (every variant) and by path prefix', async () => {
    const kit = makeKit();
    let n = 0;
    const a = express();
    a.get(/^\/shop/, kit.cache({ vary: ['x-v'] }), (req, res) => {
      n++;
      res.json({ n, path: req.path });
    });
    await request(a).get('/shop/a?x=1').set('x-v', '1');
    await request(a).get('/shop/a?x=1').set('x-v', '2');
    await request(a).get('/shop/b/c');
    await request(a).get('/shopping');
    expect(n).toBe(4);
    expect((await kit.cache.invalidate({ key: '/shop/a?x=1' })).deleted).toBe(2);
    await request(a).get('/shop/a?x=1').set('x-v', '1');
    expect(n).toBe(5);
    expect((await kit.cache.invalidate({ prefix: '/shop' })).deleted).toBe(2);
    expect((await request(a).get('/shop/b/c')).headers['cache-status']).toMatch(/fwd=miss/);
    expect((await request(a).get('/shopping')).headers['cache-status']).toMatch(/hit/);
  });

  subSecondClock('stale-while-revalidate: the stale copy at once, one background refresh', async () => {
    const kit = makeKit();
    let version = 1;
    let calls = 0;
    const a = app('/swr', kit.cache({ ttl: 300, staleWhileRevalidate: '10 s' }), async (_req, res) => {
      calls++;
      const v = version;
      await sleep(100);
      // The refreshed copy stays fresh longer, so the check below does not race its expiry.
      if (v === 2) res.set('Cache-Control', 'max-age=30');
      res.json({ v });
    });
    await request(a).get('/swr');
    version = 2;
    await sleep(450);
    const stale = await Promise.all(Array.from({ length: 5 }, () => request(a).get('/swr')));
    for (const r of stale) {
      expect(r.body.v).toBe(1);
      expect(r.headers['cache-status']).toMatch(/hit; (fwd=stale; )?detail=stale-while-revalidate; ttl=-/);
    }
    // The background refresh takes ~100 ms; allow a loaded machine more.
    let fresh = await request(a).get('/swr');
    for (let i = 0; i < 30 && fresh.body.v !== 2; i++) {
      await sleep(100);
      fresh = await request(a).get('/swr');
    }
    expect(fresh.body.v).toBe(2);
    expect(fresh.headers['cache-status']).toMatch(/hit; ttl=/);
    expect(calls).toBe(2);
  });

  subSecondClock('stale-if-error: a failing or erroring handler is answered with the stale copy', async () => {
    const kit = makeKit();
    let mode: 'ok' | 'status' | 'throw' = 'ok';
    const a = app('/sie', kit.cache({ ttl: 200, staleIfError: '10 s' }), (_req, res, next) => {
      if (mode === 'throw') return next(new Error('database down'));
      if (mode === 'status') return void res.status(503).send('unavailable');
      res.json({ good: true });
    });
    await request(a).get('/sie');
    await sleep(300);
    mode = 'status';
    const r1 = await request(a).get('/sie');
    expect(r1.status).toBe(200);
    expect(r1.body).toEqual({ good: true });
    expect(r1.headers['cache-status']).toMatch(/fwd-status=503; detail=stale-if-error/);
    mode = 'throw';
    const r2 = await request(a).get('/sie');
    expect(r2.status).toBe(200);
    expect(r2.body).toEqual({ good: true });
  });

  subSecondClock(
    'stale-if-error: a handler slower than staleIfErrorTimeout is answered with the stale copy',
    async () => {
      const kit = makeKit({ commandTimeout: '5 s' });
      let version = 1;
      let delay = 0;
      const a = app(
        '/slow',
        kit.cache({ ttl: 200, staleIfError: '10 s', staleIfErrorTimeout: 150 }),
        async (_req, res) => {
          const v = version;
          await sleep(delay);
          // The refreshed copy stays fresh longer, so the check below does not race its expiry.
          if (v === 2) res.set('Cache-Control', 'max-age=30');
          res.json({ v });
        },
      );
      await request(a).get('/slow');
      await sleep(300);
      version = 2;
      delay = 1500;
      const started = Date.now();
      const r = await request(a).get('/slow');
      // Answered long before the handler's 1.5 s, with the old copy.
      expect(Date.now() - started).toBeLessThan(1400);
      expect(r.body).toEqual({ v: 1 });
      expect(r.headers['cache-status']).toMatch(/hit; fwd=stale; detail=stale-if-error-timeout/);
      // The slow handler's late answer is still stored.
      delay = 0;
      await sleep(1400);
      let later = await request(a).get('/slow');
      for (let i = 0; i < 30 && later.body.v !== 2; i++) {
        await sleep(100);
        later = await request(a).get('/slow');
      }
      expect(later.body).toEqual({ v: 2 });
      expect(later.headers['cache-status']).toMatch(/hit/);
    },
  );

  subSecondClock('an invalidation while a handler runs keeps what it produced out of the cache', async () => {
    const kit = makeKit();
    let version = 1;
    let calls = 0;
    let hasRead: () => void = () => undefined;
    const read = new Promise<void>((r) => {
      hasRead = r;
    });
    let release: () => void = () => undefined;
    const released = new Promise<void>((r) => {
      release = r;
    });
    const a = app('/race', kit.cache({ tags: ['race'] }), async (_req, res) => {
      calls++;
      const v = version; // read "from the database" before the change below
      if (calls === 1) {
        hasRead();
        await released;
      }
      res.json({ v });
    });
    const pending = request(a)
      .get('/race')
      .then((r) => r); // supertest starts on then()
    await read;
    version = 2;
    await kit.cache.invalidate({ tags: ['race'] });
    release();
    expect((await pending).body.v).toBe(1);
    await sleep(50);
    const next = await request(a).get('/race');
    expect(next.body.v).toBe(2);
    expect(next.headers['cache-status']).toMatch(/fwd=miss/);
    expect(calls).toBe(2);
  });

  test('bad input: long URLs, odd encodings and huge Vary lists stay bounded and never 500', async () => {
    const kit = makeKit();
    const a = express();
    a.get('/bad', kit.cache(), (req, res) => {
      const vary = Array.from({ length: Number(req.query.vary ?? 0) }, (_, i) => `x-h${i}`).join(', ');
      if (vary) res.set('Vary', vary);
      res.json({ ok: true });
    });
    const long = `/bad?${'q'.repeat(6000)}=${'v'.repeat(6000)}`;
    for (const url of [long, long, '/bad?a=%ZZ&b=%E0%A4%A', '/bad?%ff%fe=%00', '/bad?x=%F0%9F%98%80', '/bad?vary=40']) {
      const r = await request(a).get(url);
      expect(r.status).toBe(200);
    }
    expect((await request(a).get(long)).headers['cache-status']).toMatch(/hit/);
    expect((await request(a).get('/bad?vary=40')).headers['cache-status']).toMatch(/detail=vary/);
    if (tier === 'standalone' && kit.store.mode !== 'memory') {
      const keys = (await kit.store.command('KEYS', `${kit.store.keys.prefix}:*`)) as string[];
      expect(keys.length).toBeGreaterThan(0);
      for (const k of keys) expect(k.length).toBeLessThan(200);
    }
  });

  test('every way Express writes a body is captured: send, json, write+end, streams, binary Buffers', async () => {
    const kit = makeKit();
    const a = express();
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    let calls = 0;
    a.get('/w/:how', kit.cache(), (req, res) => {
      calls++;
      switch (req.params.how) {
        case 'send':
          return void res.send('plain text ✓');
        case 'json':
          return void res.json({ a: [1, 2, 3] });
        case 'write':
          res.type('text');
          res.write('part one, ');
          res.write(Buffer.from('part two, '));
          res.write('7061727420746872656565', 'hex');
          return void res.end();
        case 'stream': {
          const { Readable } = require('node:stream') as typeof import('node:stream');
          res.type('application/octet-stream');
          return void Readable.from([bytes.subarray(0, 100), bytes.subarray(100)]).pipe(res);
        }
        default:
          res.type('application/octet-stream');
          return void res.end(bytes);
      }
    });
    for (const how of ['send', 'json', 'write', 'stream', 'binary']) {
      const first = await request(a).get(`/w/${how}`).buffer(true);
      const second = await request(a).get(`/w/${how}`).buffer(true);
      expect(second.headers['cache-status']).toMatch(/hit/);
      expect(second.headers['content-type']).toBe(first.headers['content-type']);
      const body = (r: request.Response) => (Buffer.isBuffer(r.body) ? r.body : Buffer.from(r.text ?? ''));
      expect(body(second).equals(body(first))).toBe(true);
      if (how === 'write') expect(second.text).toBe('part one, part two, part threee');
      if (how === 'stream' || how === 'binary') expect(body(second).equals(bytes)).toBe(true);
    }
    expect(calls).toBe(5);
  });
});
