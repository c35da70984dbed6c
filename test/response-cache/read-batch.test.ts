// Cache hits on Redis are read with MGET (the Vary spec and the entry); the reads started in one turn share one
// MGET. Each read must still get its own two values, and a failure must reach every read of the batch.

import { StoreCommandError, StoreUnavailableError } from '../../plugin/index';
import type { RedisStore } from '../../plugin/index';
import { RedisCacheBackend } from '../../plugin/response-cache/redis';
import { describeForEachStore } from '../support/stores';

describeForEachStore(
  'response cache reads',
  ({ tier, makeKit }) => {
    const setUp = async () => {
      const kit = makeKit();
      const store = kit.store as RedisStore;
      const backend = new RedisCacheBackend(store);
      // Hash-tagged pairs, as the cache's own keys are: both keys of one read live in one Cluster slot.
      const pairs = Array.from({ length: 40 }, (_, i) => ({
        vary: kit.store.keys.key('cache', `{read-batch-${i}}`, 'vary'),
        entry: kit.store.keys.key('cache', `{read-batch-${i}}`, 'entry'),
      }));
      // Every third read finds nothing.
      for (let i = 0; i < pairs.length; i++) if (i % 3 !== 2) await store.set(pairs[i]!.vary, `spec-${i}`, 60_000);
      return { store, backend, pairs };
    };

    test('reads started together each get their own keys, in few MGETs off Cluster', async () => {
      const { store, backend, pairs } = await setUp();
      const command = jest.spyOn(store, 'command');
      const found = await Promise.all(pairs.map((p) => backend.read(p)));
      for (let i = 0; i < pairs.length; i++) {
        expect(found[i]).toEqual({ spec: i % 3 === 2 ? null : `spec-${i}`, entry: null });
      }
      const mgets = command.mock.calls.filter(([name]) => name === 'MGET').length;
      if (tier === 'cluster') expect(mgets).toBe(40);
      else expect(mgets).toBeLessThanOrEqual(3);
    });

    test('reads queued in the turn that closes the kit are still sent', async () => {
      const { store, backend, pairs } = await setUp();
      const late = Promise.all(pairs.slice(0, 3).map((p) => backend.read(p)));
      backend.close();
      await store.close();
      expect((await late).map((r) => r.spec)).toEqual(['spec-0', 'spec-1', null]);
    });

    if (tier !== 'cluster') {
      test('a batch that fails, or is answered in the wrong shape, fails each of its reads', async () => {
        const { store, backend, pairs } = await setUp();
        const command = jest.spyOn(store, 'command');
        command.mockRejectedValueOnce(new StoreUnavailableError('store away (test)'));
        const failed = await Promise.allSettled(pairs.slice(0, 3).map((p) => backend.read(p)));
        expect(failed.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
        expect((failed[2] as PromiseRejectedResult).reason).toBeInstanceOf(StoreUnavailableError);
        command.mockResolvedValueOnce(['a', 'b']);
        const shape = await Promise.allSettled(pairs.slice(0, 3).map((p) => backend.read(p)));
        expect(shape.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
        expect((shape[0] as PromiseRejectedResult).reason).toBeInstanceOf(StoreCommandError);
      });
    }
  },
  { tiers: ['ioredis-mock', 'standalone', 'cluster', 'upstash'] },
);
