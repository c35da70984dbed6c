// The store contract and the health routes, unchanged on every kind of store.

import express from 'express';
import request from 'supertest';
import { describeForEachStore } from '../support/stores';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeForEachStore('store', ({ tier, makeKit }) => {
  test('reports its mode', async () => {
    const kit = makeKit();
    await kit.ready();
    const expected = {
      memory: 'memory',
      'ioredis-mock': 'standalone',
      standalone: 'standalone',
      cluster: 'cluster',
      upstash: 'upstash',
    }[tier];
    expect(kit.mode).toBe(expected);
    expect(kit.store.mode).toBe(expected);
  });

  test('set, get and del strings', async () => {
    const { store } = makeKit();
    const key = store.keys.key('test', 'user-1', 'name');
    expect(await store.get(key)).toBeNull();
    await store.set(key, 'ünïcødé ✓');
    expect(await store.get(key)).toBe('ünïcødé ✓');
    expect(await store.del(key)).toBe(1);
    expect(await store.get(key)).toBeNull();
    expect(await store.del(key)).toBe(0);
  });

  test('del counts keys across ids (different Cluster slots)', async () => {
    const { store } = makeKit();
    const keys = ['a', 'b', 'c'].map((id) => store.keys.key('test', id));
    for (const k of keys) await store.set(k, 'x');
    expect(await store.del(...keys, store.keys.key('test', 'missing'))).toBe(3);
  });

  test('values with a time to live expire', async () => {
    const { store } = makeKit();
    const key = store.keys.key('test', 'ttl');
    await store.set(key, 'v', 400);
    const ttl = await store.pttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(400);
    await sleep(800);
    expect(await store.get(key)).toBeNull();
    expect(await store.pttl(key)).toBe(-2);
  });

  test('a value with a long time to live is there until it expires', async () => {
    const { store } = makeKit();
    const key = store.keys.key('test', 'ttl-long');
    await store.set(key, 'v', 60_000);
    expect(await store.get(key)).toBe('v');
    expect(await store.pttl(key)).toBeGreaterThan(50_000);
  });

  test('incrBy is atomic under concurrency and sets the expiry once (script path)', async () => {
    const { store } = makeKit();
    const key = store.keys.key('test', 'counter');
    const results = await Promise.all(Array.from({ length: 50 }, () => store.incrBy(key, 2, 60_000)));
    const values = results.map((r) => r.value).sort((a, b) => a - b);
    expect(values).toEqual(Array.from({ length: 50 }, (_, i) => (i + 1) * 2));
    for (const r of results) {
      expect(r.ttlMs).toBeGreaterThan(50_000);
      expect(r.ttlMs).toBeLessThanOrEqual(60_000);
    }
    const down = await store.incrBy(key, -100, 0);
    expect(down.value).toBe(0);
    const noTtlKey = store.keys.key('test', 'no-ttl');
    expect(await store.incrBy(noTtlKey, 1, 0)).toEqual({ value: 1, ttlMs: -1 });
  });

  test("time() is the store's clock, close to ours on one machine", async () => {
    const { store } = makeKit();
    const t = await store.time();
    expect(Number.isInteger(t)).toBe(true);
    expect(Math.abs(t - Date.now())).toBeLessThan(2000);
  });

  test('ping and info', async () => {
    const { store } = makeKit();
    const latency = await store.ping();
    expect(latency).toBeGreaterThanOrEqual(0);
    expect(latency).toBeLessThan(1000);
    const info = await store.info();
    expect(info.mode).toBe(store.mode);
    if (tier === 'memory') expect(info.version).toBe('embedded');
    else expect(info.version).toMatch(/^\d+\.\d+/);
  });

  test('keys follow prefix:feature:{id}:part', () => {
    const kit = makeKit({ prefix: 'myapp' });
    expect(kit.store.keys.key('session', 'abc', 'data')).toBe('myapp:session:{abc}:data');
  });

  test('publish reaches subscribers of the same kit and of another kit on the same store', async () => {
    const a = makeKit();
    if (!a.store.canSubscribe) {
      expect(tier).toBe('upstash');
      await expect(a.store.subscribe('x', () => undefined)).rejects.toThrow(/poll/);
      return;
    }
    const channel = a.store.keys.channel('test', 'news');
    const got: string[] = [];
    const off = await a.store.subscribe(channel, (m) => got.push(m));
    const off2 = await a.store.subscribe(channel, (m) => got.push(`2:${m}`));
    await a.store.publish(channel, 'hello');
    for (let i = 0; i < 40 && got.length < 2; i++) await sleep(25);
    expect(got.sort()).toEqual(['2:hello', 'hello']);
    await off();
    await off2();
    await a.store.publish(channel, 'after');
    await sleep(100);
    expect(got).toHaveLength(2);
  });

  test('two handlers subscribing at once both hear the first message', async () => {
    const kit = makeKit();
    if (!kit.store.canSubscribe) return expect(tier).toBe('upstash');
    const channel = kit.store.keys.channel('test', 'race');
    const got: string[] = [];
    const offs = await Promise.all([
      kit.store.subscribe(channel, (m) => got.push(`a:${m}`)),
      kit.store.subscribe(channel, (m) => got.push(`b:${m}`)),
    ]);
    await kit.store.publish(channel, 'first');
    for (let i = 0; i < 40 && got.length < 2; i++) await sleep(25);
    expect(got.sort()).toEqual(['a:first', 'b:first']);
    for (const off of offs) await off();
  });

  test('GET {base}/health answers without touching the store', async () => {
    const kit = makeKit();
    const app = express();
    kit.mount(app, { basePath: '/api/v1' });
    const res = await request(app).get('/api/v1/health');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/health\+json/);
    expect(JSON.parse(res.text)).toMatchObject({ status: 'pass' });
  });

  test('GET {base}/health/redis reports the store in application/health+json', async () => {
    // A generous budget: the version comes from INFO, which is skipped when PING used up the default 800 ms (a cold
    // connection on a loaded machine).
    const kit = makeKit({ health: { timeout: '5 s' } });
    const app = express();
    kit.mount(app, { basePath: '/base' });
    const res = await request(app).get('/base/health/redis');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/health\+json/);
    expect(res.headers['cache-control']).toBe('no-store');
    const body = JSON.parse(res.text);
    expect(['pass', 'warn']).toContain(body.status);
    const checks = body.checks;
    expect(checks['store:mode'][0].observedValue).toBe(kit.mode);
    expect(checks['store:circuit'][0].observedValue).toBe('closed');
    expect(checks['store:responseTime'][0]).toMatchObject({ observedUnit: 'ms', componentType: 'datastore' });
    expect(typeof checks['store:responseTime'][0].observedValue).toBe('number');
    expect(Date.parse(checks['store:responseTime'][0].time)).not.toBeNaN();
    if (tier === 'memory') expect(checks['store:version'][0].observedValue).toBe('embedded');
    else expect(checks['store:version'][0].observedValue).toMatch(/^\d+\./);
  });

  test('a closed kit refuses commands with a typed error', async () => {
    const kit = makeKit();
    await kit.ready();
    await kit.close();
    await expect(kit.store.get('x')).rejects.toMatchObject({ code: 'ERR_KIT_CLOSED' });
    await kit.close();
  });
});
