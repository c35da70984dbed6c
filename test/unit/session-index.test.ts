// The embedded store's session index (a user's sessions, or every session for the express-session adapter) prunes
// expired ids in batches when it has doubled, instead of scanning itself on every add (which made the n-th new
// session cost O(n), found by bench/memory-bounds.ts). What it must still guarantee: expired ids do not pile up.

import { MemoryEngine } from '../../plugin/connection/memory';
import { MemorySessionBackend } from '../../plugin/session/memory';

test('expired ids are pruned: the index stays within twice its live members (plus a small floor)', async () => {
  let now = 0;
  const engine = new MemoryEngine({ maxKeys: 10_000, sweepIntervalMs: 60_000, now: () => now });
  const backend = new MemorySessionBackend(engine);
  const index = 'rk:session:{_:index}';
  let largest = 0;
  for (let i = 0; i < 5000; i++) {
    now += 10;
    await backend.indexAdd(index, `id${i}`, 1000); // each id lives 1 s: about 100 alive at any time
    largest = Math.max(largest, (await backend.indexMembers(index)).length);
  }
  expect(largest).toBeGreaterThanOrEqual(100);
  expect(largest).toBeLessThanOrEqual(2 * 101 + 1);
  const members = await backend.indexMembers(index);
  expect(members).toContain('id4999');
  expect(members).not.toContain('id0');
  engine.close();
});

test('a user with a few sessions keeps all of them, and a re-added id stays once', async () => {
  const engine = new MemoryEngine({ maxKeys: 100, sweepIntervalMs: 60_000 });
  const backend = new MemorySessionBackend(engine);
  for (const id of ['a', 'b', 'c', 'b']) await backend.indexAdd('rk:session:{_:u:tom}:idx', id, 60_000);
  expect((await backend.indexMembers('rk:session:{_:u:tom}:idx')).sort()).toEqual(['a', 'b', 'c']);
  engine.close();
});
