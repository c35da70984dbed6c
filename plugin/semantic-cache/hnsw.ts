// The index for dense vectors (model embeddings): an HNSW graph (Malkov & Yashunin) with an exact tail.
// Chosen by measurement against the exact flat scan and an int8 quantised flat scan (`npm run bench --
// semantic-dense`, figures in docs/semantic-cache.md): a flat scan of any kind is linear, so only a graph stays under
// a millisecond at 10,000 entries and a few at 100,000. Dot products run in a WebAssembly SIMD kernel where the
// runtime has one (vector-arena.ts); scores that decide a hit are taken again exactly.
//
// How it stays correct while a cache uses it:
// - Added vectors go to an exact "tail" first (scanned linearly by every search) and are linked into the graph in
//   the background, a few ms of work per event-loop turn (an unref'd 0 ms timer). A partition loaded from the
//   store is therefore searchable at once (exactly, at flat-scan speed) and gets faster as the graph fills in; a
//   store() never waits for graph work.
// - Below `minEntries` live vectors nothing is linked: the tail is the whole index, an exact flat scan.
// - A removal is a tombstone: the node still routes searches but is never returned. When tombstones make up
//   `rebuildRatio` of the graph, a fresh graph is built in the background from the live vectors while the old one
//   keeps serving; vectors added meanwhile are queued for the new graph and scanned exactly in the old one's tail.
//   Slots are reused only once no graph refers to them.
// Vectors are unit length (the cache normalises them), so a dot product is the cosine similarity.

// The timers module's own setTimeout: test runners' fake timers replace the global one.
import { setTimeout as laterSlice } from 'node:timers';
import { createVectorArena, type VectorArena } from './vector-arena.js';
import { type Candidate, entryBytes, type IndexedEntry, topK, type VectorIndex } from './vector-index.js';

export interface HnswOptions {
  /** Links per node on the upper layers (twice as many on the bottom layer). @default 16 */
  m?: number;
  /** Candidates examined when linking a node: higher builds a better graph, more slowly. @default 100 */
  efConstruction?: number;
  /**
   * Candidates examined per search: higher finds the true best match more often, more slowly. 'auto': 32 up to
   * 20,000 live entries, 64 up to 200,000, 128 beyond (a graph needs a wider search to keep its recall as it grows:
   * measured at 100,000 entries, 32 found the exact best match for 94 % of queries and 64 for 99.3 %).
   * @default 'auto'
   */
  efSearch?: number | 'auto';
  /** Live vectors below which nothing is linked and every search is an exact flat scan. @default 1000 */
  minEntries?: number;
  /** Share of tombstones in the graph that starts a background rebuild. @default 0.25 */
  rebuildRatio?: number;
  /** Milliseconds of graph work per event-loop turn in the background. @default 4 */
  sliceMs?: number;
  /** Seed of the level generator (builds are reproducible). @default 1 */
  seed?: number;
  /** Dot products in the WebAssembly SIMD kernel where the runtime has it (false: plain JavaScript). @default true */
  simd?: boolean;
}

/** The arena row that holds the query being searched. */
const QUERY = -1;
/** How far below the bar a kernel (float32) score may be and still be scored again exactly. */
const SLACK = 1e-4;

export const HNSW_DEFAULTS = {
  m: 16,
  efConstruction: 100,
  efSearch: 'auto' as number | 'auto',
  minEntries: 1000,
  rebuildRatio: 0.25,
  sliceMs: 4,
  seed: 1,
} as const;

/** A binary min-heap of (score, slot) on typed arrays; a max-heap is the same with negated scores. */
class Heap {
  scores = new Float64Array(64);
  ids = new Int32Array(64);
  size = 0;

  clear(): void {
    this.size = 0;
  }

  topScore(): number {
    return this.scores[0] as number;
  }

  topId(): number {
    return this.ids[0] as number;
  }

