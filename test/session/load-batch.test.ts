// Session reads on Redis: the reads started in one turn go as one load_many.lua call (a lone read as a plain
// HGETALL). Each read must still answer exactly its own session, a missing one as missing, and a failure must reach
// every read of the batch.

import { StoreCommandError, StoreUnavailableError } from '../../plugin/index';
import type { RedisStore } from '../../plugin/index';
import { RedisSessionBackend } from '../../plugin/session/redis';
import { describeForEachStore } from '../support/stores';

const timeouts = { idleMs: 3_600_000, absoluteMs: 7_200_000 };

describeForEachStore(
  'session reads',
  ({ tier, makeKit }) => {
    const setUp = async () => {
      const kit = makeKit();
      const store = kit.store as RedisStore;
      const backend = new RedisSessionBackend(store, () => undefined);
      const keys = Array.from({ length: 40 }, (_, i) => kit.store.keys.key('session', `load-batch-${i}`));
      // Every third key is left missing.
      for (let i = 0; i < keys.length; i++) {
        if (i % 3 === 2) continue;
        await backend.write(keys[i] as string, {
          mode: 'create',
          set: ['n', JSON.stringify(i), 'name', JSON.stringify(`session ${i}`)],
          del: [],
          ...timeouts,
        });
      }
      return { kit, store, backend, keys };
    };

    test('reads started together each answer their own session, in few calls off Cluster', async () => {
      const { store, backend, keys } = await setUp();
      const scripts = jest.spyOn(store, 'script');
      const commands = jest.spyOn(store, 'command');
      const found = await Promise.all(keys.map((key) => backend.load(key, timeouts, 3_600_000)));
      try {
        for (let i = 0; i < keys.length; i++) {
          if (i % 3 === 2) expect(found[i]).toBeNull();
          else {
            expect(found[i]?.get('n')).toBe(JSON.stringify(i));
            expect(found[i]?.get('name')).toBe(JSON.stringify(`session ${i}`));
          }
        }
        const reads = commands.mock.calls.filter(([name]) => name === 'HGETALL').length;
        const batches = scripts.mock.calls.filter(([script]) => script.name === 'load_many').length;
        if (tier === 'cluster') {
          expect(reads).toBe(40);
          expect(batches).toBe(0);
        } else {
          // 40 reads in groups of at most 16, sent as soon as a group is full.
          expect(reads + batches).toBeLessThanOrEqual(3);
          expect(batches).toBeGreaterThan(0);
        }
      } finally {
        backend.close();
      }
    });

    test('a key that is not a hash fails its own read only; reads queued at close() are still sent', async () => {
      const { kit, store, backend, keys } = await setUp();
      const stray = kit.store.keys.key('session', 'load-batch-stray');
      await store.set(stray, 'not a hash', 60_000);
      const reads = [keys[0], stray, keys[1]].map((k) => backend.load(k as string, timeouts, 3_600_000));
      const settled = await Promise.allSettled(reads);
      if (tier === 'ioredis-mock') {
        // ioredis-mock answers HGETALL of a string with an empty hash (a real server: WRONGTYPE): no session.
        expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
        expect((settled[1] as PromiseFulfilledResult<unknown>).value).toBeNull();
      } else {
        expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
        expect(String((settled[1] as PromiseRejectedResult).reason.message)).toMatch(/WRONGTYPE/);
      }
      expect((settled[0] as PromiseFulfilledResult<Map<string, string>>).value.get('n')).toBe('0');
      // Started in the turn that closes: sent by close(), answered before the store goes.
      const late = Promise.all(keys.slice(3, 6).map((k) => backend.load(k, timeouts, 3_600_000)));
      backend.close();
      await kit.close();
      expect((await late).map((r) => r?.get('n'))).toEqual(['3', '4', undefined]);
    });

    if (tier !== 'cluster') {
      test('a batch that fails, or is answered in the wrong shape, fails each of its reads', async () => {
        const { store, backend, keys } = await setUp();
        const script = jest.spyOn(store, 'script');
        try {
          script.mockRejectedValueOnce(new StoreUnavailableError('store away (test)'));
          const failed = await Promise.allSettled(keys.slice(0, 3).map((k) => backend.load(k, timeouts, 3_600_000)));
          expect(failed.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
          expect((failed[0] as PromiseRejectedResult).reason).toBeInstanceOf(StoreUnavailableError);
          script.mockResolvedValueOnce([2, 'n', '1', 5]);
          const shape = await Promise.allSettled(keys.slice(0, 3).map((k) => backend.load(k, timeouts, 3_600_000)));
          expect(shape.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
          expect((shape[1] as PromiseRejectedResult).reason).toBeInstanceOf(StoreCommandError);
        } finally {
          backend.close();
        }
      });
    }
  },
  { tiers: ['ioredis-mock', 'standalone', 'cluster', 'upstash'] },
);
