// The queue when Redis goes away and comes back: add() fails fast with a typed 503 error instead of hanging, the
// worker keeps retrying on its own, and jobs flow again once the server is back (no restart of the app).

import { createRedisKit, StoreUnavailableError } from '../../plugin/index';
import { hasRedisServer, startRedis } from '../support/redis-server';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

(hasRedisServer() ? test : test.skip)(
  'Redis down: add() rejects fast with StoreUnavailableError; back up: the same worker runs new jobs',
  async () => {
    let redis = await startRedis();
    const kit = createRedisKit({
      redis: redis.url,
      logger: false,
      env: {},
      commandTimeout: 300,
      connectTimeout: 300,
      circuitBreaker: { failureThreshold: 2, cooldown: 200 },
    });
    try {
      const q = kit.queue<string>('outage', { idlePoll: 300 });
      const done: string[] = [];
      const errors: Error[] = [];
      q.on('error', (error: Error) => errors.push(error));
      q.process((job) => {
        done.push(job.data);
      });
      await q.add('before');
      for (let i = 0; i < 200 && !done.includes('before'); i++) await sleep(10);
      expect(done).toEqual(['before']);

      await redis.stop();
      const t0 = Date.now();
      await expect(q.add('during')).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(Date.now() - t0).toBeLessThan(1500);
      await sleep(700);
      expect(errors.length).toBeGreaterThan(0); // the worker noticed, and goes on retrying

      redis = await startRedis({ port: redis.port });
      let added = false;
      for (let i = 0; i < 100 && !added; i++) {
        added = await q.add('after').then(
          () => true,
          () => false,
        );
        if (!added) await sleep(100);
      }
      expect(added).toBe(true);
      for (let i = 0; i < 500 && !done.includes('after'); i++) await sleep(10);
      expect(done).toContain('after');
    } finally {
      await kit.close();
      await redis.stop();
    }
  },
  30_000,
);
