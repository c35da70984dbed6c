// A partition larger than one scan page loads completely, in pages, on a fresh instance of the embedded store.

import { createRedisKit } from '../../plugin/index';

test('a new cache instance loads a 1,500-entry partition in pages and finds every entry', async () => {
  const kit = createRedisKit({ store: 'memory', logger: false, env: {} });
  try {
    const writer = kit.semanticCache();
    for (let i = 0; i < 1500; i++) {
      const r = await writer.store({ model: 'm', prompt: `question number ${i} about topic zq${i}x` }, i);
      expect(r.stored).toBe(true);
    }
    const reader = kit.semanticCache();
    const ask = { model: 'm', prompt: 'question number 1234 about the topic zq1234x' };
    let result = await reader.lookup(ask);
    // A load longer than 250 ms goes on in the background; lookups meanwhile miss with 'index-loading'.
    for (let i = 0; i < 100 && result.reason === 'index-loading'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      result = await reader.lookup(ask);
    }
    expect(result).toMatchObject({ status: 'hit', kind: 'semantic', response: 1234 });
    expect(reader.stats().indexedEntries).toBe(1500);
  } finally {
    await kit.close();
  }
});

test('at most maxIndexedPartitions partition indexes stay in memory; a dropped one reloads on use', async () => {
  const kit = createRedisKit({ store: 'memory', logger: false, env: {} });
  try {
    const cache = kit.semanticCache({ maxIndexedPartitions: 2 });
    const ask = (namespace: string) => ({ model: 'm', namespace, prompt: 'How can I rotate my API keys safely?' });
    const para = (namespace: string) => ({ model: 'm', namespace, prompt: 'How do I rotate my API keys safely?' });
    for (const ns of ['a', 'b', 'c']) await cache.store(ask(ns), ns);
    for (const ns of ['a', 'b', 'c']) expect((await cache.lookup(para(ns))).response).toBe(ns);
    expect(cache.stats().indexedPartitions).toBe(2);
    expect(await cache.lookup(para('a'))).toMatchObject({ status: 'hit', kind: 'semantic', response: 'a' });
    expect(cache.stats().indexedPartitions).toBe(2);
  } finally {
    await kit.close();
  }
});
