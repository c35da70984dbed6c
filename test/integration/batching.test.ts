// The store layer's two per-command savings: write batching (an event-loop turn's commands leave in one write, so
// Redis reads and answers them together) and command deadlines kept in one queue with one timer. Both must be
// invisible apart from cost: every command keeps its own reply, error and timeout, on standalone and Cluster.

import Redis from 'ioredis';
import { createRedisKit } from '../../plugin/index';
import { Deadlines } from '../../plugin/connection/deadlines';
import { MAX_BATCH } from '../../plugin/connection/ioredis';
import { startRedis, type RedisProcess } from '../support/redis-server';
import { describeWithRedis } from '../support/require-redis';
import { clusterNodes, uniquePrefix } from '../support/stores';

async function readsProcessed(redis: Redis): Promise<number> {
  const info = String(await redis.info('stats'));
  return Number(/total_reads_processed:(\d+)/.exec(info)?.[1]);
}

describeWithRedis('write batching on a kit-created connection', () => {
  let server: RedisProcess;
  let observer: Redis;

  beforeAll(async () => {
    server = await startRedis();
    observer = new Redis(server.url);
  });
  afterAll(async () => {
    observer.disconnect();
    await server.stop();
  });

  test("one turn's commands reach Redis in a few reads, each with its own reply and error", async () => {
    const kit = createRedisKit({ redis: server.url, logger: false, env: {}, prefix: uniquePrefix() });
    try {
      await kit.ready();
      const keys = Array.from({ length: 100 }, (_, i) => kit.store.keys.key('batch', String(i)));
      const before = await readsProcessed(observer);
      // Issued synchronously, in one turn; one of them fails (INCRBY on a non-integer) without harming the rest.
      const replies = keys.map((key, i) => kit.store.incrBy(key, i, 0));
      const store = kit.store;
      if (store.mode === 'memory') throw new Error('expected a Redis store');
      const bad = store.command('INCRBY', keys[0] as string, 'not-a-number');
      const values = await Promise.all(replies);
      await expect(bad).rejects.toMatchObject({ code: 'ERR_KIT_STORE_COMMAND' });
      const after = await readsProcessed(observer);
      expect(values.map((v) => v.value)).toEqual(keys.map((_, i) => i));
      // 101 commands leave in batches of MAX_BATCH (7 writes; Redis may wake up for one before it is complete), plus
      // the observer's INFO: unbatched, Redis would need up to one read per command.
      expect(after - before).toBeLessThanOrEqual(3 * Math.ceil(101 / MAX_BATCH) + 2);
    } finally {
      await kit.close();
    }
  });

  test('a caller awaiting one command at a time is not held back: each is sent at the end of its turn', async () => {
    const kit = createRedisKit({ redis: server.url, logger: false, env: {}, prefix: uniquePrefix() });
    try {
      await kit.ready();
      const key = kit.store.keys.key('batch', 'serial');
      const started = performance.now();
      for (let i = 1; i <= 200; i++) expect((await kit.store.incrBy(key, 1, 0)).value).toBe(i);
      // A round trip on loopback is well under a millisecond; 200 sequential ones stay far below a second.
      expect(performance.now() - started).toBeLessThan(2000);
    } finally {
      await kit.close();
    }
  });

  test('a paused server: every batched command times out on its own deadline, then traffic resumes', async () => {
    const kit = createRedisKit({
      redis: server.url,
      logger: false,
      env: {},
      prefix: uniquePrefix(),
      commandTimeout: 200,
      circuitBreaker: false,
    });
    try {
      await kit.ready();
      const key = kit.store.keys.key('batch', 'paused');
      server.pause();
      const started = performance.now();
      const attempts = await Promise.allSettled(Array.from({ length: 20 }, () => kit.store.incrBy(key, 1, 0)));
      const elapsed = performance.now() - started;
      server.resume();
      for (const a of attempts)
        expect(a).toMatchObject({ status: 'rejected', reason: { code: 'ERR_KIT_STORE_TIMEOUT' } });
      expect(elapsed).toBeGreaterThanOrEqual(190);
      expect(elapsed).toBeLessThan(200 + 500);
      // The late replies of the timed-out commands are consumed in order; new commands get their own replies.
      const value = (await kit.store.incrBy(key, 1, 0)).value;
      expect(value).toBe(21);
    } finally {
      await kit.close();
    }
  });
});

