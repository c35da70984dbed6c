// The vector arena under the HNSW index: the WebAssembly SIMD kernel must give the plain JavaScript dot product (to
// float32 precision) for every dimension count, keep its rows when it grows, and the index on top of it must return
// exact scores and the same best matches whichever kernel ran.

import { HnswIndex } from '../../plugin/semantic-cache/hnsw';
import { createVectorArena, dotRange } from '../../plugin/semantic-cache/vector-arena';
import { signals } from '../../plugin/semantic-cache/text';
import { FlatIndex, type IndexedEntry } from '../../plugin/semantic-cache/vector-index';

let seed = 7;
const rand = () => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 2 ** 32 - 0.5;
};
const vector = (d: number) => Float32Array.from({ length: d }, rand);
const entry = (id: string): IndexedEntry => ({
  id,
  expiresAt: Number.MAX_SAFE_INTEGER,
  text: '',
  signals: signals('x'),
});
const unit = (v: Float32Array) => {
  const n = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  return v.map((x) => x / n);
};

describe('vector arena', () => {
  it('runs the SIMD kernel on this Node (WebAssembly SIMD is part of Node 20)', () => {
    expect(createVectorArena(8, 4, true, 0).simd).toBe(true);
    expect(createVectorArena(8, 4, false, 0).simd).toBe(false);
    // Small arenas stay in JavaScript (SIMD_FROM slots).
    expect(createVectorArena(8, 4).simd).toBe(false);
    expect(createVectorArena(8, 1024).simd).toBe(true);
  });

  it.each([1, 3, 7, 8, 9, 13, 16, 100, 384, 1536])(
    'gives the float64 dot product within 1e-5 at %i dimensions',
    (d) => {
      const simd = createVectorArena(d, 4, true, 0);
      const js = createVectorArena(d, 4, false);
      expect(simd.simd).toBe(true);
      const rows = [vector(d), vector(d), vector(d), vector(d)];
      rows.forEach((r, i) => {
        simd.set(i, r);
        js.set(i, r);
      });
      const q = vector(d);
      simd.setQuery(q);
      js.setQuery(q);
      for (let i = 0; i < 4; i++) {
        const exact = dotRange(q, 0, rows[i] as Float32Array, 0, d);
        expect(js.dot(-1, i)).toBe(exact);
        expect(simd.exact(q, i)).toBe(exact);
        expect(Math.abs(simd.dot(-1, i) - exact)).toBeLessThan(1e-5 * Math.max(1, Math.abs(exact)) * Math.sqrt(d));
        expect(
          Math.abs(
            simd.dot(i, (i + 1) % 4) - dotRange(rows[i] as Float32Array, 0, rows[(i + 1) % 4] as Float32Array, 0, d),
          ),
        ).toBeLessThan(1e-4);
      }
    },
  );

  it('keeps every row when it grows, from JavaScript into WebAssembly and within it', () => {
    const d = 384;
    // JavaScript up to 64 slots, then WebAssembly, whose memory buffer is replaced at each growth after that.
    let arena = createVectorArena(d, 2, true, 64);
    expect(arena.simd).toBe(false);
    const rows = Array.from({ length: 300 }, () => vector(d));
    const q = vector(d);
    arena.setQuery(q);
    let capacity = 2;
    rows.forEach((r, i) => {
      if (i === capacity) {
        capacity *= 2;
        arena = arena.grow(capacity);
        // The query is set per search: an arena that moved into WebAssembly starts without it.
        arena.setQuery(q);
      }
      arena.set(i, r);
    });
    expect(arena.simd).toBe(true);
    expect(arena.rows.length).toBe(capacity * d);
    for (let i = 0; i < rows.length; i += 37) {
      expect(Array.from(arena.rows.subarray(i * d, (i + 1) * d))).toEqual(Array.from(rows[i] as Float32Array));
      expect(Math.abs(arena.dot(-1, i) - dotRange(q, 0, rows[i] as Float32Array, 0, d))).toBeLessThan(1e-4);
    }
  });
});

