// The embedded engine's eviction at its cap reads the oldest entries through a long-lived cursor (so a full store
// does not pay O(maxKeys) per write): these pin down that it still evicts the right key when entries are deleted,
// re-inserted, updated in place or expired while the cursor holds them.

import { MemoryEngine } from '../../plugin/connection/memory';

const engine = (maxKeys: number, now: () => number = () => 0) =>
  new MemoryEngine({ maxKeys, sweepIntervalMs: 60_000, now });

test('a key deleted and set again counts as new; one updated in place keeps its age', () => {
  const e = engine(3);
  for (const k of ['a', 'b', 'c']) e.set(k, k);
  e.delete('a');
  e.set('a', 'again'); // now the newest
  e.set('b', 'updated'); // still the oldest
  e.set('d', 'd');
  expect(['a', 'b', 'c', 'd'].map((k) => e.get(k))).toEqual(['again', undefined, 'c', 'd']);
  e.close();
});

test('entries deleted while eviction holds them are skipped, not evicted twice or resurrected', () => {
  const e = engine(4);
  for (const k of ['a', 'b', 'c', 'd']) e.set(k, k);
  e.set('e', 'e'); // evicts a; eviction now holds b, c, d, e
  e.delete('b');
  e.delete('c');
  e.set('f', 'f'); // room without eviction
  e.set('g', 'g'); // room without eviction
  e.set('h', 'h'); // full again: evicts d, the oldest left
  expect(['b', 'c', 'd', 'e', 'f', 'g', 'h'].map((k) => e.get(k))).toEqual([
    undefined,
    undefined,
    undefined,
    'e',
    'f',
    'g',
    'h',
  ]);
  expect(e.size).toBe(4);
  expect(e.evictions).toBe(2);
  e.close();
});

test('an expired key among the oldest few goes before the oldest live one', () => {
  let now = 0;
  const e = engine(20, () => now);
  for (let i = 0; i < 20; i++) e.set(`k${i}`, i, i === 7 ? 10 : 0);
  now = 50;
  e.set('new', 1);
  expect(e.get('k0')).toBe(0);
  expect(e.get('k7')).toBeUndefined();
  expect(e.evictions).toBe(0);
  e.close();
});

test('a long run of mixed writes never holds more than maxKeys and evicts oldest first', () => {
  const e = engine(1000);
  let inserted = 0;
  for (let i = 0; i < 20_000; i++) {
    const r = i % 10;
    if (r === 0) e.delete(`k${i - 500}`);
    else if (r === 1) e.set(`k${i - 3}`, 'update');
    else {
      e.set(`k${i}`, i);
      inserted++;
    }
    expect(e.size).toBeLessThanOrEqual(1000);
  }
  // The newest 1000 written keys are (nearly all) present; none of the first thousand survives.
  expect(e.get('k19999')).toBe(19_999);
  expect([...Array(1000).keys()].filter((i) => e.get(`k${i}`) !== undefined)).toEqual([]);
  expect(inserted).toBeGreaterThan(1000);
  e.clear();
  e.set('after-clear', 1);
  expect(e.size).toBe(1);
  e.close();
});
