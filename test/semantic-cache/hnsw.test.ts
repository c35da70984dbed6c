// The HNSW index for dense vectors against an exact scan: recall on a seeded set, the exact tail (small partitions,
// vectors not linked yet), tombstones, the background rebuild, and the cache behaving the same on top of it.

import { NO_GUARDS } from '../../bench/semantic-eval';
import { createRedisKit, functionEmbedder, type LlmRequest } from '../../plugin/index';
import { HnswIndex } from '../../plugin/semantic-cache/hnsw';
import { signals } from '../../plugin/semantic-cache/text';
import { type Candidate, FlatIndex, type IndexedEntry } from '../../plugin/semantic-cache/vector-index';

const D = 48;
const sig = signals('x');
let seed = 11;
const rand = () => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 2 ** 32;
};
const gauss = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
function unit(v: Float32Array): Float32Array {
  let n = 0;
  for (const x of v) n += x * x;
  return v.map((x) => x / Math.sqrt(n));
}
const randomUnit = () => unit(Float32Array.from({ length: D }, gauss));
/** About cosine `c` from `u`. */
const near = (u: Float32Array, c: number) => {
  const s = Math.sqrt(1 / (c * c) - 1) / Math.sqrt(D);
  return unit(u.map((x) => x + s * gauss()));
};
const entry = (id: string, expiresAt = Number.MAX_SAFE_INTEGER): IndexedEntry => ({
  id,
  expiresAt,
  text: '',
  signals: sig,
});

/** Clustered vectors: 1 cluster per 20, each member at cosine 0.7 from its centre. */
function clustered(n: number): Float32Array[] {
  const centres = Array.from({ length: Math.ceil(n / 20) }, randomUnit);
  return Array.from({ length: n }, () => near(centres[Math.floor(rand() * centres.length)] as Float32Array, 0.7));
}

const ids = (cs: Candidate[]) => cs.map((c) => c.entry.id);

function fill(n: number, options: ConstructorParameters<typeof HnswIndex>[1] = {}) {
  const vectors = clustered(n);
  const hnsw = new HnswIndex(D, { minEntries: 0, ...options });
  const flat = new FlatIndex(D);
  vectors.forEach((v, i) => {
    hnsw.add(entry(`e${i}`), v);
    flat.add(entry(`e${i}`), v);
  });
  return { vectors, hnsw, flat };
}

/**
 * Over rewordings of stored vectors (cosine about 0.9) and new random vectors: the share of rewordings whose best
 * match is the exact scan's (with the exact score), and the share of all queries whose hit/miss decision at 0.8
 * equals the exact scan's (what the cache serves depends on that decision).
 */
function recall(hnsw: HnswIndex, flat: FlatIndex, vectors: Float32Array[], queries = 200): number {
  let same = 0;
  let decided = 0;
  for (let q = 0; q < queries; q++) {
    const reworded = q % 2 === 0;
    const query = reworded ? near(vectors[Math.floor(rand() * vectors.length)] as Float32Array, 0.9) : randomUnit();
    const want = flat.search(query, 1, -1, 0)[0];
    const got = hnsw.search(query, 1, -1, 0)[0];
    if ((want !== undefined && want.score >= 0.8) === (got !== undefined && got.score >= 0.8)) decided++;
    if (!reworded) continue;
    if (want?.entry.id === got?.entry.id) {
      same++;
      expect(got?.score).toBeCloseTo(want?.score as number, 5);
    }
  }
  expect(decided / queries).toBeGreaterThanOrEqual(0.99);
  return same / (queries / 2);
}

afterEach(() => {
  seed = 11;
});

test('a built graph finds the exact best match for nearly every query, with the exact score', () => {
  const { vectors, hnsw, flat } = fill(2000);
  hnsw.flush();
  expect(hnsw.linked).toBe(2000);
  expect(hnsw.pending).toBe(0);
  expect(recall(hnsw, flat, vectors)).toBeGreaterThanOrEqual(0.98);
  // A stored vector finds itself.
  for (let i = 0; i < 2000; i += 97)
    expect(ids(hnsw.search(vectors[i] as Float32Array, 1, 0.99, 0))).toEqual([`e${i}`]);
  hnsw.close();
});

test('below minEntries nothing is linked and results are the exact scan, k and minScore included', () => {
  const { vectors, hnsw, flat } = fill(500, { minEntries: 1000 });
  hnsw.flush();
  expect(hnsw.linked).toBe(0);
  expect(hnsw.pending).toBe(500);
  for (let q = 0; q < 50; q++) {
    const query = q % 2 ? randomUnit() : near(vectors[q * 7] as Float32Array, 0.8);
    for (const [k, min] of [
      [3, -1],
      [5, 0.6],
    ] as const) {
      const want = flat.search(query, k, min, 0);
      const got = hnsw.search(query, k, min, 0);
      expect(ids(got)).toEqual(ids(want));
    }
  }
});

