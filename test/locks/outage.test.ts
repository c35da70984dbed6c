// Locks when Redis goes away: acquiring fails fast with a typed error, and work under withLock learns through its
// signal that the lease can no longer be extended (LockExtendError), instead of running on unprotected.

import { createRedisKit, LockExtendError, LockNotHeldError, StoreUnavailableError } from '../../plugin/index';
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

  test('a release the store could not confirm can be tried again', async () => {
    const redis = await startRedis();
    const kit = createRedisKit({ redis: redis.url, logger: false, env: {}, commandTimeout: '1 s' });
    let again: Awaited<ReturnType<typeof startRedis>> | undefined;
    try {
      const lock = await kit.locks.acquire('retry-release', { ttl: '30 s' });
      await redis.stop();
      await expect(lock.release()).rejects.toBeInstanceOf(StoreUnavailableError);
      // The server comes back empty (no persistence): the retried release reaches it and learns the lease is gone.
      again = await startRedis({ port: redis.port });
      let outcome: unknown;
      for (let i = 0; i < 50; i++) {
        outcome = await lock.release().then(
          () => 'released',
          (error: unknown) => error,
        );
        if (outcome instanceof LockNotHeldError) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(outcome).toBeInstanceOf(LockNotHeldError);
    } finally {
      await kit.close();
      await again?.stop();
      await redis.stop();
    }
  }, 20_000);
});