  push(score: number, id: number): void {
    if (this.size === this.scores.length) {
      const scores = new Float64Array(this.size * 2);
      scores.set(this.scores);
      const ids = new Int32Array(this.size * 2);
      ids.set(this.ids);
      this.scores = scores;
      this.ids = ids;
    }
    let i = this.size++;
    const s = this.scores;
    const d = this.ids;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((s[parent] as number) <= score) break;
      s[i] = s[parent] as number;
      d[i] = d[parent] as number;
      i = parent;
    }
    s[i] = score;
    d[i] = id;
  }

  /** Removes the top; read it with topScore()/topId() first. */
  pop(): void {
    const n = --this.size;
    if (n === 0) return;
    const s = this.scores;
    const d = this.ids;
    const score = s[n] as number;
    const id = d[n] as number;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && (s[child + 1] as number) < (s[child] as number)) child++;
      if ((s[child] as number) >= score) break;
      s[i] = s[child] as number;
      d[i] = d[child] as number;
      i = child;
    }
    s[i] = score;
    d[i] = id;
  }
}

/** One graph over the index's slots. Layer 0 holds up to 2M links per node, upper layers M. */
class Graph {
  level: Int8Array;
  links0: Int32Array;
  /** Similarity of each bottom-layer link to its node: pruning a full list then needs no dot products for it. */
  scores0: Float32Array;
  count0: Uint8Array;
  /** Upper layers of a node of level L >= 1: L blocks of (count, M links), and the links' similarities. */
  upper: Array<Int32Array | undefined> = [];
  upperScores: Array<Float32Array | undefined> = [];
  entry = -1;
  maxLevel = -1;
  linked = 0;
  /** Linked nodes whose entry was removed since (tombstones). */
  dead = 0;
  readonly m0: number;

  constructor(
    readonly m: number,
    capacity: number,
  ) {
    this.m0 = 2 * m;
    this.level = new Int8Array(capacity).fill(-1);
    this.links0 = new Int32Array(capacity * this.m0);
    this.scores0 = new Float32Array(capacity * this.m0);
    this.count0 = new Uint8Array(capacity);
  }

  grow(capacity: number): void {
    const level = new Int8Array(capacity).fill(-1);
    level.set(this.level);
    this.level = level;
    const links0 = new Int32Array(capacity * this.m0);
    links0.set(this.links0);
    this.links0 = links0;
    const scores0 = new Float32Array(capacity * this.m0);
    scores0.set(this.scores0);
    this.scores0 = scores0;
    const count0 = new Uint8Array(capacity);
    count0.set(this.count0);
    this.count0 = count0;
  }

  bytes(): number {
    let upper = 0;
    for (const u of this.upper) if (u) upper += u.length * 8 + 128;
    return this.level.length * (this.m0 * 8 + 2) + upper;
  }
}

export class HnswIndex implements VectorIndex {
  readonly m: number;
  readonly efConstruction: number;
  /** A number, or 'auto' (see HnswOptions.efSearch); `currentEfSearch` is the value in use. */
  efSearch: number | 'auto';
  readonly minEntries: number;
  readonly rebuildRatio: number;
  private readonly sliceMs: number;
  private readonly levelFactor: number;
  private seed: number;

  private capacity = 64;
  private arena: VectorArena;
  private entries: Array<IndexedEntry | undefined> = [];
  private readonly slotOf = new Map<string, number>();
  private readonly free: number[] = [];
  /** Slots handed out so far (the high-water mark). */
  private used = 0;
  private live = 0;
  private metaBytes = 0;
  /** Live slots not linked into the serving graph, scanned exactly by every search. */
  private tail: Int32Array;
  private tailLength = 0;
  private tailPos: Int32Array;
  private serving: Graph;
  private building: { graph: Graph; queue: number[]; next: number } | undefined;
  private marks: Uint32Array;
  private generation = 0;
  private readonly candidates = new Heap();
  private readonly results = new Heap();
  private scheduled = false;
  private closed = false;
  /** Completed rebuilds (for tests and stats). */
  rebuilds = 0;

