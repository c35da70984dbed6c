// The two in-process indexes agree with a brute-force cosine, across removals and compaction.

import { FlatIndex, SparseIndex } from '../../plugin/semantic-cache/vector-index';
import { signals } from '../../plugin/semantic-cache/text';

const sig = signals('x');
let seed = 7;
const rand = () => {
  seed = (seed * 1664525 + 1013904223) >>> 0;
  return seed / 2 ** 32;
};

function sparseVector(d: number, nnz: number): Float32Array {
  const v = new Float32Array(d);
  for (let i = 0; i < nnz; i++) v[Math.floor(rand() * d)] = rand() - 0.3;
  let norm = 0;
  for (const x of v) norm += x * x;
  return v.map((x) => x / Math.sqrt(norm));
}

const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * (b[i] as number), 0);

test('sparse and flat indexes return the brute-force best matches, after removals and compaction', () => {
  const d = 512;
  const sparse = new SparseIndex();
  const flat = new FlatIndex(d);
  const vectors = new Map<string, Float32Array>();
  for (let i = 0; i < 3000; i++) {
    const v = sparseVector(d, 12);
    vectors.set(`e${i}`, v);
    const entry = { id: `e${i}`, expiresAt: i % 10 === 0 ? 1 : Number.MAX_SAFE_INTEGER, text: '', signals: sig };
    sparse.add(entry, v);
    flat.add(entry, v);
  }
  // Enough removals to trigger the sparse index's compaction.
  for (let i = 0; i < 3000; i += 2) {
    expect(sparse.remove(`e${i}`)).toBe(true);
    expect(flat.remove(`e${i}`)).toBe(true);
    vectors.delete(`e${i}`);
  }
  expect(sparse.remove('e0')).toBe(false);
  expect(sparse.size).toBe(1500);
  expect(flat.size).toBe(1500);
  for (let q = 0; q < 30; q++) {
    const query = sparseVector(d, 12);
    const expected = [...vectors.entries()]
      .filter(([id]) => Number(id.slice(1)) % 10 !== 0)
      .map(([id, v]) => ({ id, score: dot(query, v) }))
      .sort((a, b) => b.score - a.score)
      .slice(0, 3);
    for (const index of [sparse, flat]) {
      const got = index.search(query, 3, -1, 2);
      expect(got.map((c) => c.entry.id)).toEqual(expected.map((e) => e.id));
      for (const [i, c] of got.entries()) expect(c.score).toBeCloseTo(expected[i]?.score as number, 4);
    }
  }
  expect(sparse.bytes()).toBeGreaterThan(0);
});

test('with a minimum score the sparse index skips long posting lists yet finds every match above it', () => {
  const d = 256;
  const sparse = new SparseIndex();
  const vectors = new Map<string, Float32Array>();
  // Every vector shares two very common features (0 and 1) and holds a few rare ones.
  for (let i = 0; i < 4000; i++) {
    const v = sparseVector(d, 6);
    v[0] = 0.5;
    v[1] = 0.4;
    let norm = 0;
    for (const x of v) norm += x * x;
    const unit = v.map((x) => x / Math.sqrt(norm));
    vectors.set(`e${i}`, unit);
    sparse.add({ id: `e${i}`, expiresAt: Number.MAX_SAFE_INTEGER, text: '', signals: sig }, unit);
  }
  for (let q = 0; q < 40; q++) {
    // Half the queries are near copies of a stored vector, half random.
    const base = q % 2 === 0 ? vectors.get(`e${q * 50}`) : undefined;
    const query = base ? base.map((x) => x + (rand() - 0.5) * 0.05) : sparseVector(d, 8);
    let norm = 0;
    for (const x of query) norm += x * x;
    const unit = query.map((x) => x / Math.sqrt(norm));
    const best = [...vectors.entries()]
      .map(([id, v]) => ({ id, score: dot(unit, v) }))
      .sort((a, b) => b.score - a.score)[0] as { id: string; score: number };
    const got = sparse.search(unit, 1, 0.65, 0);
    if (best.score >= 0.65) {
      expect(got[0]?.entry.id).toBe(best.id);
      expect(got[0]?.score).toBeCloseTo(best.score, 4);
    } else {
      // Below the minimum: the best scored entry is returned, its score a lower bound of the best.
      expect(got.length).toBeLessThanOrEqual(1);
      if (got[0]) expect(got[0].score).toBeLessThanOrEqual(best.score + 1e-6);
    }
  }
});
