// Redis stopped mid-traffic, then started again on the same port: each failure mode answers as stated, no call
// waits longer than the command timeout, limiting resumes within 2 s, and the local mode's counts are added back.

import express from 'express';
import request from 'supertest';
import { createRedisKit, type RedisKit } from '../../plugin/index';
import { hasRedisServer, type RedisProcess, startRedis } from '../support/redis-server';

const TIMEOUT_MS = 200;
const SLACK_MS = 300; // event-loop and process-scheduling slack on a shared 2-core machine
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const run = hasRedisServer() ? describe : describe.skip;

run('rate limit when the store goes away', () => {
  let server: RedisProcess | undefined;
  let kit: RedisKit | undefined;

  afterEach(async () => {
    await kit?.close();
    await server?.stop();
    kit = undefined;
    server = undefined;
  });

  const warnings: Array<{ code?: string }> = [];
  const logger = { info() {}, error() {}, warn: (obj: { code?: string }) => warnings.push(obj) };

  async function setup() {
    warnings.length = 0;
    server = await startRedis();
    kit = createRedisKit({ redis: server.url, logger, env: {}, commandTimeout: TIMEOUT_MS });
    await kit.ready();
    return kit;
  }

  async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
    const started = performance.now();
    const value = await fn();
    return { value, ms: performance.now() - started };
  }

  async function recover(limit: () => Promise<{ reason?: string }>): Promise<number> {
    const port = (server as RedisProcess).port;
    server = await startRedis({ port });
    const back = performance.now();
    for (;;) {
      const r = await limit();
      if (r.reason === undefined) return performance.now() - back;
      if (performance.now() - back > 5000) throw new Error('limiting did not resume within 5 s');
      await sleep(20);
    }
  }

  test.each(['open', 'closed'] as const)("'%s': answers at once or within the timeout, recovers", async (mode) => {
    const k = await setup();
    const rl = k.rateLimiter({ limit: 100, window: '1 h', onStoreError: mode });
    expect(await rl.limit('a')).toMatchObject({ allowed: true });
    await server?.stop();
    for (let i = 0; i < 12; i++) {
      const { value, ms } = await timed(() => rl.limit('a'));
      expect(ms).toBeLessThan(TIMEOUT_MS + SLACK_MS);
      expect(value).toMatchObject({ allowed: mode === 'open', reason: 'store-unavailable' });
      if (mode === 'closed') expect(value.status).toBe(503);
    }
    expect(rl.stats.storeFailures).toBe(12);
    const recoveredIn = await recover(() => rl.limit('a'));
    if (process.env.RL_OUTAGE_REPORT)
      console.log(`${mode}: limiting resumed ${recoveredIn.toFixed(0)} ms after Redis came back`);
    expect(recoveredIn).toBeLessThan(2000);
    expect(await rl.limit('a')).toMatchObject({ allowed: true });
    // One line when the outage started, not one per refused decision (at most one per 10 s while it lasts).
    expect(warnings.filter((w) => w.code === 'ERR_KIT_RATE_LIMIT_STORE')).toHaveLength(1);
  });

  test("'local': an in-process limiter takes over and its counts are added back", async () => {
    const k = await setup();
    const rl = k.rateLimiter({ limit: 5, window: '1 h', onStoreError: 'local', blockCache: false });
    expect((await rl.limit('a')).allowed).toBe(true);
    expect((await rl.limit('a')).allowed).toBe(true);
    await server?.stop();
    const during = [];
    for (let i = 0; i < 7; i++) {
      const { value, ms } = await timed(() => rl.limit('a'));
      expect(ms).toBeLessThan(TIMEOUT_MS + SLACK_MS);
      expect(value.reason).toBe('local');
      during.push(value.allowed);
    }
    // The local limiter starts from nothing: it admits its own 5, then refuses.
    expect(during).toEqual([true, true, true, true, true, false, false]);
    const recoveredIn = await recover(() => rl.peek('b'));
    if (process.env.RL_OUTAGE_REPORT)
      console.log(`local: limiting resumed ${recoveredIn.toFixed(0)} ms after Redis came back`);
    expect(recoveredIn).toBeLessThan(2000);
    await rl.flush();
    expect(rl.stats.reconciled).toBe(1);
    // 2 before + 5 during the outage: the burst is not forgiven.
    const after = await rl.limit('a');
    expect(after).toMatchObject({ allowed: false, remaining: 0 });
    expect(after.reason).toBeUndefined();
  });

  test('the middleware answers 503 (closed) or passes (open), never hangs', async () => {
    const k = await setup();
    const app = express();
    app.get('/closed', k.rateLimit({ limit: 10, window: '1 m', onStoreError: 'closed' }), (_q, r) => r.send('ok'));
    app.get('/open', k.rateLimit({ limit: 10, window: '1 m', onStoreError: 'open' }), (_q, r) => r.send('ok'));
    expect((await request(app).get('/closed')).status).toBe(200);
    await server?.stop();
    const closed = await request(app).get('/closed');
    expect(closed.status).toBe(503);
    expect(JSON.parse(closed.text)).toMatchObject({ status: 503, title: 'Service Unavailable' });
    expect((await request(app).get('/open')).status).toBe(200);
  });
});
