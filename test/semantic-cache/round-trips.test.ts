// A hit costs one store call: the exact id and the guarded vector candidates are asked for together once the
// partition's index is in memory (the bench suite counts the same on a real Redis with INFO commandstats).

import { createRedisKit } from '../../plugin/index';
import { MemorySemanticBackend } from '../../plugin/semantic-cache/memory';

const ask = (content: string) => ({ model: 'm', messages: [{ role: 'user', content }] });

test('exact hits, semantic hits and misses each cost one store call once the index is loaded', async () => {
  const kit = createRedisKit({ store: 'memory', logger: false, env: {} });
  try {
    const cache = kit.semanticCache();
    const question = 'How do I reset the password of my email account on a new phone?';
    await cache.store(ask(question), 'A');
    await cache.lookup(ask('warm the partition index up')); // first use loads the index
    const hit = jest.spyOn(MemorySemanticBackend.prototype, 'hit');
    expect((await cache.lookup(ask(question))).kind).toBe('exact');
    expect(hit).toHaveBeenCalledTimes(1);
    hit.mockClear();
    const semantic = await cache.lookup(ask('How can I reset my email account password on my new phone?'));
    expect(semantic.kind).toBe('semantic');
    expect(hit).toHaveBeenCalledTimes(1);
    expect(hit.mock.calls[0]?.[1]).toHaveLength(2); // the exact id, then the candidate
    hit.mockClear();
    expect((await cache.lookup(ask('What is the capital of France?'))).status).toBe('miss');
    expect(hit).toHaveBeenCalledTimes(1);
    hit.mockRestore();
  } finally {
    await kit.close();
  }
});

test('a candidate removed from the store meanwhile is a miss (expired) and leaves the index', async () => {
  const kit = createRedisKit({ store: 'memory', logger: false, env: {} });
  try {
    const cache = kit.semanticCache({ syncInterval: '1 h' });
    const question = 'How do I reset the password of my email account on a new phone?';
    await cache.store(ask(question), 'A');
    const reworded = 'How can I reset my email account password on my new phone?';
    expect((await cache.lookup(ask(reworded))).kind).toBe('semantic');
    // Remove the entry behind the index's back (no change-log pull for an hour).
    const gone = jest.spyOn(MemorySemanticBackend.prototype, 'hit').mockResolvedValue(null);
    const miss = await cache.lookup(ask(reworded));
    gone.mockRestore();
    expect(miss).toMatchObject({ status: 'miss', reason: 'expired' });
    expect(cache.stats().indexedEntries).toBe(0);
  } finally {
    await kit.close();
  }
});
