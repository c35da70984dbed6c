// The worker's round trip (move.lua and its memory twin) on every store, for what the conformance suite cannot pin
// down through the public API:
//
// 1. Jobs whose leases ran out go back to the head of the queue in the order they had been leased, ahead of the
//    jobs that were waiting: not reversed (each pushed to the head in turn), nor in the active set's order (one
//    deadline for a fetch's jobs, then ids as text: '10' before '9'), nor by id as a number.
// 2. On Redis, an error part-way through the stall pass leaves every expired lease in the active set: Redis keeps
//    a script's writes made before an error, so the pass reads all its jobs before it moves any.
// 3. On Redis, the worker's fetch record key travels in KEYS, with the queue's hash tag, never in ARGV: Cluster
//    routes and checks a script by its declared keys (during a slot migration, a key the script only builds itself
//    that has moved already fails the script with an error instead of being redirected).

import type { RedisStore } from '../../plugin/index';
import type { QueueBackend } from '../../plugin/queue/backend';
import { move as moveScript } from '../../plugin/queue/scripts.generated';
import { describeForEachStore } from '../support/stores';
import { backendOf, move } from './backend-calls';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function job(data: string) {
  return { id: '', data, delayMs: 0, priority: 0, attempts: 3, backoff: '' };
}

describeForEachStore('queue: the worker round trip', ({ makeKit, tier }) => {
  // ioredis-mock's TIME jumps back and forth by up to a second: a longer lease there, and a wait for it below.
  const shortLease = tier === 'ioredis-mock' ? 1500 : 300;

  /** Twelve jobs leased in one fetch (one deadline, so one stall pass) in an order that is none of the ids' orders. */
  async function leaseShuffled(backend: QueueBackend) {
    const ids = (await backend.add(Array.from({ length: 12 }, (_, i) => job(`j${i}`)))).map((r) => r.id);
    expect(ids).toEqual(Array.from({ length: 12 }, (_, i) => String(i + 1)));
    // Not ascending as numbers ('1', '2', ... '12') nor as text ('1', '10', '11', '12', '2', ...), nor either reversed.
    const order = ['7', '12', '3', '10', '1', '9', '2', '11', '5', '8', '4', '6'];
    // A first delivery of each, retried at once in that order: each goes to the back of the queue, so the queue
    // holds them in that order, and the next fetch leases them in it.
    const first = await move(backend, { take: 12, fetch: '1' });
    const token = new Map(first.taken.map((t) => [t.id, t.token]));
    const finishes = order.map((id) => ({
      id,
      token: String(token.get(id)),
      outcome: 'r' as const,
      payload: 'x',
      delayMs: 0,
    }));
    expect((await move(backend, { finishes })).lost).toBe(0);
    const leased = await move(backend, { leaseMs: shortLease, take: 12, fetch: '2' });
    expect(leased.taken.map((t) => t.id)).toEqual(order);
    return order;
  }

  /** Another worker's calls, until one finds leases that ran out (the worker holding them died). */
  async function stallPass(backend: QueueBackend) {
    for (let i = 0; i < 500; i++) {
      await sleep(20);
      const r = await move(backend, { leaseMs: shortLease, worker: 'x' });
      if (r.stalled.length > 0 || r.buried.length > 0) return r;
    }
    throw new Error('no lease ran out');
  }

  test('stalled jobs go back to the head in the order they were leased', async () => {
    const kit = makeKit();
    const backend = backendOf(kit.store, 'stall-order');
    const order = await leaseShuffled(backend);
    // Added while the others are leased: it waits behind them once they come back.
    const [later] = (await backend.add([job('later')])).map((r) => r.id) as [string];

    const { stalled } = await stallPass(backend);
    expect(stalled).toEqual(order);
    expect(await backend.counts()).toMatchObject({ waiting: 13, active: 0 });

    const next = await move(backend, { take: 13, worker: 'x', fetch: '1' });
    expect(next.taken.map((t) => t.id)).toEqual([...order, later]);
    // The stall gave the attempt back: the twelve are on their second attempt (the retry used the first).
    expect(next.taken.map((t) => t.attempt)).toEqual([...Array(12).fill(2), 1]);
  });

  // Needs a server that raises WRONGTYPE inside a script like Redis does.
  if (tier === 'standalone' || tier === 'cluster') {
    test('an error part-way through the stall pass takes no job out of the active set', async () => {
      const kit = makeKit();
      const store = kit.store as RedisStore;
      const backend = backendOf(store, 'stall-error');
      const order = await leaseShuffled(backend);
      // Stands in for any error inside the pass (on Cluster: a job hash whose slot is being migrated). '9' sorts
      // last in the active set (one deadline, then ids as text), so a pass that moved each job as it read it would
      // have moved the eleven others before failing.
      const broken = store.keys.key('queue', 'stall-error', 'j:9');
      await store.command('DEL', broken);
      await store.command('SET', broken, 'not a hash');
      await sleep(shortLease + 50);
      await expect(move(backend, { leaseMs: shortLease, worker: 'x' })).rejects.toThrow(/WRONGTYPE/);
      expect(await backend.counts()).toMatchObject({ waiting: 0, active: 12 });

      // Gone, it only leaves the active set; the others go back in lease order.
      await store.command('DEL', broken);
      const { stalled } = await stallPass(backend);
      expect(stalled).toEqual(order.filter((id) => id !== '9'));
      expect(await backend.counts()).toMatchObject({ waiting: 11, active: 0 });
    });
  }

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
