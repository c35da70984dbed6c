// The embedded store's session index (a user's sessions, or every session for the express-session adapter) prunes
// expired ids in batches when it has doubled, instead of scanning itself on every add (which made the n-th new
// session cost O(n), found by bench/memory-bounds.ts). What it must still guarantee: expired ids do not pile up.

import { MemoryEngine } from '../../plugin/connection/memory';
import { META } from '../../plugin/session/backend';
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

test('a read hands out the stored fields as they were: later writes and touches do not change what it returned', async () => {
  let now = 1_000;
  const engine = new MemoryEngine({ maxKeys: 100, sweepIntervalMs: 60_000, now: () => now });
  const backend = new MemorySessionBackend(engine);
  const key = 'rk:session:{_:s}:abc';
  const timeouts = { idleMs: 60_000, absoluteMs: 600_000 };
  expect(await backend.write(key, { mode: 'create', ...timeouts, set: ['a', '1', 'b', '2'], del: [] })).toBe(2);
  now += 10;
  const first = backend.loadNow(key, timeouts, 60_000);
  expect(first && Object.fromEntries(first)).toMatchObject({ a: '1', b: '2' });
  const seenBefore = first?.get(META.seen);
  // A write changes a field and deletes another; a read after a touch interval moves @seen.
  expect(await backend.write(key, { mode: 'update', ...timeouts, set: ['a', '9'], del: ['b'] })).toBe(1);
  now += 1_000;
  const second = backend.loadNow(key, timeouts, 500);
  expect(second && Object.fromEntries(second)).toMatchObject({ a: '9' });
  expect(second?.has('b')).toBe(false);
  const third = backend.loadNow(key, timeouts, 500);
  expect(Number(third?.get(META.seen))).toBe(now);
  // What the first and second reads returned is unchanged.
  expect(first?.get('a')).toBe('1');
  expect(first?.get('b')).toBe('2');
  expect(first?.get(META.seen)).toBe(seenBefore);
  expect(Number(second?.get(META.seen))).toBeLessThan(now);
  engine.close();
});