  constructor(
    readonly dimensions: number,
    options: HnswOptions = {},
  ) {
    this.m = options.m ?? HNSW_DEFAULTS.m;
    this.efConstruction = options.efConstruction ?? HNSW_DEFAULTS.efConstruction;
    this.efSearch = options.efSearch ?? HNSW_DEFAULTS.efSearch;
    this.minEntries = options.minEntries ?? HNSW_DEFAULTS.minEntries;
    this.rebuildRatio = options.rebuildRatio ?? HNSW_DEFAULTS.rebuildRatio;
    this.sliceMs = options.sliceMs ?? HNSW_DEFAULTS.sliceMs;
    this.seed = (options.seed ?? HNSW_DEFAULTS.seed) >>> 0 || 1;
    if (this.m < 2 || this.m > 127) throw new RangeError('hnsw.m must be between 2 and 127');
    this.levelFactor = 1 / Math.log(this.m);
    this.arena = createVectorArena(dimensions, this.capacity, options.simd ?? true);
    this.tail = new Int32Array(this.capacity);
    this.tailPos = new Int32Array(this.capacity).fill(-1);
    this.marks = new Uint32Array(this.capacity);
    this.serving = new Graph(this.m, this.capacity);
  }

  get size(): number {
    return this.live;
  }

  /** The efSearch searches use now: the fixed one, or the automatic one for the current size. */
  get currentEfSearch(): number {
    if (this.efSearch !== 'auto') return this.efSearch;
    return this.live <= 20_000 ? 32 : this.live <= 200_000 ? 64 : 128;
  }

  /** Live vectors not yet linked into the serving graph (searched exactly). */
  get pending(): number {
    return this.tailLength;
  }

  /** Nodes of the serving graph, tombstones included. */
  get linked(): number {
    return this.serving.linked;
  }

  get tombstones(): number {
    return this.serving.dead;
  }

  add(entry: IndexedEntry, vector: Float32Array): void {
    const d = this.dimensions;
    if (vector.length !== d) throw new RangeError(`vector has ${vector.length} dimensions, the index ${d}`);
    this.remove(entry.id);
    let slot = this.free.pop();
    if (slot === undefined) {
      if (this.used === this.capacity) this.grow(this.capacity * 2);
      slot = this.used++;
    }
    this.arena.set(slot, vector);
    this.entries[slot] = entry;
    this.slotOf.set(entry.id, slot);
    this.live++;
    this.metaBytes += entryBytes(entry);
    this.tailPos[slot] = this.tailLength;
    this.tail[this.tailLength++] = slot;
    if (this.building) this.building.queue.push(slot);
    this.schedule();
  }

  remove(id: string): boolean {
    const slot = this.slotOf.get(id);
    if (slot === undefined) return false;
    const entry = this.entries[slot];
    if (entry) this.metaBytes -= entryBytes(entry);
    this.entries[slot] = undefined;
    this.slotOf.delete(id);
    this.live--;
    this.dropFromTail(slot);
    const inServing = (this.serving.level[slot] as number) >= 0;
    const inBuilding = this.building ? (this.building.graph.level[slot] as number) >= 0 : false;
    if (inServing) this.serving.dead++;
    if (inBuilding) (this.building as { graph: Graph }).graph.dead++;
    // No graph refers to it: the slot can take the next vector at once.
    if (!inServing && !inBuilding) this.free.push(slot);
    else this.schedule();
    return true;
  }

  search(query: Float32Array, k: number, minScore: number, now: number): Candidate[] {
    const d = this.dimensions;
    if (query.length !== d) throw new RangeError(`query has ${query.length} dimensions, the index ${d}`);
    const out: Candidate[] = [];
    const g = this.serving;
    const arena = this.arena;
    if (g.entry < 0 && this.tailLength === 0) return out;
    arena.setQuery(query);
    // The kernel's float32 sums steer; what is kept is scored again exactly (a candidate within SLACK of the bar
    // may still pass it), so a hit or a miss never depends on which kernel ran.
    const bar = arena.simd ? minScore - SLACK : minScore;
    if (g.entry >= 0) {
      const ep = this.descend(g, QUERY, 1);
      const results = this.searchLayer(g, QUERY, ep, Math.max(this.currentEfSearch, k), 0, true, now);
      while (results.size > 0) {
        const rough = results.topScore();
        const slot = results.topId();
        results.pop();
        if (rough < bar) continue;
        const score = arena.simd ? arena.exact(query, slot) : rough;
        if (score < minScore) continue;
        topK(out, k, { entry: this.entries[slot] as IndexedEntry, score });
      }
    }
    for (let t = 0; t < this.tailLength; t++) {
      const slot = this.tail[t] as number;
      const entry = this.entries[slot] as IndexedEntry;
      if (now > 0 && entry.expiresAt <= now) continue;
      const rough = arena.dot(QUERY, slot);
      if (rough < bar) continue;
      const score = arena.simd ? arena.exact(query, slot) : rough;
      if (score < minScore) continue;
      topK(out, k, { entry, score });
    }
    return out;
  }