test('vectors not linked yet are searched exactly, and the background links them without blocking', async () => {
  const { vectors, hnsw } = fill(1500, { sliceMs: 2 });
  // Nothing has run yet: every vector is in the exact tail and is found at once.
  expect(hnsw.pending).toBe(1500);
  expect(ids(hnsw.search(vectors[1234] as Float32Array, 1, 0.99, 0))).toEqual(['e1234']);
  let turns = 0;
  while (hnsw.pending > 0 && turns < 100_000) {
    await new Promise((resolve) => setImmediate(resolve));
    turns++;
  }
  expect(hnsw.pending).toBe(0);
  expect(hnsw.linked).toBe(1500);
  // Many event-loop turns: the work was sliced, not done in one go.
  expect(turns).toBeGreaterThan(5);
  // A vector added after the build is found before it is linked.
  const fresh = randomUnit();
  hnsw.add(entry('fresh'), fresh);
  expect(hnsw.pending).toBe(1);
  expect(ids(hnsw.search(fresh, 1, 0.99, 0))).toEqual(['fresh']);
  hnsw.close();
});

test('close() stops the background work; searches stay exact for what is not linked', async () => {
  const { vectors, hnsw } = fill(500);
  hnsw.close();
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
  expect(hnsw.pending).toBe(500);
  expect(ids(hnsw.search(vectors[7] as Float32Array, 1, 0.99, 0))).toEqual(['e7']);
});

test('removed and expired entries are never returned; tombstones keep the graph searchable', () => {
  const { vectors, hnsw, flat } = fill(2000);
  hnsw.flush();
  for (let i = 0; i < 2000; i += 6) {
    expect(hnsw.remove(`e${i}`)).toBe(true);
    flat.remove(`e${i}`);
  }
  expect(hnsw.remove('e0')).toBe(false);
  expect(hnsw.remove('nope')).toBe(false);
  expect(hnsw.size).toBe(1666);
  expect(hnsw.tombstones).toBe(334);
  // A removed vector's own query does not find it.
  for (let i = 0; i < 2000; i += 60) {
    expect(ids(hnsw.search(vectors[i] as Float32Array, 3, -1, 0))).not.toContain(`e${i}`);
  }
  expect(recall(hnsw, flat, vectors)).toBeGreaterThanOrEqual(0.97);
  // Expired (expiresAt <= now) entries are skipped but the search goes on past them.
  const expiring = new HnswIndex(D, { minEntries: 0 });
  expiring.add(entry('old', 1000), vectors[1] as Float32Array);
  expiring.add(entry('new'), near(vectors[1] as Float32Array, 0.95));
  for (let i = 2; i < 300; i++) expiring.add(entry(`x${i}`), vectors[i] as Float32Array);
  expiring.flush();
  expect(ids(expiring.search(vectors[1] as Float32Array, 1, -1, 2000))).toEqual(['new']);
  expect(ids(expiring.search(vectors[1] as Float32Array, 1, -1, 0))).toEqual(['old']);
});

test('replacing an id keeps one entry with the new vector', () => {
  const { vectors, hnsw } = fill(1000);
  hnsw.flush();
  const moved = randomUnit();
  hnsw.add(entry('e5'), moved);
  expect(hnsw.size).toBe(1000);
  expect(ids(hnsw.search(moved, 1, 0.99, 0))).toEqual(['e5']);
  expect(ids(hnsw.search(vectors[5] as Float32Array, 1, 0.99, 0))).toEqual([]);
});

