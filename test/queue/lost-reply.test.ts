// A worker's fetch whose reply never arrives (a timeout, a reset) may still have run on the server and leased jobs
// to a worker that never saw them. Those jobs have not run, so they must not count a stall, nor wait out a lease:
// the worker names each fetch, and its next call that gets through gives that fetch's jobs back.
//
// 1. The backend contract on every store: a released fetch puts its jobs back at the head, in order, with the
//    attempt undone and no stall; a job already finished (or re-leased) is left alone; a record goes once; only a
//    worker's latest fetch is recorded, and only for that worker. And the worker on every store, with a fetch that
//    runs and then fails as a lost reply would: its next call gives the jobs back (they run once, no stall), and so
//    does close() when it comes first.
// 2. End to end on a real Redis behind the fault proxy: replies slower than the command timeout, then healed; the
//    jobs the lost fetches took run long before their lease would have ended, with no stall recorded. And a reset
//    while a fetch's reply is on its way: ioredis sends the call again, and the replay answers with what the first
//    run leased (without that, those jobs sat out their lease).

import { neverSent } from '../../plugin/connection/store';
import { createRedisKit, type RedisKit, StoreTimeoutError, StoreUnavailableError } from '../../plugin/index';
import type { Finish, MoveRequest, Outcome, QueueBackend, TakenJob } from '../../plugin/queue/backend';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy';
import { freePort, type RedisProcess, startRedis } from '../support/redis-server';
import { describeWithRedis } from '../support/require-redis';
import { describeForEachStore } from '../support/stores';
import { backendOf, move } from './backend-calls';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A worker's outcome for a job it was leased. */
function fin(t: TakenJob, outcome: Outcome, payload = ''): Finish {
  return { id: t.id, token: t.token, outcome, payload, delayMs: 0 };
}

/**
 * Waits until every job in `ids` shows completed (an outcome travels with the worker's next round trip, so a
 * handler having run is not enough), at most `ms`; returns how long it waited.
 */
async function untilCompleted(
  queue: { getJob(id: string): Promise<{ state: string } | null> },
  ids: readonly string[],
  ms: number,
): Promise<number> {
  const started = Date.now();
  const done = async () =>
    (await Promise.all(ids.map((id) => queue.getJob(id)))).every((j) => j?.state === 'completed');
  while (!(await done()) && Date.now() - started < ms) await sleep(10);
  return Date.now() - started;
}

function job(data: string) {
  return { id: '', data, delayMs: 0, priority: 0, attempts: 3, backoff: '' };
}