  bytes(): number {
    return (
      this.metaBytes +
      this.arena.bytes() +
      this.capacity * 16 +
      this.serving.bytes() +
      (this.building ? this.building.graph.bytes() + this.building.queue.length * 8 : 0)
    );
  }

  /** Does all pending graph work now (linking, a due rebuild). For tests, benchmarks and warm starts. */
  flush(): void {
    while (this.work(Number.POSITIVE_INFINITY)) {
      // work() returns false once nothing is left.
    }
  }

  /** Stops background work; the index still answers searches (exactly, for whatever is not linked). */
  close(): void {
    this.closed = true;
  }

  // ---- background work ------------------------------------------------------------------------------------

  private needsWork(): boolean {
    if (this.building) return true;
    const g = this.serving;
    if (g.dead >= 64 && g.dead >= this.rebuildRatio * g.linked) return true;
    return this.tailLength > 0 && (g.linked > 0 || this.live >= this.minEntries);
  }

  private schedule(): void {
    if (this.scheduled || this.closed || !this.needsWork()) return;
    this.scheduled = true;
    // An unref'd timer, not an unref'd setImmediate: an unref'd immediate does not stop the event loop from
    // blocking in its poll phase, so in a quiet process the next slice waited for the next I/O or timer (measured:
    // a 20,000-entry graph linked about 20 entries a second in an otherwise idle process). A 0 ms timer wakes the
    // loop by itself, and unref'd it never keeps a process alive that has nothing else to do.
    laterSlice(() => {
      this.scheduled = false;
      if (this.closed) return;
      if (this.work(this.sliceMs)) this.schedule();
    }, 0).unref();
  }

  /** Links, rebuilds or swaps for up to `budgetMs`. True when work is left. */
  private work(budgetMs: number): boolean {
    const deadline = performance.now() + budgetMs;
    let steps = 0;
    while (this.needsWork()) {
      // Checking the clock every few steps: one link costs 0.1-1 ms.
      if ((++steps & 7) === 0 && performance.now() >= deadline) return true;
      const b = this.building;
      if (b) {
        if (b.next < b.queue.length) {
          const slot = b.queue[b.next++] as number;
          if (this.entries[slot] && (b.graph.level[slot] as number) < 0) this.link(b.graph, slot);
          continue;
        }
        this.swap(b.graph);
        continue;
      }
      const g = this.serving;
      if (g.dead >= 64 && g.dead >= this.rebuildRatio * g.linked) {
        this.startRebuild();
        continue;
      }
      const slot = this.tail[this.tailLength - 1] as number;
      this.dropFromTail(slot);
      this.link(g, slot);
    }
    return false;
  }

  private startRebuild(): void {
    if (this.live < this.minEntries) {
      // Too small for a graph: every live vector goes back to the exact tail.
      this.swap(new Graph(this.m, this.capacity));
      return;
    }
    const queue: number[] = [];
    for (let slot = 0; slot < this.used; slot++) if (this.entries[slot]) queue.push(slot);
    this.building = { graph: new Graph(this.m, this.capacity), queue, next: 0 };
  }

  /** The new graph serves; slots that no graph refers to any more are freed, live unlinked ones go to the tail. */
  private swap(graph: Graph): void {
    this.serving = graph;
    this.building = undefined;
    this.rebuilds++;
    this.free.length = 0;
    this.tailLength = 0;
    this.tailPos.fill(-1);
    for (let slot = this.used - 1; slot >= 0; slot--) {
      if ((graph.level[slot] as number) >= 0) continue;
      if (this.entries[slot]) {
        this.tailPos[slot] = this.tailLength;
        this.tail[this.tailLength++] = slot;
      } else this.free.push(slot);
    }
  }

