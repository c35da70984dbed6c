// The demo's job routes: 202 with an id, state reads, idempotency keys, and 4xx for bad input.

import express from 'express';
import request from 'supertest';
import { jobsRouter } from '../../demo/jobs-routes';
import { createRedisKit, type RedisKit } from '../../plugin/index';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let kit: RedisKit;
let app: express.Express;

beforeEach(() => {
  kit = createRedisKit({ store: 'memory', logger: false, env: {} });
  app = express();
  app.use('/api/v1', jobsRouter(kit, { sendDelayMs: 30 }));
});
afterEach(() => kit.close());

test('POST answers 202 with the id; GET follows the job to completed', async () => {
  const created = await request(app)
    .post('/api/v1/jobs')
    .send({ type: 'welcome-email', to: 'ada@example.com', name: 'Ada' })
    .expect(202);
  expect(created.body).toMatchObject({ id: expect.any(String), state: 'waiting' });
  expect(created.headers.location).toBe(`/api/v1/jobs/${created.body.id}`);
  let state = '';
  for (let i = 0; i < 100 && state !== 'completed'; i++) {
    const res = await request(app)
      .get(created.headers.location as string)
      .expect(200);
    state = res.body.state;
    expect(['waiting', 'active', 'completed']).toContain(state);
    if (state !== 'completed') await sleep(10);
  }
  const done = await request(app).get(`/api/v1/jobs/${created.body.id}`).expect(200);
  expect(done.body).toMatchObject({
    state: 'completed',
    type: 'welcome-email',
    attemptsMade: 1,
    result: { sentTo: 'ada@example.com' },
  });
  expect(done.body.to).toBeUndefined();
});

test('the same Idempotency-Key gives the same job', async () => {
  const a = await request(app)
    .post('/api/v1/jobs')
    .set('Idempotency-Key', 'signup-7')
    .send({ type: 'welcome-email', to: 'a@example.com' })
    .expect(202);
  const b = await request(app)
    .post('/api/v1/jobs')
    .set('Idempotency-Key', 'signup-7')
    .send({ type: 'welcome-email', to: 'a@example.com' })
    .expect(202);
  expect(a.body.id).toBe('signup-7');
  expect(b.body.id).toBe('signup-7');
});

test.each([
  ['no body', undefined, 400],
  ['an array', [1], 400],
  ['unknown type', { type: 'spam', to: 'a@example.com' }, 400],
  ['bad address', { type: 'welcome-email', to: 'not an address' }, 400],
  ['long name', { type: 'welcome-email', to: 'a@example.com', name: 'x'.repeat(101) }, 400],
])('POST with %s → 4xx', async (_what, body, status) => {
  const req = request(app).post('/api/v1/jobs');
  const res = body === undefined ? await req : await req.send(body as object);
  expect(res.status).toBe(status);
  expect(res.body.error).toEqual(expect.any(String));
});

test('malformed JSON, a bad idempotency key and an oversized body are 4xx', async () => {
  await request(app).post('/api/v1/jobs').set('content-type', 'application/json').send('{"type":').expect(400);
  await request(app)
    .post('/api/v1/jobs')
    .set('Idempotency-Key', '123')
    .send({ type: 'welcome-email', to: 'a@example.com' })
    .expect(400);
  await request(app)
    .post('/api/v1/jobs')
    .send({ type: 'welcome-email', to: 'a@example.com', pad: 'x'.repeat(20_000) })
    .expect(413);
});

test('GET of an unknown id is 404, of a malformed id 400', async () => {
  await request(app).get('/api/v1/jobs/999999').expect(404);
  await request(app)
    .get(`/api/v1/jobs/${encodeURIComponent('{bad id}')}`)
    .expect(400);
});

test('a store outage answers 503, not 500', async () => {
  const down = createRedisKit({
    redis: 'redis://127.0.0.1:1',
    logger: false,
    env: {},
    commandTimeout: 200,
    connectTimeout: 200,
  });
  try {
    const outageApp = express();
    outageApp.use('/api/v1', jobsRouter(down, { process: false }));
    const res = await request(outageApp).post('/api/v1/jobs').send({ type: 'welcome-email', to: 'a@example.com' });
    expect(res.status).toBe(503);
    await request(outageApp).get('/api/v1/jobs/1').expect(503);
  } finally {
    await down.close();
  }
});
