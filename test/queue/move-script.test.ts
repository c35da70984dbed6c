// The worker's round trip (move.lua and its memory twin) on every store, for what the conformance suite cannot pin
// down through the public API:
//
// 1. Jobs whose leases ran out go back to the head of the queue in the order they had been leased, ahead of the
//    jobs that were waiting: not reversed (each pushed to the head in turn), nor in the active set's order (one
//    deadline for a fetch's jobs, then ids as text: '10' before '9').
// 2. On Redis, the worker's fetch record key travels in KEYS, with the queue's hash tag, never in ARGV: Cluster
//    routes and checks a script by its declared keys (during a slot migration an undeclared key may already have
//    moved, and the script would read nothing instead of being redirected).

import type { RedisStore, Store } from '../../plugin/index';
import type { MoveRequest, QueueBackend } from '../../plugin/queue/backend';
import { RedisQueueBackend } from '../../plugin/queue/backend';
import { MemoryQueueBackend } from '../../plugin/queue/memory';
import { move as moveScript } from '../../plugin/queue/scripts.generated';
import { describeForEachStore } from '../support/stores';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function backendOf(store: Store, name: string): QueueBackend {
  const channel = store.keys.channel('queue', name);
  return store.mode === 'memory'
    ? new MemoryQueueBackend(store.engine, name, channel)
    : new RedisQueueBackend(store, name, channel);
}

const base: Omit<MoveRequest, 'take' | 'worker' | 'fetch' | 'release' | 'finishes'> = {
  leaseMs: 60_000,
  keepCompleted: { ageMs: 0, count: 100 },
  keepDead: { ageMs: 0, count: 100 },
  maxStalls: 2,
};

function move(backend: QueueBackend, request: Partial<MoveRequest>) {
  return backend.move({ ...base, take: 0, worker: 'w', fetch: '', release: [], finishes: [], ...request });
}

function job(data: string) {
  return { id: '', data, delayMs: 0, priority: 0, attempts: 3, backoff: '' };
}

describeForEachStore('queue: the worker round trip', ({ makeKit, tier }) => {
  test('stalled jobs go back to the head in the order they were leased', async () => {
    const kit = makeKit();
    const backend = backendOf(kit.store, 'stall-order');
    // Twelve jobs, so that their ids ('1' to '12') sort differently as text and as numbers.
    const ids = (await backend.add(Array.from({ length: 12 }, (_, i) => job(`j${i}`)))).map((r) => r.id);
    expect(ids).toEqual(Array.from({ length: 12 }, (_, i) => String(i + 1)));
    // ioredis-mock's TIME jumps back and forth by up to a second: a longer lease there, and a wait for it below.
    const leaseMs = tier === 'ioredis-mock' ? 1500 : 300;
    const leased = await move(backend, { leaseMs, take: 12, fetch: '1' });
    expect(leased.taken.map((t) => t.id)).toEqual(ids);
    // Added while the others are leased: it waits behind them once they come back.
    const [later] = (await backend.add([job('later')])).map((r) => r.id) as [string];

    // The worker dies. Another worker's call runs the stall pass once the leases have run out (one deadline: one pass).
    let stalled: string[] = [];
    for (let i = 0; i < 500 && stalled.length === 0; i++) {
      await sleep(20);
      stalled = (await move(backend, { leaseMs, worker: 'x' })).stalled;
    }
    expect([...stalled].sort()).toEqual([...ids].sort());
    expect(await backend.counts()).toMatchObject({ waiting: 13, active: 0 });

    const next = await move(backend, { take: 13, worker: 'x', fetch: '1' });
    expect(next.taken.map((t) => t.id)).toEqual([...ids, later]);
    expect(next.taken.map((t) => t.attempt)).toEqual(Array(13).fill(1));
  });

  if (tier !== 'memory') {
    test("the fetch record key is one of the script's KEYS, with the queue's hash tag, and not in ARGV", async () => {
      const kit = makeKit();
      const store = kit.store as RedisStore;
      const backend = backendOf(store, 'fetch-key');
      const script = jest.spyOn(store, 'script');
      const [a] = (await backend.add([job('a')])).map((r) => r.id) as [string];
      const got = await move(backend, { worker: 'w1', take: 1, fetch: '1' });
      expect(got.taken.map((t) => t.id)).toEqual([a]);

      const fetchKey = store.keys.key('queue', 'fetch-key', 'fetch', 'w1');
      const calls = script.mock.calls.filter(([s]) => s === moveScript);
      expect(calls).toHaveLength(1);
      const [, keys, args] = calls[0] as [unknown, readonly string[], readonly unknown[]];
      expect(keys).toContain(fetchKey);
      expect(keys).toHaveLength(moveScript.keys);
      for (const key of keys) expect(key).toContain(':queue:{fetch-key}:');
      // ARGV names no key: only the job hash prefix, which the script completes with ids it reads from the keys.
      expect(args.filter((v) => typeof v === 'string' && v.includes('{fetch-key}'))).toEqual([
        store.keys.key('queue', 'fetch-key', 'j:'),
      ]);

      // The record the script kept under that key is the one a release finds.
      expect(String(await store.command('GET', fetchKey))).toMatch(/^1 /);
      const released = await move(backend, { worker: 'w1', release: ['1'] });
      expect({ fetches: released.releasedFetches, jobs: released.released }).toEqual({ fetches: ['1'], jobs: 1 });
    });
  }
});