  private dropFromTail(slot: number): void {
    const pos = this.tailPos[slot] as number;
    if (pos < 0) return;
    const last = this.tail[--this.tailLength] as number;
    this.tail[pos] = last;
    this.tailPos[last] = pos;
    this.tailPos[slot] = -1;
  }

  private grow(capacity: number): void {
    this.arena = this.arena.grow(capacity);
    const tail = new Int32Array(capacity);
    tail.set(this.tail);
    this.tail = tail;
    const tailPos = new Int32Array(capacity).fill(-1);
    tailPos.set(this.tailPos);
    this.tailPos = tailPos;
    this.marks = new Uint32Array(capacity);
    this.generation = 0;
    this.serving.grow(capacity);
    this.building?.graph.grow(capacity);
    this.capacity = capacity;
  }

  // ---- the graph --------------------------------------------------------------------------------------------

  private randomLevel(): number {
    this.seed = (Math.imul(this.seed, 1664525) + 1013904223) >>> 0;
    const u = (this.seed + 1) / 2 ** 32;
    return Math.min(16, Math.floor(-Math.log(u) * this.levelFactor));
  }

  private linksOf(g: Graph, slot: number, layer: number): { array: Int32Array; offset: number; count: number } {
    if (layer === 0) return { array: g.links0, offset: slot * g.m0, count: g.count0[slot] as number };
    const u = g.upper[slot] as Int32Array;
    const base = (layer - 1) * (g.m + 1);
    return { array: u, offset: base + 1, count: u[base] as number };
  }

  private setLinks(g: Graph, slot: number, layer: number, ids: number[], scores: number[]): void {
    if (layer === 0) {
      g.links0.set(ids, slot * g.m0);
      g.scores0.set(scores, slot * g.m0);
      g.count0[slot] = ids.length;
      return;
    }
    const u = g.upper[slot] as Int32Array;
    const base = (layer - 1) * (g.m + 1);
    u[base] = ids.length;
    u.set(ids, base + 1);
    (g.upperScores[slot] as Float32Array).set(scores, base + 1);
  }

  /** The similarity array that goes with linksOf()'s array (same offsets). */
  private scoresOf(g: Graph, slot: number, layer: number): Float32Array {
    return layer === 0 ? g.scores0 : (g.upperScores[slot] as Float32Array);
  }

  /** Greedy walk from the entry point down to layer `to` (exclusive of the layers below it). */
  private descend(g: Graph, q: number, to: number): number {
    const arena = this.arena;
    let ep = g.entry;
    let best = arena.dot(q, ep);
    for (let layer = g.maxLevel; layer >= to; layer--) {
      let changed = true;
      while (changed) {
        changed = false;
        const { array, offset, count } = this.linksOf(g, ep, layer);
        for (let i = 0; i < count; i++) {
          const n = array[offset + i] as number;
          const s = arena.dot(q, n);
          if (s > best) {
            best = s;
            ep = n;
            changed = true;
          }
        }
      }
    }
    return ep;
  }