describe('HNSW on either kernel', () => {
  const d = 64;

  it('returns exact scores and the exact best match, with SIMD and without', () => {
    const vectors = Array.from({ length: 1500 }, () => unit(vector(d)));
    const simd = new HnswIndex(d, { minEntries: 0 });
    const plain = new HnswIndex(d, { minEntries: 0, simd: false });
    const flat = new FlatIndex(d);
    vectors.forEach((v, i) => {
      simd.add(entry(`e${i}`), v);
      plain.add(entry(`e${i}`), v);
      flat.add(entry(`e${i}`), v);
    });
    // Nothing is linked until the background work runs (or flush()): pending counts the exact tail.
    expect(simd.pending).toBe(1500);
    simd.flush();
    plain.flush();
    expect(simd.pending).toBe(0);
    let same = 0;
    for (let i = 0; i < 100; i++) {
      const q = unit((vectors[i * 13] as Float32Array).map((x) => x + rand() * 0.05));
      const truth = flat.search(q, 1, -1, 0)[0];
      for (const index of [simd, plain]) {
        const [best] = index.search(q, 1, -1, 0);
        expect(best).toBeDefined();
        // The score handed back is the float64 one, whichever kernel walked the graph.
        expect(best?.score).toBe(dotRange(q, 0, vectors[Number(best?.entry.id.slice(1))] as Float32Array, 0, d));
      }
      if (simd.search(q, 1, -1, 0)[0]?.entry.id === truth?.entry.id) same++;
    }
    expect(same).toBeGreaterThanOrEqual(98);
  });

  it('decides a hit against the bar on the exact score, not the kernel one', () => {
    // All in the exact tail (no graph), past SIMD_FROM slots so that the kernel scans it.
    const index = new HnswIndex(d, { minEntries: 100_000 });
    for (let i = 0; i < 1100; i++) index.add(entry(`other${i}`), unit(vector(d)));
    const v = unit(vector(d));
    index.add(entry('only'), v);
    const exact = dotRange(v, 0, v, 0, d);
    // A bar exactly at the stored vector's own score: the exact score passes it, whatever the float32 sum says.
    expect(index.search(v, 1, exact, 0).map((c) => c.entry.id)).toEqual(['only']);
    expect(index.search(v, 1, exact + 1e-12, 0)).toEqual([]);
  });
});

describe('efSearch', () => {
  it("'auto' (the default) widens the search as the index grows; a number fixes it", () => {
    const index = new HnswIndex(4, { minEntries: 1_000_000 });
    expect(index.efSearch).toBe('auto');
    expect(index.currentEfSearch).toBe(32);
    for (let i = 0; i <= 20_000; i++) index.add(entry(`e${i}`), unit(vector(4)));
    expect(index.currentEfSearch).toBe(64);
    index.efSearch = 40;
    expect(index.currentEfSearch).toBe(40);
    index.close();
  });

  it("is checked in the cache's options", async () => {
    const { createRedisKit } = await import('../../plugin/index');
    const kit = createRedisKit({ store: 'memory', logger: false, env: {} });
    expect(() => kit.semanticCache({ hnsw: { efSearch: 'wide' as never } })).toThrow(/efSearch/);
    expect(() => kit.semanticCache({ hnsw: { efSearch: 0 } })).toThrow(/efSearch/);
    expect(() => kit.semanticCache({ hnsw: { efSearch: 'auto' } })).not.toThrow();
    await kit.close();
  });
});

describe('background linking', () => {
  it('goes on in a process with nothing else to do (no I/O, one timer)', async () => {
    const d = 32;
    const index = new HnswIndex(d, { minEntries: 0 });
    for (let i = 0; i < 3000; i++) {
      index.add(entry(`e${i}`), unit(vector(d)));
    }
    expect(index.pending).toBeGreaterThan(2000);
    // One sleep and nothing else: a slice scheduled so that it waits for the loop's next wake-up would run once or
    // twice in it (an unref'd setImmediate did: about 20 links a second).
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(index.pending).toBe(0);
    expect(index.linked).toBe(3000);
    index.close();
  });
});