describeForEachStore('queue: fetches whose replies were lost', ({ makeKit, tier }) => {
  test('a released fetch puts its jobs back at the head in order, with no attempt used and no stall', async () => {
    const kit = makeKit();
    const backend = backendOf(kit.store, 'lost');
    const [a, b, c] = (await backend.add([job('a'), job('b'), job('c')])).map((r) => r.id) as [string, string, string];

    const first = await move(backend, { take: 2, fetch: '1' });
    expect(first.taken.map((t) => t.id)).toEqual([a, b]);
    expect(first.releasedFetches).toEqual([]);

    // The worker never saw that reply: its next call names the fetch.
    const second = await move(backend, { release: ['1'] });
    expect({ fetches: second.releasedFetches, jobs: second.released, stalled: second.stalled }).toEqual({
      fetches: ['1'],
      jobs: 2,
      stalled: [],
    });
    expect(await backend.counts()).toMatchObject({ waiting: 3, active: 0 });
    for (const id of [a, b]) {
      const record = await backend.getJob(id);
      expect({ st: record?.st, attemptsMade: record?.m, stalls: record?.s ?? '0' }).toEqual({
        st: 'waiting',
        attemptsMade: '0',
        stalls: '0',
      });
    }

    // Back at the head, first job first; each starts at attempt 1 again.
    const third = await move(backend, { take: 3, fetch: '2' });
    expect(third.taken.map((t) => [t.id, t.attempt])).toEqual([
      [a, 1],
      [b, 1],
      [c, 1],
    ]);

    // Released again after one of them finished: the finished one stays finished.
    const ta = third.taken[0] as TakenJob;
    await move(backend, { finishes: [fin(ta, 'c')] });
    const fourth = await move(backend, { release: ['2'] });
    expect(fourth.released).toBe(2);
    expect(await backend.getJob(a)).toMatchObject({ st: 'completed' });
    expect(await backend.counts()).toMatchObject({ waiting: 2, active: 0, completed: 1 });

    // A record's jobs go back once: naming the fetch again (its number is kept) gives nothing back.
    const again = await move(backend, { release: ['2'] });
    expect({ fetches: again.releasedFetches, jobs: again.released }).toEqual({ fetches: ['2'], jobs: 0 });
    expect(await backend.counts()).toMatchObject({ waiting: 2, active: 0, completed: 1 });
  });

  test("a job leased again since stays with its new holder; only a worker's latest fetch is kept", async () => {
    const kit = makeKit();
    const backend = backendOf(kit.store, 'latest');
    const [a] = (await backend.add([job('a')])).map((r) => r.id) as [string];

    // a: leased by fetch 1, failed and retried at once, leased again by fetch 2 (a new delivery token).
    const got = await move(backend, { take: 1, fetch: '1' });
    const first = got.taken[0] as TakenJob;
    expect(first.id).toBe(a);
    await move(backend, { finishes: [fin(first, 'r', 'again')] });
    const retaken = await move(backend, { take: 1, fetch: '2' });
    expect(retaken.taken.map((t) => [t.id, t.attempt])).toEqual([[a, 2]]);
    // Fetch 2 replaced fetch 1's record: naming fetch 1 finds nothing.
    const old = await move(backend, { release: ['1'] });
    expect({ fetches: old.releasedFetches, jobs: old.released }).toEqual({ fetches: [], jobs: 0 });
    expect(await backend.getJob(a)).toMatchObject({ st: 'active', m: '2' });

    // Another worker's call cannot release this worker's fetch.
    const stranger = await move(backend, { worker: 'x', release: ['2'] });
    expect({ fetches: stranger.releasedFetches, jobs: stranger.released }).toEqual({ fetches: [], jobs: 0 });

    // Fetch 2's reply lost after all, but a has since been retried and leased to worker x: nothing to give back.
    await move(backend, {
      finishes: [fin(retaken.taken[0] as TakenJob, 'r', 'x')],
    });
    const third = await move(backend, { worker: 'x', take: 1, fetch: '1' });
    expect(third.taken.map((t) => [t.id, t.attempt])).toEqual([[a, 3]]);
    const late = await move(backend, { release: ['2'] });
    expect({ fetches: late.releasedFetches, jobs: late.released }).toEqual({ fetches: ['2'], jobs: 0 });
    expect(await backend.getJob(a)).toMatchObject({ st: 'active', m: '3' });
  });

  test('a release that comes after the lease ran out undoes the stall, and the dead-lettering it caused', async () => {
    const kit = makeKit();
    const backend = backendOf(kit.store, 'late');
    const [a, b] = (await backend.add([job('a'), job('b')])).map((r) => r.id) as [string, string];
    // Short leases (the record lives two of them, so 1 s leaves a loaded machine time to release); maxStalls 1: a
    // second stall dead-letters. Each job stalls once before this fetch.
    // ioredis-mock's TIME jumps back and forth by up to a second while its key expiry follows the real clock: a
    // lease there must be long enough that the record (two leases, real time) outlives the wait for one to end.
    const short = { leaseMs: tier === 'ioredis-mock' ? 3000 : 1000, maxStalls: 1 };
    const expire = async (ids: string[]) => {
      // Another worker's call runs the stall pass once the leases have run out.
      const seen = new Set<string>();
      for (let i = 0; i < 500 && !ids.every((id) => seen.has(id)); i++) {
        await sleep(20);
        const r = await move(backend, { ...short, worker: 'x' });
        for (const id of [...r.stalled, ...r.buried]) seen.add(id);
      }
      expect([...seen].sort()).toEqual([...ids].sort());
    };
    await move(backend, { ...short, take: 2, fetch: '1' });
    await expire([a, b]);
    for (const id of [a, b]) expect(await backend.getJob(id)).toMatchObject({ st: 'waiting', s: '1', m: '0' });

    // Worker w's fetch 2 takes both again and its reply is lost; the leases run out before w gets through:
    // one more stall each, which is one too many.
    const lost = await move(backend, { ...short, take: 2, fetch: '2' });
    expect(lost.taken.map((t) => t.id).sort()).toEqual([a, b].sort());
    await expire([a, b]);
    expect(await backend.counts()).toMatchObject({ dead: 2, waiting: 0, active: 0 });

    // w names fetch 2: both stalls were its lost reply's, so both jobs come back, with the stall they really had.
    const late = await move(backend, { ...short, release: ['2'] });
    expect({ fetches: late.releasedFetches, jobs: late.released }).toEqual({ fetches: ['2'], jobs: 2 });
    expect(await backend.counts()).toMatchObject({ dead: 0, waiting: 2, active: 0 });
    for (const id of [a, b]) {
      const record = await backend.getJob(id);
      expect({ st: record?.st, s: record?.s, m: record?.m, e: record?.e }).toEqual({
        st: 'waiting',
        s: '1',
        m: '0',
        e: undefined,
      });
    }
    // Back at the head in the order fetch 2 had taken them, at attempt 1.
    const next = await move(backend, { take: 2, fetch: '3' });
    expect(next.taken.map((t) => [t.id, t.attempt])).toEqual(lost.taken.map((t) => [t.id, 1]));
  });

  test('a replayed fetch (re-sent after a reconnect) answers with the jobs the first run leased', async () => {
    const kit = makeKit();
    const backend = backendOf(kit.store, 'replay');
    const [a, b, c] = (await backend.add([job('a'), job('b'), job('c')])).map((r) => r.id) as [string, string, string];
    const first = await move(backend, { take: 2, fetch: '7' });
    expect(first.taken.map((t) => t.id)).toEqual([a, b]);
    const again = await move(backend, { take: 2, fetch: '7' });
    expect(again.taken).toEqual(first.taken);
    expect(await backend.counts()).toMatchObject({ waiting: 1, active: 2 });
    // The next fetch leases what is left; c was never touched by the replay.
    const next = await move(backend, { take: 2, fetch: '8' });
    expect(next.taken.map((t) => [t.id, t.attempt])).toEqual([[c, 1]]);
  });

  test('a late re-send of an older fetch, or of a released one, leases nothing', async () => {
    const kit = makeKit();
    const backend = backendOf(kit.store, 'older');
    const [a, b] = (await backend.add([job('a'), job('b')])).map((r) => r.id) as [string, string];
    const second = await move(backend, { take: 1, fetch: '2' });
    expect(second.taken.map((t) => t.id)).toEqual([a]);
    // Fetch 1 arrives late (sent again after a reconnect): the worker has moved on, so it takes nothing.
    const older = await move(backend, { take: 1, fetch: '1' });
    expect(older.taken).toEqual([]);
    expect(await backend.counts()).toMatchObject({ waiting: 1, active: 1 });
    // Fetch 2's record is intact, and once released, a late re-send of fetch 2 takes nothing either.
    const released = await move(backend, { release: ['2'] });
    expect({ fetches: released.releasedFetches, jobs: released.released }).toEqual({ fetches: ['2'], jobs: 1 });
    const resent = await move(backend, { take: 1, fetch: '2' });
    expect(resent.taken).toEqual([]);
    expect(await backend.counts()).toMatchObject({ waiting: 2, active: 0 });
    // The worker's next fetch goes on as usual: a back at the head, then b.
    const next = await move(backend, { take: 2, fetch: '3' });
    expect(next.taken.map((t) => t.id)).toEqual([a, b]);
  });

  test('a custom id added again since is not released by a lost fetch of its earlier life', async () => {
    const kit = makeKit();
    const backend = backendOf(kit.store, 'reused');
    const once = { ...job('x'), id: 'report-1' };
    await backend.add([once]);
    const lost = await move(backend, { take: 1, fetch: '1', keepCompleted: { ageMs: 0, count: 0 } });
    const t = lost.taken[0] as TakenJob;
    // Another worker ran it to completion (not kept), and the same id was added again: a new life of the job.
    await move(backend, {
      worker: 'y',
      keepCompleted: { ageMs: 0, count: 0 },
      finishes: [fin(t, 'c')],
    });
    expect(await backend.getJob('report-1')).toBeNull();
    await sleep(5);
    await backend.add([once]);
    const taken = await move(backend, { worker: 'y', take: 1, fetch: '1' });
    expect(taken.taken.map((j) => j.id)).toEqual(['report-1']);
    // Its delivery tokens come from the queue's counter: never one of its earlier life.
    expect(Number((taken.taken[0] as TakenJob).token)).toBeGreaterThan(Number(t.token));
    const late = await move(backend, { release: ['1'] });
    expect({ fetches: late.releasedFetches, jobs: late.released }).toEqual({ fetches: ['1'], jobs: 0 });
    // Nor can the earlier life's outcome or lease renewal touch it.
    const stale = await move(backend, { finishes: [fin(t, 'c')] });
    expect({ lost: stale.lost, repeated: stale.repeated }).toEqual({ lost: 1, repeated: 0 });
    expect(await backend.extend([{ id: t.id, token: t.token }], 60_000)).toEqual([t.id]);
    expect(await backend.getJob('report-1')).toMatchObject({ st: 'active', m: '1' });
    // The current life's renewal and outcome still work.
    const now = taken.taken[0] as TakenJob;
    expect(await backend.extend([{ id: now.id, token: now.token }], 60_000)).toEqual([]);
    const done = await move(backend, { worker: 'y', finishes: [fin(now, 'c')] });
    expect({ lost: done.lost, repeated: done.repeated }).toEqual({ lost: 0, repeated: 0 });
  });

  test('a finish sent again after its reply was lost counts as repeated, not as a lost lease', async () => {
    const kit = makeKit();
    const backend = backendOf(kit.store, 'finish-again');
    const [a, b] = (await backend.add([job('a'), job('b')])).map((r) => r.id) as [string, string];
    const got = await move(backend, { take: 2, fetch: '1' });
    const [ta, tb] = got.taken as unknown as [TakenJob, TakenJob];
    expect([ta.id, tb.id]).toEqual([a, b]);
    const done = fin(ta, 'c');
    const retry = fin(tb, 'r', 'later');
    const first = await move(backend, { finishes: [done, retry] });
    expect({ lost: first.lost, repeated: first.repeated }).toEqual({ lost: 0, repeated: 0 });
    // The same outcomes again (the worker never saw the reply): already recorded.
    const again = await move(backend, { finishes: [done, retry] });
    expect({ lost: again.lost, repeated: again.repeated }).toEqual({ lost: 0, repeated: 2 });
    // b was retried and leased again: a finish of its new delivery is new, a late one of the old is still repeated.
    const next = await move(backend, { take: 1, fetch: '2' });
    const tb2 = next.taken[0] as TakenJob;
    expect(tb2.id).toBe(b);
    const late = await move(backend, {
      finishes: [retry, fin(tb2, 'c')],
    });
    expect({ lost: late.lost, repeated: late.repeated }).toEqual({ lost: 0, repeated: 1 });
    expect(await backend.counts()).toMatchObject({ completed: 2, active: 0 });
  });

  test('a finish from a lease that ran out is still a lost lease', async () => {
    const kit = makeKit();
    const backend = backendOf(kit.store, 'finish-late');
    const [a] = (await backend.add([job('a')])).map((r) => r.id) as [string];
    const got = await move(backend, { take: 1, fetch: '1', leaseMs: 200 });
    const t = got.taken[0] as TakenJob;
    let stalled = false;
    for (let i = 0; i < 300 && !stalled; i++) {
      await sleep(20);
      stalled = (await move(backend, { worker: 'x' })).stalled.includes(a);
    }
    expect(stalled).toBe(true);
    const late = await move(backend, { finishes: [fin(t, 'c')] });
    expect({ lost: late.lost, repeated: late.repeated }).toEqual({ lost: 1, repeated: 0 });
  });

  /** Makes the queue's next fetch run on the store and then fail as a lost reply would; returns what it leased. */
  function loseNextFetch(q: object): Promise<string[]> {
    const inner = q as { backend: QueueBackend };
    const real = inner.backend;
    return new Promise((resolve) => {
      inner.backend = Object.create(real, {
        move: {
          value: async (request: MoveRequest) => {
            if (request.take === 0) return real.move(request);
            inner.backend = real;
            const result = await real.move(request);
            resolve(result.taken.map((t) => t.id));
            throw new StoreTimeoutError('script move', 300);
          },
        },
      }) as QueueBackend;
    });
  }

  test("the worker's next call gives back what a lost fetch leased: the jobs run once, no stall", async () => {
    const kit = makeKit();
    const q = kit.queue<number>('worker', { lease: '30 s', idlePoll: 200 });
    const errors: Error[] = [];
    q.on('error', (error: Error) => errors.push(error));
    const ids = await q.addBulk([1, 2, 3].map((data) => ({ data })));
    const leased = loseNextFetch(q);
    const runs = new Map<string, number>();
    q.process(
      (j) => {
        runs.set(j.id, (runs.get(j.id) ?? 0) + 1);
      },
      { concurrency: 3 },
    );
    expect((await leased).sort()).toEqual([...ids].sort());
    for (let i = 0; i < 500 && runs.size < ids.length; i++) await sleep(10);
    expect(Object.fromEntries(runs)).toEqual(Object.fromEntries(ids.map((id) => [id, 1])));
    expect(errors).toHaveLength(1);
    await untilCompleted(q, ids, 5000);
    for (const id of ids) expect(await q.getJob(id)).toMatchObject({ state: 'completed', stalls: 0, attemptsMade: 1 });
    expect((await q.stats()).local).toMatchObject({ released: 3, stalledRecovered: 0 });
  });

  test('close() right after a lost fetch gives its jobs back', async () => {
    const kit = makeKit();
    const q = kit.queue<number>('closing', { lease: '30 s', idlePoll: 200 });
    const ids = await q.addBulk([1, 2].map((data) => ({ data })));
    const leased = loseNextFetch(q);
    let closed: Promise<void> | undefined;
    // Closed from the error listener: before the worker's retry, so close() is the call that gets through.
    q.on('error', () => {
      closed ??= q.close();
    });
    let ran = 0;
    q.process(
      () => {
        ran++;
      },
      { concurrency: 2 },
    );
    expect((await leased).sort()).toEqual([...ids].sort());
    for (let i = 0; i < 200 && closed === undefined; i++) await sleep(10);
    await closed;
    expect(ran).toBe(0);
    const other = kit.queue<number>('closing');
    expect(await other.counts()).toMatchObject({ waiting: 2, active: 0 });
    for (const id of ids)
      expect(await other.getJob(id)).toMatchObject({ state: 'waiting', stalls: 0, attemptsMade: 0 });
    expect((await q.stats()).local.released).toBe(2);
  });
});

