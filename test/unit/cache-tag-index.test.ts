// A tag's member index drops the keys of entries that are gone, on both backends: a tag that keeps getting new
// entries (one per product page, say) would otherwise keep the key of every entry it ever had until it is
// invalidated. Before the index was scored by expiry, a busy tag on Redis grew without bound.

import type { RedisStore } from '../../plugin/connection/store';
import { createRedisKit, type RedisKit } from '../../plugin/index';
import { MemoryCacheBackend } from '../../plugin/response-cache/memory';
import { RedisCacheBackend } from '../../plugin/response-cache/redis';
import type { MemoryStore } from '../../plugin/connection/store';
import { standaloneUrl, uniquePrefix } from '../support/stores';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function churn(
  backend: MemoryCacheBackend | RedisCacheBackend,
  tag: { members: string; invalidated: string },
  size: () => Promise<number>,
): Promise<void> {
  // One long-lived entry keeps the tag alive; then three rounds of 100 entries gone 20 ms after they were added.
  await backend.tagAdd(tag, 'long', 0, 60_000, 0);
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 100; i++) expect(await backend.tagAdd(tag, `e${round}-${i}`, 0, 20, 0)).toBe(true);
    await sleep(60);
  }
  // The last round and a pruning slack at most, not all three hundred.
  expect(await size()).toBeLessThan(150);
  const members = await backend.tagPurge(tag, 60_000);
  expect(members).toContain('long');
  expect(members).not.toContain('e0-0');
}

let kit: RedisKit | undefined;
afterEach(async () => {
  await kit?.close();
  kit = undefined;
});

test('embedded store: expired members are pruned', async () => {
  kit = createRedisKit({ logger: false, env: {} });
  const store = kit.store as unknown as MemoryStore;
  const backend = new MemoryCacheBackend(store);
  const tag = { members: 'tag-test:m', invalidated: 'tag-test:i' };
  await churn(backend, tag, async () => {
    const index = store.engine.get<Set<string> | { members: Map<string, number> }>(tag.members);
    if (!index) return 0;
    return index instanceof Set ? index.size : index.members.size;
  });
});

const url = standaloneUrl();
(url ? test : test.skip)(
  'Redis: expired members are pruned, and the plain set of an earlier version is read, not converted',
  async () => {
    kit = createRedisKit({ logger: false, env: {}, redis: url, prefix: uniquePrefix() });
    await kit.ready();
    const store = kit.store as unknown as RedisStore;
    const backend = new RedisCacheBackend(store);
    const head = `${uniquePrefix()}:{tag}`;
    const tag = { members: `${head}:m`, invalidated: `${head}:i` };
    await churn(backend, tag, async () => Number(await store.command('ZCARD', tag.members)));

    // A plain set an earlier version wrote (a rolling deploy's older instances still do): left as it is by a
    // registration, read and deleted by an invalidation.
    const both = { members: `${head}:new:z`, invalidated: `${head}:new:i`, legacy: `${head}:new:m` };
    await store.command('SADD', both.legacy, 'a', 'b');
    await backend.tagAdd(both, 'c', 0, 60_000, 0);
    expect(await store.command('TYPE', both.legacy)).toBe('set');
    expect((await backend.tagPurge(both, 60_000)).sort()).toEqual(['a', 'b', 'c']);
    expect(Number(await store.command('EXISTS', both.legacy, both.members))).toBe(0);
  },
);
