// The uncontended mutex steps of one event-loop turn run as a few script calls (plugin/locks/batch.ts): every caller
// still gets its own answer, a step that fails fails only its caller, and one name asked for many times in one
// turn is still granted once.

import Redis from 'ioredis';
import {
  createRedisKit,
  LockNotHeldError,
  LockTimeoutError,
  type RedisKit,
  StoreCommandError,
} from '../../plugin/index';
import { EARLY_STEPS } from '../../plugin/locks/batch';
import { type RedisProcess, startRedis } from '../support/redis-server';
import { describeWithRedis } from '../support/require-redis';

async function scriptCalls(admin: Redis): Promise<number> {
  const text = String(await admin.info('commandstats'));
  let calls = 0;
  for (const m of text.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)) calls += Number(m[1]);
  return calls;
}

describeWithRedis('locks: one script call per event-loop turn [own redis-server]', () => {
  let redis: RedisProcess;
  let kit: RedisKit;
  let admin: Redis;

  beforeAll(async () => {
    redis = await startRedis();
    kit = createRedisKit({ redis: redis.url, logger: false, env: {}, prefix: 'b', commandTimeout: '5 s' });
    admin = new Redis(redis.url);
    // Load the scripts (a first call sends the text after NOSCRIPT, which commandstats would count twice).
    const warm = await Promise.all([kit.locks.acquire('warm1'), kit.locks.acquire('warm2')]);
    await Promise.all(warm.map((l) => l.release()));
  }, 30_000);

  afterAll(async () => {
    await kit.close();
    admin.disconnect();
    await redis.stop();
  });

  test('forty acquires and forty releases of one turn take one script call per group of EARLY_STEPS, with their own tokens', async () => {
    const before = await scriptCalls(admin);
    const names = Array.from({ length: 40 }, (_, i) => `n${i}`);
    const locks = await Promise.all(names.map((n) => kit.locks.acquire(n, { waitTimeout: 0 })));
    const owners = await Promise.all(names.map((n) => admin.get(`b:locks:{${n}}:o`)));
    expect(owners).toEqual(locks.map((l) => l.token));
    expect(new Set(locks.map((l) => l.fencingToken)).size).toBe(40);
    await Promise.all(locks.map((l) => l.release()));
    expect(await Promise.all(names.map((n) => admin.exists(`b:locks:{${n}}:o`)))).toEqual(names.map(() => 0));
    // 40 steps: groups of 16, 16 and 8, for the acquires and again for the releases.
    expect((await scriptCalls(admin)) - before).toBe(2 * Math.ceil(40 / EARLY_STEPS));
  });

  test('a release sent in the same turn as an extension is not counted as a lost lease', async () => {
    const lock = await kit.locks.acquire('extend-release');
    const signal = lock.signal;
    const lost = kit.locks.stats().leasesLost;
    // The release is an uncontended step and leaves first: the extension then finds the lease gone.
    const [extended, released] = await Promise.allSettled([lock.extend(), lock.release()]);
    expect(released.status).toBe('fulfilled');
    if (extended.status === 'rejected') expect(extended.reason).toBeInstanceOf(LockNotHeldError);
    expect(kit.locks.stats().leasesLost).toBe(lost);
    expect(signal.aborted).toBe(false);
  });

  test('one name asked for five times in one turn is granted once', async () => {
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, () => kit.locks.acquire('same', { waitTimeout: 0 })),
    );
    const granted = results.filter((r) => r.status === 'fulfilled');
    expect(granted).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(LockTimeoutError);
    await (granted[0] as PromiseFulfilledResult<{ release(): Promise<void> }>).value.release();
  });

  test('a step that fails fails only its own caller', async () => {
    const [broken, fine] = await Promise.all([kit.locks.acquire('broken'), kit.locks.acquire('fine')]);
    // Someone overwrote the owner key with another type: the release's GET fails with WRONGTYPE.
    await admin.del('b:locks:{broken}:o');
    await admin.hset('b:locks:{broken}:o', 'x', '1');
    const [a, b] = await Promise.allSettled([broken?.release(), fine?.release()]);
    expect(a?.status).toBe('rejected');
    expect((a as PromiseRejectedResult).reason).toBeInstanceOf(StoreCommandError);
    expect((a as PromiseRejectedResult).reason.message).toMatch(/WRONGTYPE/);
    expect(b?.status).toBe('fulfilled');
    expect(await admin.exists('b:locks:{fine}:o')).toBe(0);
  });
});