  /**
   * Best-first search of one layer from `ep`, keeping the `ef` best. With `live`, removed and expired entries are
   * walked through but never kept. Returns the results heap (worst on top); it is reused by the next call.
   */
  private searchLayer(g: Graph, q: number, ep: number, ef: number, layer: number, live: boolean, now: number): Heap {
    const arena = this.arena;
    const entries = this.entries;
    const marks = this.marks;
    this.generation = (this.generation + 1) >>> 0 || 1;
    const gen = this.generation;
    const candidates = this.candidates;
    const results = this.results;
    candidates.clear();
    results.clear();
    const keep = (slot: number): boolean => {
      if (!live) return true;
      const e = entries[slot];
      return e !== undefined && !(now > 0 && e.expiresAt <= now);
    };
    marks[ep] = gen;
    const s0 = arena.dot(q, ep);
    candidates.push(-s0, ep);
    if (keep(ep)) results.push(s0, ep);
    while (candidates.size > 0) {
      const score = -candidates.topScore();
      const c = candidates.topId();
      if (results.size >= ef && score < results.topScore()) break;
      candidates.pop();
      const { array, offset, count } = this.linksOf(g, c, layer);
      for (let i = 0; i < count; i++) {
        const n = array[offset + i] as number;
        if (marks[n] === gen) continue;
        marks[n] = gen;
        const s = arena.dot(q, n);
        if (results.size < ef || s > results.topScore()) {
          candidates.push(-s, n);
          if (keep(n)) {
            results.push(s, n);
            if (results.size > ef) results.pop();
          }
        }
      }
    }
    return results;
  }

  /**
   * The neighbour heuristic of the HNSW paper: a candidate (best first) is kept only if it is closer to the base
   * than to every neighbour kept so far, so links spread in all directions instead of crowding one cluster.
   */
  private select(ids: number[], scores: number[], max: number): { ids: number[]; scores: number[] } {
    const arena = this.arena;
    const out: number[] = [];
    const outScores: number[] = [];
    for (let i = 0; i < ids.length && out.length < max; i++) {
      const c = ids[i] as number;
      const sc = scores[i] as number;
      let good = true;
      for (const r of out) {
        if (arena.dot(c, r) > sc) {
          good = false;
          break;
        }
      }
      if (good) {
        out.push(c);
        outScores.push(sc);
      }
    }
    return { ids: out, scores: outScores };
  }

  private link(g: Graph, slot: number): void {
    const level = this.randomLevel();
    g.level[slot] = level;
    g.count0[slot] = 0;
    g.upper[slot] = level > 0 ? new Int32Array(level * (g.m + 1)) : undefined;
    g.upperScores[slot] = level > 0 ? new Float32Array(level * (g.m + 1)) : undefined;
    g.linked++;
    if (g.entry < 0) {
      g.entry = slot;
      g.maxLevel = level;
      return;
    }
    let ep = level < g.maxLevel ? this.descend(g, slot, level + 1) : g.entry;
    for (let layer = Math.min(level, g.maxLevel); layer >= 0; layer--) {
      const results = this.searchLayer(g, slot, ep, this.efConstruction, layer, false, 0);
      const ids: number[] = new Array(results.size);
      const scores: number[] = new Array(results.size);
      for (let i = results.size - 1; i >= 0; i--) {
        scores[i] = results.topScore();
        ids[i] = results.topId();
        results.pop();
      }
      const chosen = this.select(ids, scores, g.m);
      this.setLinks(g, slot, layer, chosen.ids, chosen.scores);
      for (let i = 0; i < chosen.ids.length; i++) {
        this.connect(g, chosen.ids[i] as number, slot, chosen.scores[i] as number, layer);
      }
      ep = ids[0] ?? ep;
    }
    if (level > g.maxLevel) {
      g.entry = slot;
      g.maxLevel = level;
    }
  }

  /** Adds a back link from `n` to `slot` (at similarity `score`); a full list is pruned with the same heuristic. */
  private connect(g: Graph, n: number, slot: number, score: number, layer: number): void {
    const max = layer === 0 ? g.m0 : g.m;
    const { array, offset, count } = this.linksOf(g, n, layer);
    const scores = this.scoresOf(g, n, layer);
    if (count < max) {
      array[offset + count] = slot;
      scores[offset + count] = score;
      if (layer === 0) g.count0[n] = count + 1;
      else array[offset - 1] = count + 1;
      return;
    }
    const pairs: Array<{ id: number; score: number }> = [{ id: slot, score }];
    for (let i = 0; i < count; i++)
      pairs.push({ id: array[offset + i] as number, score: scores[offset + i] as number });
    pairs.sort((a, b) => b.score - a.score);
    const chosen = this.select(
      pairs.map((p) => p.id),
      pairs.map((p) => p.score),
      max,
    );
    this.setLinks(g, n, layer, chosen.ids, chosen.scores);
  }
}
