// The semantic cache fails open: with Redis paused (a black hole) or gone, lookups are misses within the command
// timeout, wrap() still answers from compute, and once Redis is back the cache works again by itself.

import { createRedisKit, type LlmRequest, type RedisKit } from '../../plugin/index';
import { startRedis, type RedisProcess } from '../support/redis-server';
import { describeWithRedis } from '../support/require-redis';

const COMMAND_TIMEOUT = 300;
const SLACK = 700;
const ask = (content: string): LlmRequest => ({ model: 'm', messages: [{ role: 'user', content }] });

describeWithRedis('semantic cache during a Redis outage', () => {
  let server: RedisProcess;
  let kit: RedisKit;

  beforeAll(async () => {
    server = await startRedis();
    kit = createRedisKit({
      redis: server.url,
      prefix: 'semoutage',
      logger: false,
      env: {},
      commandTimeout: COMMAND_TIMEOUT,
      circuitBreaker: { failureThreshold: 3, cooldown: 300 },
    });
    await kit.ready();
  });
  afterAll(async () => {
    server.resume();
    await kit.close();
    await server.stop();
  });

  test('a paused server: misses within the timeout, wrap() answers from compute, recovery afterwards', async () => {
    const cache = kit.semanticCache();
    await cache.store(ask('How do I export my data?'), 'cached');
    expect((await cache.lookup(ask('How do I export my data?'))).status).toBe('hit');

    server.pause();
    const started = performance.now();
    const miss = await cache.lookup(ask('How do I export my data?'));
    expect(performance.now() - started).toBeLessThan(COMMAND_TIMEOUT + SLACK);
    expect(miss).toMatchObject({ status: 'miss', reason: 'store-unavailable' });
    const wrapped = await cache.wrap(ask('How do I export my data?'), async () => 'fresh');
    expect(wrapped.response).toBe('fresh');
    expect(cache.stats().storeErrors + cache.stats().missReasons['store-unavailable']!).toBeGreaterThanOrEqual(2);

    server.resume();
    let status = '';
    for (let i = 0; i < 40 && status !== 'hit'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await cache.lookup(ask('How do I export my data?'))).status;
    }
    expect(status).toBe('hit');
  });

  test('a change-notice subscription refused at start-up is retried: a new entry arrives by pub/sub', async () => {
    const prefix = `semsub-${Date.now()}`;
    // Interval sync every 60 s: only the subscription can bring the change within the bound below.
    const options = { redis: server.url, prefix, logger: false as const, env: {}, commandTimeout: COMMAND_TIMEOUT };
    const follower = createRedisKit(options);
    const writer = createRedisKit(options);
    try {
      await follower.ready();
      await writer.ready();
      // The store refuses the first SUBSCRIBE (as during an outage at start-up), then accepts.
      const store = follower.store as unknown as { subscribe: (...args: unknown[]) => Promise<unknown> };
      const original = store.subscribe.bind(store);
      let calls = 0;
      store.subscribe = (...args) =>
        calls++ === 0 ? Promise.reject(new Error('refused for the test')) : original(...args);
      const mine = follower.semanticCache({ syncInterval: '60 s' });
      const theirs = writer.semanticCache({ syncInterval: '60 s' });
      await theirs.store(ask('Where is my invoice?'), 'in billing');
      expect((await mine.lookup(ask('Where is my invoice?'))).status).toBe('hit');
      // The retry, 1 s after the refusal.
      const deadline = Date.now() + 3000;
      while (calls < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(calls).toBe(2);
      await new Promise((r) => setTimeout(r, 200));
      // A new entry on the other instance reaches this one's loaded index only through a change notice (or in 60 s).
      await theirs.store(ask('How do I reset my password?'), 'settings, then security');
      let found = '';
      for (let i = 0; i < 20 && found !== 'hit'; i++) {
        await new Promise((r) => setTimeout(r, 50));
        found = (await mine.lookup(ask('How do I reset my password?'))).status;
      }
      expect(found).toBe('hit');
    } finally {
      await follower.close();
      await writer.close();
    }
  });
});