test('past the tombstone ratio the graph is rebuilt in the background; writes during the rebuild are kept', () => {
  const { vectors, hnsw, flat } = fill(2000);
  hnsw.flush();
  const before = hnsw.bytes();
  for (let i = 0; i < 2000; i += 3) {
    hnsw.remove(`e${i}`);
    flat.remove(`e${i}`);
  }
  expect(hnsw.tombstones).toBe(667);
  // A few steps of work: the rebuild starts, and writes land while it runs.
  (hnsw as unknown as { work(ms: number): boolean }).work(0);
  const during = randomUnit();
  hnsw.add(entry('during'), during);
  flat.add(entry('during'), during);
  hnsw.remove('e1');
  flat.remove('e1');
  expect(ids(hnsw.search(during, 1, 0.99, 0))).toEqual(['during']);
  hnsw.flush();
  expect(hnsw.rebuilds).toBe(1);
  expect(hnsw.size).toBe(1333);
  expect(hnsw.linked).toBe(1334); // 'e1' was linked into the new graph before its removal: one tombstone
  expect(hnsw.tombstones).toBe(1);
  expect(hnsw.pending).toBe(0);
  expect(ids(hnsw.search(during, 1, 0.99, 0))).toEqual(['during']);
  expect(ids(hnsw.search(vectors[1] as Float32Array, 3, -1, 0))).not.toContain('e1');
  expect(recall(hnsw, flat, vectors)).toBeGreaterThanOrEqual(0.97);
  // Freed slots are reused: refilling to the old size does not grow the index.
  for (let i = 0; i < 666; i++) hnsw.add(entry(`r${i}`), randomUnit());
  hnsw.flush();
  expect(hnsw.bytes()).toBeLessThanOrEqual(before * 1.1);
});

test('a rebuild below minEntries drops the graph: back to an exact scan', () => {
  const { vectors, hnsw, flat } = fill(800, { minEntries: 600 });
  hnsw.flush();
  expect(hnsw.linked).toBe(800);
  for (let i = 0; i < 800; i += 2) {
    hnsw.remove(`e${i}`);
    flat.remove(`e${i}`);
  }
  hnsw.flush();
  expect(hnsw.linked).toBe(0);
  expect(hnsw.pending).toBe(400);
  const query = near(vectors[11] as Float32Array, 0.8);
  expect(ids(hnsw.search(query, 4, -1, 0))).toEqual(ids(flat.search(query, 4, -1, 0)));
});

describe('the cache on dense vectors', () => {
  // A deterministic dense "model": each topic word has a direction; a question is the sum of its words' directions
  // plus a little per-text noise, so rewordings of a question score high and other questions low.
  const words = new Map<string, Float32Array>();
  const direction = (w: string) => {
    let v = words.get(w);
    if (!v) {
      v = randomUnit();
      words.set(w, v);
    }
    return v;
  };
  const embedder = functionEmbedder(
    async (texts) =>
      texts.map((t) => {
        const v = new Float32Array(D);
        for (const w of t.toLowerCase().match(/[a-z0-9]+/g) ?? []) {
          const dir = direction(w);
          for (let i = 0; i < D; i++) v[i] = (v[i] as number) + (dir[i] as number);
        }
        return v;
      }),
    { name: 'test-dense', dimensions: D },
  );
  const req = (text: string): LlmRequest => ({ model: 'm', messages: [{ role: 'user', content: text }] });
  const topics = Array.from({ length: 400 }, (_, i) => `zq${i} wv${i % 37} kx${i % 11}`);

  test('hits, misses, scores and ids are the same with the HNSW index as with the exact flat scan', async () => {
    const kit = createRedisKit({ store: 'memory', logger: false, env: {} });
    // Guards off: this compares the vector search alone.
    const guards = NO_GUARDS;
    const options = { embedder, threshold: 0.8, guards, maxEntriesPerNamespace: 1000 };
    const hnsw = kit.semanticCache({ ...options, hnsw: { minEntries: 100 } });
    for (const t of topics) await hnsw.store(req(`explain ${t} please`), { answer: t });
    const flat = kit.semanticCache({ ...options, index: 'flat' });
    // Both load the partition from the store; the HNSW one links it in the background.
    await flat.lookup(req('warm up'));
    await hnsw.lookup(req('warm up'));
    // The graph is linked in the background: stats().indexPending says when it is done.
    const until = Date.now() + 20_000;
    while (hnsw.stats().indexPending > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    expect(hnsw.stats().indexPending).toBe(0);
    expect(flat.stats().indexPending).toBe(0);
    let hits = 0;
    for (let i = 0; i < topics.length; i += 4) {
      for (const text of [`explain ${topics[i]}`, `zz${i} yy${i} about ${topics[i]?.split(' ')[1]}`]) {
        const a = await flat.lookup(req(text));
        const b = await hnsw.lookup(req(text));
        expect({ status: b.status, id: b.id }).toEqual({ status: a.status, id: a.id });
        expect(b.score ?? 0).toBeCloseTo(a.score ?? 0, 5);
        if (a.status === 'hit') hits++;
      }
    }
    // Rewordings hit, the others miss: the comparison covered both outcomes.
    expect(hits).toBeGreaterThanOrEqual(90);
    expect(hits).toBeLessThan(200);
    expect(hnsw.stats().indexedEntries).toBe(400);
    await kit.close();
  });
});