describeWithRedis('write batching on a kit-created Cluster connection', () => {
  test("one turn's commands across every master each get their own reply", async () => {
    const nodes = clusterNodes();
    expect(nodes).toBeDefined(); // global-setup starts the Cluster whenever redis-server exists
    const kit = createRedisKit({ cluster: nodes as string[], logger: false, env: {}, prefix: uniquePrefix() });
    try {
      await kit.ready();
      // 60 ids spread over the slots of all three masters.
      const keys = Array.from({ length: 60 }, (_, i) => kit.store.keys.key('batch', `id${i}`));
      const values = await Promise.all(keys.map((key, i) => kit.store.incrBy(key, i + 1, 0)));
      expect(values.map((v) => v.value)).toEqual(keys.map((_, i) => i + 1));
      expect(await Promise.all(keys.map((key) => kit.store.get(key)))).toEqual(keys.map((_, i) => String(i + 1)));
    } finally {
      await kit.close();
    }
  });
});

describe('Deadlines: one timer for a store’s command timeouts', () => {
  let now = 0;
  beforeEach(() => {
    jest.useFakeTimers();
    now = 0;
  });
  afterEach(() => jest.useRealTimers());
  const advance = (ms: number) => {
    now += ms;
    jest.advanceTimersByTime(ms);
  };

  test('expires what did not settle, in order, at its own deadline; settled ones never expire', () => {
    const deadlines = new Deadlines(100, () => now);
    const expired: string[] = [];
    const a = deadlines.add(() => expired.push('a'));
    advance(30);
    deadlines.add(() => expired.push('b'));
    advance(30);
    const c = deadlines.add(() => expired.push('c'));
    deadlines.settle(a);
    advance(45); // t = 105: a settled, b (due 130) and c (due 160) pending
    expect(expired).toEqual([]);
    advance(30); // t = 135
    expect(expired).toEqual(['b']);
    deadlines.settle(c);
    advance(100);
    expect(expired).toEqual(['b']);
    expect(deadlines.pending).toBe(0);
  });

  test('settling the oldest commands drops them at once; an expiry may add a new deadline', () => {
    const deadlines = new Deadlines(50, () => now);
    const list = Array.from({ length: 5000 }, () => deadlines.add(() => undefined));
    for (const d of list.slice(0, 4999)) deadlines.settle(d);
    expect(deadlines.pending).toBe(1);
    let again = 0;
    deadlines.settle(list[4999] as never);
    deadlines.add(() => {
      deadlines.add(() => again++);
    });
    advance(51);
    expect(again).toBe(0);
    advance(51);
    expect(again).toBe(1);
    expect(deadlines.pending).toBe(0);
  });
});

describeWithRedis('write batching under fake timers', () => {
  afterEach(() => jest.useRealTimers());

  test('commands still reach Redis when a test fakes setImmediate', async () => {
    const kit = createRedisKit({ redis: process.env.REDIS_KIT_TEST_URL as string, logger: false, env: {} });
    try {
      await kit.ready();
      jest.useFakeTimers();
      const key = kit.store.keys.key('batch', `fake-${uniquePrefix()}`);
      // Nothing advances the fake clock: the batch must be flushed by the real event loop.
      const value = await kit.store.incrBy(key, 3, 0);
      expect(value.value).toBe(3);
    } finally {
      jest.useRealTimers();
      await kit.close();
    }
  });
});