describeWithRedis('queue: lost fetch replies on a real Redis', () => {
  let redis: RedisProcess;
  let proxy: FaultProxy;
  let kit: RedisKit | undefined;
  let direct: RedisKit | undefined;

  beforeAll(async () => {
    redis = await startRedis();
    proxy = await startFaultProxy({ targetPort: redis.port });
  });
  afterAll(async () => {
    await kit?.close();
    await direct?.close();
    await proxy.close();
    await redis.stop();
  });

  test('jobs taken by fetches that timed out run after healing, long before their lease ends, with no stall', async () => {
    const prefix = 'lost-reply';
    kit = createRedisKit({
      redis: proxy.url,
      prefix,
      logger: false,
      env: {},
      commandTimeout: 300,
      circuitBreaker: { failureThreshold: 1000, cooldown: 100 },
    });
    const LEASE_MS = 30_000;
    const q = kit.queue<number>('lost', { lease: LEASE_MS, idlePoll: 200 });
    // The same queue seen past the proxy: counts and job records while the proxied connection is slow.
    direct = createRedisKit({ redis: redis.url, prefix, logger: false, env: {} });
    const seen = direct.queue<number>('lost');
    q.on('error', () => undefined);
    const ids = await q.addBulk([1, 2, 3, 4, 5, 6].map((data) => ({ data })));
    const runs = new Map<string, number>();
    // Replies arrive 500 ms late, past the 300 ms timeout, while every command still runs on the server.
    proxy.setLatency({ down: 500 });
    q.process(
      (j) => {
        runs.set(j.id, (runs.get(j.id) ?? 0) + 1);
      },
      { concurrency: 2 },
    );
    await sleep(1500);
    const leased = (await seen.counts()).active;
    expect(leased).toBeGreaterThan(0); // fetches ran on the server and leased jobs nobody saw
    expect(runs.size).toBe(0);

    proxy.heal();
    const healed = Date.now();
    while (runs.size < ids.length && Date.now() - healed < 10_000) await sleep(20);
    const tookMs = Date.now() - healed;
    expect(tookMs).toBeLessThan(LEASE_MS / 3);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    await untilCompleted(seen, ids, 5000);
    for (const id of ids)
      expect(await seen.getJob(id)).toMatchObject({ state: 'completed', stalls: 0, attemptsMade: 1 });
    const stats = await q.stats();
    expect(stats.local.released).toBeGreaterThanOrEqual(leased);
    expect(stats.local.stalledRecovered).toBe(0);
  }, 30_000);

  test('a fetch re-sent after a connection reset answers with what its first run leased', async () => {
    const prefix = 'lost-reply-reset';
    // A long command timeout: the re-sent call must be answered within it, so the worker sees its reply.
    const faulty = createRedisKit({ redis: proxy.url, prefix, logger: false, env: {}, commandTimeout: '5 s' });
    const seen = createRedisKit({ redis: redis.url, prefix, logger: false, env: {} });
    try {
      const q = faulty.queue<number>('reset', { lease: '30 s', idlePoll: 200 });
      q.on('error', () => undefined);
      const ids = await q.addBulk([1, 2].map((data) => ({ data })));
      const other = seen.queue<number>('reset');
      const runs = new Map<string, number>();
      // Replies held back: the first fetch runs on the server and its reply is still on its way at the reset.
      proxy.setLatency({ down: 1500 });
      q.process(
        (j) => {
          runs.set(j.id, (runs.get(j.id) ?? 0) + 1);
        },
        { concurrency: 1 },
      );
      // (The worker's own connection may still be opening, its handshake slowed down too.)
      let active = 0;
      for (let i = 0; i < 800 && active === 0; i++) {
        await sleep(10);
        active = (await other.counts()).active;
      }
      expect(active).toBe(1);
      expect(runs.size).toBe(0);
      proxy.heal();
      proxy.resetAll(); // ioredis reconnects and sends the unanswered call again
      // Without the replay the second run leased the other job and the first stayed leased for its 30 s.
      expect(await untilCompleted(other, ids, 10_000)).toBeLessThan(10_000);
      expect(Object.fromEntries(runs)).toEqual(Object.fromEntries(ids.map((id) => [id, 1])));
      for (const id of ids) expect(await other.getJob(id)).toMatchObject({ stalls: 0, attemptsMade: 1 });
    } finally {
      await faulty.close();
      await seen.close();
      proxy.heal();
    }
  }, 30_000);
});

test('a call the open circuit refused is known never to have reached the store; a timeout is not', async () => {
  const port = await freePort(); // nothing listens there
  const kit = createRedisKit({
    redis: `redis://127.0.0.1:${port}`,
    logger: false,
    env: {},
    commandTimeout: 200,
    connectTimeout: 200,
    circuitBreaker: { failureThreshold: 1, cooldown: '10 s' },
  });
  try {
    const first = await kit.store.get('k').catch((error: unknown) => error);
    expect(first).toBeInstanceOf(StoreUnavailableError);
    expect(neverSent(first)).toBe(false); // a failure on the way: it may have been sent
    const refused = await kit.store.get('k').catch((error: unknown) => error);
    expect(String(refused)).toMatch(/circuit is open/);
    expect(neverSent(refused)).toBe(true);
    expect(neverSent(new StoreTimeoutError('x', 1))).toBe(false);
  } finally {
    await kit.close();
  }
  expect(neverSent(await kit.store.get('k').catch((error: unknown) => error))).toBe(true); // closed
});
