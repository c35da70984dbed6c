// The lock contract, unchanged on every store: exclusivity, fencing, leases on the store's clock, waiting woken
// by the release, automatic extension, semaphores, read/write locks, FIFO fairness and typed errors.

import {
  LockInputError,
  LockLostError,
  LockNotHeldError,
  LockTimeoutError,
  type RedisKit,
  type RedisStore,
} from '../../plugin/index';
import { describeForEachStore } from '../support/stores';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves once `signal` has aborted, including when it already had (an abort event fires only once). */
const whenAborted = (signal: AbortSignal) =>
  signal.aborted ? Promise.resolve() : new Promise((resolve) => signal.addEventListener('abort', resolve));

/** A resource protected by fencing: it remembers the highest token it accepted and refuses older ones. */
function fencedResource() {
  let highest = 0;
  const writes: Array<{ who: string; token: number }> = [];
  return {
    writes,
    write(who: string, token: number): boolean {
      if (token <= highest) return false;
      highest = token;
      writes.push({ who, token });
      return true;
    },
  };
}

describeForEachStore('locks', ({ tier, makeKit }) => {
  // Upstash cannot subscribe: waiters poll, so keep its polling snappy in tests that wait.
  const kitFor = (extra: Parameters<typeof makeKit>[0] = {}): RedisKit => makeKit(extra);

  test('a held lock excludes others; release lets the next one in with a higher fencing token', async () => {
    const kit = kitFor();
    const a = await kit.locks.acquire('job', { ttl: '5 s' });
    expect(a.token).toMatch(/^[0-9a-f-]{36}$/);
    expect(Number.isSafeInteger(a.fencingToken)).toBe(true);
    await expect(kit.locks.acquire('job', { waitTimeout: 0 })).rejects.toBeInstanceOf(LockTimeoutError);
    await expect(kit.locks.acquire('job', { waitTimeout: 0 })).rejects.toMatchObject({
      code: 'ERR_KIT_LOCK_TIMEOUT',
      status: 409,
    });
    // Another name is independent.
    const other = await kit.locks.acquire('other-job', { waitTimeout: 0 });
    await other.release();
    await a.release();
    const b = await kit.locks.acquire('job', { waitTimeout: 0 });
    expect(b.fencingToken).toBeGreaterThan(a.fencingToken);
    await b.release();
    // A second release of the same lock does nothing.
    await b.release();
  });

  test('fencing tokens keep increasing after the stored token has expired (they follow the clock)', async () => {
    // ioredis-mock's TIME is not a clock: whole seconds rounded (not floored) paired with process.hrtime()'s
    // nanoseconds, so it jumps back and forth within a second. Real Redis (and every other tier) is monotonic.
    if (tier === 'ioredis-mock') return;
    const kit = kitFor();
    const a = await kit.locks.acquire('clocked', { ttl: '5 s' });
    await a.release();
    // What a FLUSHALL, an eviction or the hour-long expiry would do to the last token.
    await kit.store.del(
      kit.store.keys.key('locks', 'clocked', 'f'),
      kit.store.keys.key('locks', 'clocked', 'mem-mutex'),
    );
    await sleep(5);
    const b = await kit.locks.acquire('clocked', { waitTimeout: 0 });
    expect(b.fencingToken).toBeGreaterThan(a.fencingToken);
    expect(Number.isSafeInteger(b.fencingToken)).toBe(true);
    await b.release();
  });

  test('two kits on the same store exclude each other', async () => {
    if (tier === 'memory' || tier === 'ioredis-mock') return; // each kit has its own private store there
    const k1 = kitFor({ prefix: 'shared1' });
    const k2 = kitFor({ prefix: 'shared1' });
    const name = `cross-${Math.random()}`;
    const a = await k1.locks.acquire(name);
    await expect(k2.locks.acquire(name, { waitTimeout: 0 })).rejects.toBeInstanceOf(LockTimeoutError);
    await a.release();
    const b = await k2.locks.acquire(name, { waitTimeout: 0 });
    expect(b.fencingToken).toBeGreaterThan(a.fencingToken);
    await b.release();
  });

  test('leases expire by themselves, and the signal of the lost lease fires', async () => {
    const kit = kitFor();
    const a = await kit.locks.acquire('short', { ttl: 1000 });
    expect(a.remainingMs).toBeGreaterThan(0);
    const aborted = whenAborted(a.signal);
    await expect(kit.locks.acquire('short', { waitTimeout: 0 })).rejects.toBeInstanceOf(LockTimeoutError);
    await aborted;
    expect(a.signal.reason).toBeInstanceOf(LockLostError);
    // The local signal fires early (the lease is counted from when the request was sent); the store's ends later.
    await sleep(100);
    const b = await kit.locks.acquire('short', { waitTimeout: 0 });
    expect(b.fencingToken).toBeGreaterThan(a.fencingToken);
    await expect(a.release()).rejects.toBeInstanceOf(LockNotHeldError);
    await expect(a.extend()).rejects.toBeInstanceOf(LockNotHeldError);
    await b.release();
  });

  test('extend keeps the lease; extending a lost lease fails with LockLostError', async () => {
    const kit = kitFor();
    // Generous margins: the machine running the tests may be busy.
    const a = await kit.locks.acquire('ext', { ttl: 800 });
    await sleep(300);
    await a.extend(2000);
    await sleep(700);
    await expect(kit.locks.acquire('ext', { waitTimeout: 0 })).rejects.toBeInstanceOf(LockTimeoutError);
    expect(a.signal.aborted).toBe(false);
    await a.release();

    const b = await kit.locks.acquire('ext2', { ttl: 100 });
    await sleep(250);
    const c = await kit.locks.acquire('ext2', { waitTimeout: 0 });
    await expect(b.extend()).rejects.toBeInstanceOf(LockLostError);
    await c.release();
  });

  test('a waiter is handed the lock when the holder releases', async () => {
    // A long fallback poll: on stores that can subscribe only the release notification can wake the waiter in time.
    const kit = kitFor({ locks: { pollInterval: '20 s' } });
    const a = await kit.locks.acquire('handoff', { ttl: '30 s' });
    const started = Date.now();
    const waiting = kit.locks.acquire('handoff', { waitTimeout: '15 s' });
    await sleep(100);
    await a.release();
    const b = await waiting;
    expect(b.fencingToken).toBeGreaterThan(a.fencingToken);
    if (kit.store.canSubscribe) expect(Date.now() - started).toBeLessThan(5000);
    await b.release();
  });

  test('many waiters all get the lock in turn, one at a time', async () => {
    const kit = kitFor({ locks: { pollInterval: '20 s', minPollInterval: 5 } });
    const resource = fencedResource();
    let inside = 0;
    let overlaps = 0;
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        kit.locks.withLock(
          'turns',
          async ({ fencingToken }) => {
            inside++;
            if (inside > 1) overlaps++;
            await sleep(5);
            expect(resource.write(`w${i}`, fencingToken)).toBe(true);
            inside--;
          },
          { waitTimeout: '20 s' },
        ),
      ),
    );
    expect(overlaps).toBe(0);
    expect(resource.writes).toHaveLength(8);
  });

  test('a waiter gives up after waitTimeout, and an aborted wait rejects with the reason', async () => {
    const kit = kitFor();
    const a = await kit.locks.acquire('busy', { ttl: '10 s' });
    const started = Date.now();
    await expect(kit.locks.acquire('busy', { waitTimeout: 150 })).rejects.toBeInstanceOf(LockTimeoutError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    const controller = new AbortController();
    const waiting = kit.locks.acquire('busy', { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('client went away')), 50);
    await expect(waiting).rejects.toThrow('client went away');
    await a.release();
  });

  test('a holder that never releases blocks others for at most its TTL', async () => {
    const kit = kitFor({ locks: { pollInterval: '20 s' } });
    await kit.locks.acquire('crashed', { ttl: 300 }); // never released
    const started = Date.now();
    const b = await kit.locks.acquire('crashed', { waitTimeout: '5 s' });
    const waited = Date.now() - started;
    expect(waited).toBeLessThan(300 + 1000); // woken by the lease's end, not by the 20 s fallback poll
    await b.release();
  });

  test('withLock extends the lease while the work runs and releases at the end', async () => {
    const kit = kitFor();
    const result = await kit.locks.withLock(
      'long-work',
      async ({ signal, fencingToken }) => {
        await sleep(1500); // more than three leases
        expect(signal.aborted).toBe(false);
        await expect(kit.locks.acquire('long-work', { waitTimeout: 0 })).rejects.toBeInstanceOf(LockTimeoutError);
        return fencingToken;
      },
      { ttl: 450 },
    );
    expect(result).toBeGreaterThan(0);
    const next = await kit.locks.acquire('long-work', { waitTimeout: 0 });
    await next.release();
  });

  test('withLock aborts the signal when an extension finds the lease gone, and rejects with LockLostError', async () => {
    const kit = kitFor();
    let sawAbort = false;
    await expect(
      kit.locks.withLock(
        'stolen',
        async ({ signal }) => {
          // Someone deletes the lease behind our back (an operator, a FLUSHDB): the next extension notices.
          await kit.store.del(kit.store.keys.key('locks', 'stolen', 'o'));
          if (kit.store.mode === 'memory') await kit.store.del(kit.store.keys.key('locks', 'stolen', 'mem-mutex'));
          await whenAborted(signal);
          sawAbort = true;
          expect(signal.reason).toBeInstanceOf(LockLostError);
        },
        { ttl: 150 },
      ),
    ).rejects.toBeInstanceOf(LockLostError);
    expect(sawAbort).toBe(true);
  });

  test('withLock releases when the function throws, and rethrows its error', async () => {
    const kit = kitFor();
    await expect(
      kit.locks.withLock('throws', () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    const again = await kit.locks.acquire('throws', { waitTimeout: 0 });
    await again.release();
  });

  test('paused holder: its late write is rejected by the fencing check', async () => {
    const kit = kitFor();
    const resource = fencedResource();
    const a = await kit.locks.acquire('doc-1', { ttl: 150 });
    await sleep(300); // a GC pause, a stopped VM: the lease runs out while A does not notice
    const b = await kit.locks.acquire('doc-1', { waitTimeout: '2 s' });
    expect(resource.write('B', b.fencingToken)).toBe(true);
    expect(resource.write('A (late)', a.fencingToken)).toBe(false);
    expect(resource.writes.map((w) => w.who)).toEqual(['B']);
    await b.release();
  });

  test('a semaphore admits at most `limit` holders', async () => {
    const kit = kitFor();
    const sem = kit.locks.semaphore('pool', 3);
    const permits = await Promise.all([sem.acquire(), sem.acquire(), sem.acquire()]);
    const tokens = permits.map((p) => p.fencingToken);
    expect(new Set(tokens).size).toBe(3);
    await expect(sem.acquire({ waitTimeout: 0 })).rejects.toBeInstanceOf(LockTimeoutError);
    const waiting = sem.acquire({ waitTimeout: '5 s' });
    await sleep(50);
    await permits[0]?.release();
    const fourth = await waiting;
    expect(fourth.fencingToken).toBeGreaterThan(Math.max(...tokens));
    await expect(sem.acquire({ waitTimeout: 0 })).rejects.toBeInstanceOf(LockTimeoutError);
    await fourth.extend(5000);
    for (const p of [...permits.slice(1), fourth]) await p.release();
    let peak = 0;
    let inside = 0;
    await Promise.all(
      Array.from({ length: 8 }, () =>
        sem.withPermit(async () => {
          inside++;
          peak = Math.max(peak, inside);
          await sleep(20);
          inside--;
        }),
      ),
    );
    expect(peak).toBeLessThanOrEqual(3);
  });

  test('semaphore permits expire by themselves', async () => {
    const kit = kitFor();
    const sem = kit.locks.semaphore('leaky', 1);
    const p = await sem.acquire({ ttl: 120 });
    await sleep(200);
    const q = await sem.acquire({ waitTimeout: 0 });
    await expect(p.release()).rejects.toBeInstanceOf(LockNotHeldError);
    await q.release();
  });

  test('read/write lock: readers share, a writer excludes, a waiting writer holds new readers back', async () => {
    const kit = kitFor();
    const rw = kit.locks.rwlock('table');
    const r1 = await rw.read();
    const r2 = await rw.read({ waitTimeout: 0 });
    await expect(rw.write({ waitTimeout: 0 })).rejects.toBeInstanceOf(LockTimeoutError);
    const writer = rw.write({ waitTimeout: '5 s' });
    await sleep(50);
    // The writer is queued: a new reader must not jump ahead of it.
    await expect(rw.read({ waitTimeout: 0 })).rejects.toBeInstanceOf(LockTimeoutError);
    await r1.release();
    await r2.release();
    const w = await writer;
    expect(w.fencingToken).toBeGreaterThan(r2.fencingToken);
    await expect(rw.read({ waitTimeout: 0 })).rejects.toBeInstanceOf(LockTimeoutError);
    await w.extend();
    const reading = rw.withRead(async ({ fencingToken }) => fencingToken, { waitTimeout: '5 s' });
    await sleep(30);
    await w.release();
    expect(await reading).toBeGreaterThan(w.fencingToken);
  });

  test('fair mode hands the lock over in arrival order', async () => {
    // Arrival is stamped with the server's TIME, which ioredis-mock does not keep monotonic (see above).
    if (tier === 'ioredis-mock') return;
    // With a long fallback poll a waiter registration lasts ~31 s: a waiter that gave up must leave the queue
    // explicitly, or the ones behind it would time out. (Upstash polls, so it keeps a short interval.)
    const pollInterval = tier === 'upstash' ? '2 s' : '20 s';
    const kit = kitFor({ locks: { fair: true, minPollInterval: 5, pollInterval } });
    const holder = await kit.locks.acquire('queue', { ttl: '10 s' });
    // Load the waiting script first: its first run (a compile on ioredis-mock) must not reorder the arrivals below.
    await expect(kit.locks.acquire('queue', { waitTimeout: 50 })).rejects.toBeInstanceOf(LockTimeoutError);
    const order: number[] = [];
    const waiters: Array<Promise<void>> = [];
    for (let i = 0; i < 4; i++) {
      waiters.push(
        kit.locks.withLock(
          'queue',
          async () => {
            order.push(i);
            await sleep(5);
          },
          { waitTimeout: '10 s' },
        ),
      );
      await sleep(100); // each registers before the next arrives
    }
    await holder.release();
    await Promise.all(waiters);
    expect(order).toEqual([0, 1, 2, 3]);
  });

  test('keyspace: only the last fencing token outlives the leases and the waiters, and it expires too', async () => {
    if (tier !== 'standalone') return; // KEYS over one server; the other tiers share the scripts
    const kit = kitFor({ locks: { pollInterval: '200 ms' } });
    const store = kit.store as RedisStore;
    const a = await kit.locks.acquire('tidy', { ttl: '5 s' });
    const waiting = kit.locks.acquire('tidy', { waitTimeout: '5 s' });
    // The waiter's queue entry reaches the server within a few milliseconds, longer on a loaded machine: read the
    // keyspace until it is there (at most 2 s), rather than once after a fixed 50 ms.
    const keys = async () =>
      ((await store.command('KEYS', `${store.keys.prefix}:*`)) as string[])
        .map((k) => k.slice(store.keys.prefix.length))
        .sort();
    let during = await keys();
    for (let i = 0; i < 40 && during.length < 4; i++) {
      await sleep(50);
      during = await keys();
    }
    expect(during).toEqual([':locks:{tidy}:f', ':locks:{tidy}:o', ':locks:{tidy}:q', ':locks:{tidy}:qx']);
    await a.release();
    await (await waiting).release();
    const after = (await store.command('KEYS', `${store.keys.prefix}:*`)) as string[];
    expect(after.map((k) => k.slice(store.keys.prefix.length))).toEqual([':locks:{tidy}:f']);
    const ttl = Number(await store.command('PTTL', `${store.keys.prefix}:locks:{tidy}:f`));
    expect(ttl).toBeGreaterThan(3_600_000);
    expect(ttl).toBeLessThanOrEqual(3_610_000); // an hour after the longest lease (the waiter's 10 s)
  });

  test('bad input gets clear typed errors before any I/O', async () => {
    const kit = kitFor();
    const l = kit.locks;
    await expect(l.acquire('')).rejects.toThrow(/must not be empty/);
    await expect(l.acquire('x'.repeat(5000))).rejects.toThrow(/at most 1024 characters/);
    await expect(l.acquire(42 as unknown as string)).rejects.toBeInstanceOf(LockInputError);
    await expect(l.acquire('bad\uD800name')).rejects.toThrow(/lone UTF-16 surrogate/);
    await expect(l.acquire('x', { ttl: -5 })).rejects.toMatchObject({ code: 'ERR_KIT_LOCK_INPUT', status: 400 });
    await expect(l.acquire('x', { ttl: 0 })).rejects.toThrow(/ttl/);
    await expect(l.acquire('x', { ttl: 1 })).rejects.toThrow(/at least 10 ms/);
    await expect(l.acquire('x', { ttl: Number.NaN })).rejects.toThrow(/ttl/);
    await expect(l.acquire('x', { ttl: '10 years' })).rejects.toThrow(/ttl/);
    await expect(l.acquire('x', { ttl: 1e12 })).rejects.toThrow(/maximum/);
    await expect(l.acquire('x', { waitTimeout: -1 })).rejects.toThrow(/waitTimeout/);
    await expect(l.acquire('x', { tll: 100 } as never)).rejects.toThrow(/Did you mean 'ttl'/);
    expect(() => l.semaphore('s', 0)).toThrow(LockInputError);
    expect(() => l.semaphore('s', 1.5)).toThrow(/whole number/);
    await expect(l.withLock('x', 'nope' as never)).rejects.toBeInstanceOf(LockInputError);
    // Kit-wide options fail at construction, with the fix in the message.
    expect(() => makeKit({ locks: { tll: '1 s' } as never })).toThrow(/Did you mean 'ttl'/);
    expect(() => makeKit({ locks: { ttl: 5 } })).toThrow(/locks.ttl: at least 10 ms/);
    expect(() => makeKit({ locks: { pollInterval: 'soon' } })).toThrow(/locks.pollInterval/);
    expect(() => makeKit({ locks: { fair: 'yes' } as never })).toThrow(/locks.fair/);
  });

  test('unicode and long names work and stay distinct', async () => {
    const kit = kitFor();
    const names = ['Ünïcødé-lock ✓', 'ключ', '锁', '🔒🔑', `${'x'.repeat(1000)}a`, `${'x'.repeat(1000)}b`];
    const locks = await Promise.all(names.map((n) => kit.locks.acquire(n, { waitTimeout: 0 })));
    for (const n of names) await expect(kit.locks.acquire(n, { waitTimeout: 0 })).rejects.toThrow(LockTimeoutError);
    for (const lock of locks) await lock.release();
  });
});
