// When the store goes away: 'fail' answers 503 with a JSON body, 'degrade' goes on with an empty unsaved session;
// both within the command timeout, and both recover by themselves when the server is back.

import request from 'supertest';
import { createRedisKit, type RedisKit } from '../../plugin/index';
import { hasRedisServer, type RedisProcess, startRedis } from '../support/redis-server';
import { sessionApp, setCookie } from './helpers';

const run = hasRedisServer() ? describe : describe.skip;

run('session when the store is unreachable', () => {
  let redis: RedisProcess;
  let kit: RedisKit;
  let warnings: Array<{ code?: string }>;

  beforeEach(async () => {
    redis = await startRedis();
    warnings = [];
    const quiet = () => undefined;
    kit = createRedisKit({
      redis: redis.url,
      logger: { info: quiet, error: quiet, warn: (obj: unknown) => void warnings.push(obj as { code?: string }) },
      env: {},
      // Generous for a busy test machine; the point is that the wait is bounded, not how short it is.
      commandTimeout: 1000,
      circuitBreaker: { failureThreshold: 100, cooldown: 100 },
    });
    await kit.ready();
  });
  afterEach(async () => {
    await kit.close();
    await redis.stop();
  });

  test("'fail': 503 with a JSON body, no hang; recovers when the server is back", async () => {
    const app = sessionApp(kit, { onStoreError: 'fail' });
    const cookie = setCookie(await request(app).post('/set/a/1')) as string;
    await redis.stop();
    const started = Date.now();
    const res = await request(app).get('/get/a').set('Cookie', cookie);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(res.status).toBe(503);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    expect(res.body.error.code).toBe('ERR_KIT_SESSION_STORE_UNAVAILABLE');

    // A write at the end of the request fails the same way, without the route's body.
    const write = await request(app).post('/set/b/2');
    expect(write.status).toBe(503);
    expect(write.body.error.code).toBe('ERR_KIT_SESSION_STORE_UNAVAILABLE');
    expect(setCookie(write)).toBeUndefined();

    // An outage is logged, but not once per request.
    expect(warnings.filter((w) => w.code === 'ERR_KIT_SESSION_STORE')).toHaveLength(1);

    // A route that never touches the session is not affected (no cookie: no store call).
    expect((await request(app).get('/ping')).status).toBe(200);

    redis = await startRedis({ port: redis.port });
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await request(app).post('/set/c/3')).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);
  });

  test("'degrade': the request goes on with an empty, unsaved, flagged session", async () => {
    const app = sessionApp(kit, { onStoreError: 'degrade' });
    const cookie = setCookie(await request(app).post('/set/a/1')) as string;
    await redis.stop();
    const res = await request(app).get('/all').set('Cookie', cookie);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ data: {}, degraded: true });
    // Nothing is written and the client's cookie is left alone.
    const write = await request(app).post('/set/b/2').set('Cookie', cookie);
    expect(write.status).toBe(200);
    expect(setCookie(write)).toBeUndefined();
  });
});
