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

  test("a change-notice subscription refused at start-up is retried: another instance's invalidation arrives by pub/sub", async () => {
    const prefix = `semsub-${Date.now()}`;
    // Interval sync every 60 s: only the subscription can bring the change within the bound below.
    const options = { redis: server.url, prefix, logger: false as const, env: {}, commandTimeout: COMMAND_TIMEOUT };
    const follower = createRedisKit(options);
    const writer = createRedisKit(options);
    try {
      await follower.ready();
      await writer.ready();
      const mine = follower.semanticCache({ syncInterval: '60 s' });
      const theirs = writer.semanticCache({ syncInterval: '60 s' });
      const { id } = (await theirs.store(ask('Where is my invoice?'), 'in billing')) as { id: string };
      server.pause(); // the follower's first use subscribes now, and times out
      await mine.lookup(ask('Where is my invoice?'));
      server.resume();
      let status = '';
      for (let i = 0; i < 50 && status !== 'hit'; i++) {
        await new Promise((r) => setTimeout(r, 100));
        status = (await mine.lookup(ask('Where is my invoice?'))).status;
      }
      expect(status).toBe('hit');
      // The retry (1 s after the refusal) has subscribed by now.
      await new Promise((r) => setTimeout(r, 1500));
      await theirs.invalidate({ id });
      let gone = false;
      for (let i = 0; i < 20 && !gone; i++) {
        await new Promise((r) => setTimeout(r, 50));
        gone = (await mine.lookup(ask('Where is my invoice?'))).status !== 'hit';
      }
      expect(gone).toBe(true);
    } finally {
      server.resume();
      await follower.close();
      await writer.close();
    }
  });
});
