// Locks when Redis goes away: acquiring fails fast with a typed error, and work under withLock learns through its
// signal that the lease can no longer be extended (LockExtendError), instead of running on unprotected.

import { createRedisKit, LockExtendError, StoreUnavailableError } from '../../plugin/index';
import { hasRedisServer, startRedis } from '../support/redis-server';

const maybe = hasRedisServer() ? describe : describe.skip;

/** Resolves once `signal` has aborted, including when it already had (an abort event fires only once). */
const whenAborted = (signal: AbortSignal) =>
  signal.aborted ? Promise.resolve() : new Promise((resolve) => signal.addEventListener('abort', resolve));

maybe('locks during a Redis outage [own redis-server]', () => {
  test('an extension that cannot reach Redis aborts the signal with LockExtendError; acquire fails fast', async () => {
    const redis = await startRedis();
    const kit = createRedisKit({ redis: redis.url, logger: false, env: {}, commandTimeout: '1 s' });
    try {
      await kit.ready();
      let reason: unknown;
      const work = kit.locks.withLock(
        'outage',
        async ({ signal }) => {
          await redis.stop(); // Redis dies while we hold the lock
          await whenAborted(signal);
          reason = signal.reason;
        },
        { ttl: 3000 }, // longer than the command timeout, so the failed extension is seen before the lease ends
      );
      await expect(work).rejects.toBeInstanceOf(LockExtendError);
      expect(reason).toBeInstanceOf(LockExtendError);
      expect((reason as LockExtendError).cause).toBeInstanceOf(StoreUnavailableError);
      const started = Date.now();
      await expect(kit.locks.acquire('other', { waitTimeout: '5 s' })).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      await kit.close();
      await redis.stop();
    }
  }, 20_000);
});
