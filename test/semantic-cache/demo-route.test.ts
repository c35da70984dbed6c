// The demo chat endpoint through HTTP: OpenAI request and response bodies, cache headers, bad input as 4xx.

import express from 'express';
import request from 'supertest';
import { createLlmRoutes } from '../../demo/llm-routes';
import { createRedisKit, type RedisKit } from '../../plugin/index';

describe('demo POST /api/v1/llm/chat', () => {
  let kit: RedisKit;
  let app: express.Express;

  beforeEach(() => {
    kit = createRedisKit({ store: 'memory', logger: false, env: {} });
    app = express();
    app.use(createLlmRoutes({ kit, latencyMs: [5, 10] }));
  });
  afterEach(() => kit.close());

  const chat = (content: string, extra: Record<string, unknown> = {}) => ({
    model: 'demo-model',
    messages: [{ role: 'user', content }],
    ...extra,
  });

  test('a miss computes, the same question hits, a paraphrase hits semantically', async () => {
    const first = await request(app)
      .post('/api/v1/llm/chat')
      .send(chat('How do I reset the password of my email account on a new phone?'));
    expect(first.status).toBe(200);
    expect(first.headers['x-llm-cache']).toBe('miss');
    expect(first.body.object).toBe('chat.completion');
    expect(first.body.choices[0].message.content).toContain('reset the password of my email account');
    expect(first.body.usage.total_tokens).toBeGreaterThan(0);

    const again = await request(app)
      .post('/api/v1/llm/chat')
      .send(chat('How do I reset the password of my email account on a new phone?'));
    expect(again.headers['x-llm-cache']).toBe('hit');
    expect(again.headers['x-llm-cache-score']).toBe('1.0000');
    expect(again.body.choices).toEqual(first.body.choices);
    expect(again.body.x_llm_cache.saved_tokens).toBe(first.body.usage.total_tokens);
    expect(again.body.x_llm_cache.saved_ms).toBeGreaterThanOrEqual(4);

    const para = await request(app)
      .post('/api/v1/llm/chat')
      .send(chat('How can I reset my email account password on my new phone?'));
    expect(para.headers['x-llm-cache']).toBe('hit');
    expect(Number(para.headers['x-llm-cache-score'])).toBeLessThan(1);
  });

  test('tenants are kept apart; high temperature and streaming bypass', async () => {
    await request(app).post('/api/v1/llm/chat').set('x-tenant', 'a').send(chat('What plans do you offer?'));
    const b = await request(app).post('/api/v1/llm/chat').set('x-tenant', 'b').send(chat('What plans do you offer?'));
    expect(b.headers['x-llm-cache']).toBe('miss');
    // A namespace in the body is ignored: tenants come from the server side.
    const spoof = await request(app)
      .post('/api/v1/llm/chat')
      .set('x-tenant', 'c')
      .send(chat('What plans do you offer?', { namespace: 'a' }));
    expect(spoof.headers['x-llm-cache']).toBe('miss');
    const hot = await request(app)
      .post('/api/v1/llm/chat')
      .send(chat('Write a poem', { temperature: 1.8 }));
    expect(hot.headers['x-llm-cache']).toBe('bypass');
    expect(hot.headers['x-llm-cache-reason']).toBe('temperature');
    const stream = await request(app)
      .post('/api/v1/llm/chat')
      .send(chat('Write a poem', { stream: true }));
    expect(stream.headers['x-llm-cache']).toBe('bypass');
  });

  test.each([
    ['missing model', { messages: [{ role: 'user', content: 'hi' }] }, 400],
    ['empty prompt', { model: 'm', messages: [{ role: 'user', content: '   ' }] }, 400],
    ['no messages', { model: 'm', messages: [] }, 400],
    ['absurd temperature', { model: 'm', messages: [{ role: 'user', content: 'hi' }], temperature: 1e9 }, 400],
    ['absurd max_tokens', { model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: -5 }, 400],
    ['lone surrogate', { model: 'm', messages: [{ role: 'user', content: 'bad \ud800 text' }] }, 400],
    ['messages not an array', { model: 'm', messages: 'hi' }, 400],
    ['a JSON array body', [1, 2, 3], 400],
  ])('%s is answered with a 4xx OpenAI-style error', async (_name, body, status) => {
    const res = await request(app)
      .post('/api/v1/llm/chat')
      .send(body as object);
    expect(res.status).toBe(status);
    expect(typeof res.body.error.message).toBe('string');
  });

  test('a 1 MB prompt is a 413, malformed JSON a 400, invalid UTF-8 is not a 500', async () => {
    const huge = await request(app)
      .post('/api/v1/llm/chat')
      .send(chat('x'.repeat(1024 * 1024)));
    expect(huge.status).toBe(413);
    const broken = await request(app)
      .post('/api/v1/llm/chat')
      .set('content-type', 'application/json')
      .send('{"model":');
    expect(broken.status).toBe(400);
    const bytes = Buffer.concat([
      Buffer.from('{"model":"m","messages":[{"role":"user","content":"caf'),
      Buffer.from([0xc3, 0x28, 0xff]),
      Buffer.from('"}]}'),
    ]);
    const utf8 = await request(app).post('/api/v1/llm/chat').set('content-type', 'application/json').send(bytes);
    expect(utf8.status).toBeLessThan(500);
  });
});
