// In-process vector indexes, one per partition. Two kinds, picked by measurement (npm run bench -- semantic):
// - SparseIndex: an inverted index for hashed-feature vectors (the offline embedder: ~50-150 non-zero components
//   out of 8,192). A query touches only the posting lists of its own features, so it stays fast at 100,000 entries
//   and the scores are exact cosines.
// - FlatIndex: a contiguous Float32 scan for dense model embeddings (384-1,536 dimensions). Exact and simple, but
//   linear: the default for dense vectors is the HNSW graph in hnsw.ts, which keeps this exact scan for small
//   partitions (index: 'flat' forces it everywhere); see the figures in docs/semantic-cache.md.
// Vectors are unit length (the cache normalises them), so a dot product is the cosine similarity.

import type { Signals } from './text.js';

export interface IndexedEntry {
  id: string;
  /** Epoch ms. */
  expiresAt: number;
  /** The cached request's query text (first 1,000 characters): the guards compare against it. */
  text: string;
  signals: Signals;
}

export interface Candidate {
  entry: IndexedEntry;
  score: number;
}

export interface VectorIndex {
  readonly size: number;
  /** Adds or replaces the entry with this id. */
  add(entry: IndexedEntry, vector: Float32Array): void;
  remove(id: string): boolean;
  /** Best `k` entries with a score of at least `minScore`, best first. Expired entries are skipped when `now` > 0. */
  search(query: Float32Array, k: number, minScore: number, now: number): Candidate[];
  /** Approximate bytes held (vectors, postings, metadata). */
  bytes(): number;
  /** Entries not linked into a graph yet (HNSW only; searched exactly meanwhile). */
  readonly pending?: number;
  /** Stops any background work (the HNSW index links vectors in the background). */
  close?(): void;
}

/** Unit-length copy of a vector (zero vectors stay zero). */
export function normalise(v: Float32Array): Float32Array {
  let norm = 0;
  for (let i = 0; i < v.length; i++) norm += (v[i] as number) * (v[i] as number);
  if (norm === 0 || Math.abs(norm - 1) < 1e-6) return v;
  const out = new Float32Array(v.length);
  const inv = 1 / Math.sqrt(norm);
  for (let i = 0; i < v.length; i++) out[i] = (v[i] as number) * inv;
  return out;
}

export function topK(out: Candidate[], k: number, candidate: Candidate): void {
  if (out.length < k) {
    out.push(candidate);
    out.sort((a, b) => b.score - a.score);
    return;
  }
  const last = out[out.length - 1] as Candidate;
  if (candidate.score <= last.score) return;
  out[out.length - 1] = candidate;
  out.sort((a, b) => b.score - a.score);
}

const ENTRY_OVERHEAD = 160;

export function entryBytes(e: IndexedEntry): number {
  return (
    ENTRY_OVERHEAD +
    e.id.length * 2 +
    e.text.length * 2 +
    (e.signals.content.length + e.signals.entities.length + e.signals.numbers.length + e.signals.polar.length) * 40
  );
}

/** Growable parallel arrays of (slot, weight) for one feature. */
interface Postings {
  slots: Int32Array;
  weights: Float32Array;
  length: number;
}

export class SparseIndex implements VectorIndex {
  private readonly postings = new Map<number, Postings>();
  private entries: Array<IndexedEntry | undefined> = [];
  /** Each slot's own features and weights (the forward index): exact scores without walking long posting lists. */
  private forward: Array<{ features: Int32Array; weights: Float32Array } | undefined> = [];
  private readonly slotOf = new Map<string, number>();
  private scores = new Float32Array(0);
  private touched = new Int32Array(0);
  private marks = new Uint32Array(0);
  private generation = 0;
  private dead = 0;
  private live = 0;
  private postingCount = 0;
  private metaBytes = 0;
  /** Features kept per vector (largest weights first). Bounds memory and query time for very long texts. */
  private readonly maxFeatures: number;

  constructor(options: { maxFeatures?: number } = {}) {
    this.maxFeatures = options.maxFeatures ?? 256;
  }

  get size(): number {
    return this.live;
  }

  add(entry: IndexedEntry, vector: Float32Array): void {
    this.remove(entry.id);
    const slot = this.entries.length;
    this.entries.push(entry);
    this.slotOf.set(entry.id, slot);
    this.live++;
    this.metaBytes += entryBytes(entry);
    let features: number[] = [];
    for (let i = 0; i < vector.length; i++) if (vector[i] !== 0) features.push(i);
    if (features.length > this.maxFeatures) {
      features.sort((a, b) => Math.abs(vector[b] as number) - Math.abs(vector[a] as number));
      features = features.slice(0, this.maxFeatures);
    }
    const own = { features: Int32Array.from(features), weights: new Float32Array(features.length) };
    for (let i = 0; i < features.length; i++) own.weights[i] = vector[features[i] as number] as number;
    this.forward.push(own);
    for (const f of features) {
      let p = this.postings.get(f);
      if (!p) {
        p = { slots: new Int32Array(4), weights: new Float32Array(4), length: 0 };
        this.postings.set(f, p);
      }
      if (p.length === p.slots.length) {
        const slots = new Int32Array(p.length * 2);
        slots.set(p.slots);
        const weights = new Float32Array(p.length * 2);
        weights.set(p.weights);
        p.slots = slots;
        p.weights = weights;
      }
      p.slots[p.length] = slot;
      p.weights[p.length] = vector[f] as number;
      p.length++;
      this.postingCount++;
    }
  }

  remove(id: string): boolean {
    const slot = this.slotOf.get(id);
    if (slot === undefined) return false;
    const entry = this.entries[slot];
    if (entry) this.metaBytes -= entryBytes(entry);
    this.entries[slot] = undefined;
    this.forward[slot] = undefined;
    this.slotOf.delete(id);
    this.live--;
    this.dead++;
    // Postings of removed slots are skipped at query time and dropped when they make up a third of the slots.
    if (this.dead > 1024 && this.dead * 3 > this.entries.length) this.compact();
    return true;
  }

  private compact(): void {
    const remap = new Int32Array(this.entries.length).fill(-1);
    const entries: IndexedEntry[] = [];
    const forward: typeof this.forward = [];
    for (let s = 0; s < this.entries.length; s++) {
      const e = this.entries[s];
      if (!e) continue;
      remap[s] = entries.length;
      this.slotOf.set(e.id, entries.length);
      entries.push(e);
      forward.push(this.forward[s]);
    }
    this.forward = forward;
    this.postingCount = 0;
    for (const [f, p] of this.postings) {
      let w = 0;
      for (let r = 0; r < p.length; r++) {
        const to = remap[p.slots[r] as number] as number;
        if (to < 0) continue;
        p.slots[w] = to;
        p.weights[w] = p.weights[r] as number;
        w++;
      }
      p.length = w;
      this.postingCount += w;
      if (w === 0) this.postings.delete(f);
    }
    this.entries = entries;
    this.dead = 0;
  }

  /**
   * Walks the query's posting lists from the shortest to the longest and stops before the long ones once the
   * query weight left in them could not lift an entry they alone hold to `minScore` (Cauchy-Schwarz: an entry
   * scores at most the norm of the query part it shares). Entries already found get their exact score from the
   * forward index. Common words ("deploy", "python") thus cost nothing unless a rare word or bigram matched too.
   * With `minScore` <= 0 every list is walked. When no entry reaches `minScore`, the best one scored is returned
   * (its score is then a lower bound of the best match: the cache reports it as the miss's score).
   */
  search(query: Float32Array, k: number, minScore: number, now: number): Candidate[] {
    const n = this.entries.length;
    if (this.scores.length < n) {
      const size = Math.max(n, this.scores.length * 2, 64);
      this.scores = new Float32Array(size);
      this.touched = new Int32Array(size);
      this.marks = new Uint32Array(size);
      this.generation = 0;
    }
    this.generation = (this.generation + 1) >>> 0 || 1;
    const gen = this.generation;
    const marks = this.marks;
    const scores = this.scores;
    const touched = this.touched;
    const lists: Array<{ q: number; p: Postings }> = [];
    for (let f = 0; f < query.length; f++) {
      const q = query[f] as number;
      if (q === 0) continue;
      const p = this.postings.get(f);
      if (p && p.length > 0) lists.push({ q, p });
    }
    lists.sort((a, b) => a.p.length - b.p.length);
    // rest[i]: norm of the query weight in lists i.. (the most an entry found only there can score).
    const rest = new Float64Array(lists.length + 1);
    for (let i = lists.length - 1; i >= 0; i--) {
      const q = (lists[i] as { q: number }).q;
      rest[i] = Math.sqrt((rest[i + 1] as number) ** 2 + q * q);
    }
    let count = 0;
    let walked = 0;
    for (; walked < lists.length; walked++) {
      if (minScore > 0 && (rest[walked] as number) < minScore) break;
      const { q, p } = lists[walked] as { q: number; p: Postings };
      const { slots, weights, length } = p;
      for (let r = 0; r < length; r++) {
        const s = slots[r] as number;
        if (marks[s] !== gen) {
          marks[s] = gen;
          scores[s] = 0;
          touched[count++] = s;
        }
        scores[s] = (scores[s] as number) + q * (weights[r] as number);
      }
    }
    const partial = walked < lists.length;
    const left = rest[walked] as number;
    const out: Candidate[] = [];
    let floor = minScore;
    let fallback: Candidate | undefined;
    for (let i = 0; i < count; i++) {
      const s = touched[i] as number;
      let score = scores[s] as number;
      if (partial) {
        // Cannot reach the floor even with every skipped list: keep it only as a possible fallback (its partial
        // score, a lower bound), without the exact score.
        if (score + left < floor) {
          if (out.length === 0 && (!fallback || score > fallback.score)) {
            const entry = this.entries[s];
            if (entry && !(now > 0 && entry.expiresAt <= now)) fallback = { entry, score };
          }
          continue;
        }
        score = this.exact(query, s);
      }
      const entry = this.entries[s];
      if (!entry || (now > 0 && entry.expiresAt <= now)) continue;
      if (score < floor) {
        if (!fallback || score > fallback.score) fallback = { entry, score };
        continue;
      }
      topK(out, k, { entry, score });
      if (out.length >= k) floor = Math.max(floor, (out[out.length - 1] as Candidate).score);
    }
    if (out.length === 0 && fallback) out.push(fallback);
    return out;
  }

  /** Exact cosine of the query with one slot's vector, from the forward index. */
  private exact(query: Float32Array, slot: number): number {
    const own = this.forward[slot];
    if (!own) return 0;
    let score = 0;
    for (let i = 0; i < own.features.length; i++) {
      score += (query[own.features[i] as number] as number) * (own.weights[i] as number);
    }
    return score;
  }

  bytes(): number {
    // Postings and the forward index each hold 8 bytes per feature; typed-array headers about 100 bytes per entry.
    return this.metaBytes + this.postingCount * 16 + this.postings.size * 64 + this.entries.length * 108;
  }
}

export class FlatIndex implements VectorIndex {
  private data: Float32Array;
  private entries: Array<IndexedEntry | undefined> = [];
  private readonly slotOf = new Map<string, number>();
  private readonly free: number[] = [];
  private live = 0;
  private metaBytes = 0;

  constructor(readonly dimensions: number) {
    this.data = new Float32Array(dimensions * 64);
  }

  get size(): number {
    return this.live;
  }

  add(entry: IndexedEntry, vector: Float32Array): void {
    if (vector.length !== this.dimensions) {
      throw new RangeError(`vector has ${vector.length} dimensions, the index ${this.dimensions}`);
    }
    this.remove(entry.id);
    let slot = this.free.pop();
    if (slot === undefined) {
      slot = this.entries.length;
      this.entries.push(undefined);
      if ((slot + 1) * this.dimensions > this.data.length) {
        const grown = new Float32Array(this.data.length * 2);
        grown.set(this.data);
        this.data = grown;
      }
    }
    this.data.set(vector, slot * this.dimensions);
    this.entries[slot] = entry;
    this.slotOf.set(entry.id, slot);
    this.live++;
    this.metaBytes += entryBytes(entry);
  }

  remove(id: string): boolean {
    const slot = this.slotOf.get(id);
    if (slot === undefined) return false;
    const entry = this.entries[slot];
    if (entry) this.metaBytes -= entryBytes(entry);
    this.entries[slot] = undefined;
    this.slotOf.delete(id);
    this.free.push(slot);
    this.live--;
    return true;
  }

  search(query: Float32Array, k: number, minScore: number, now: number): Candidate[] {
    const d = this.dimensions;
    const data = this.data;
    const out: Candidate[] = [];
    for (let s = 0; s < this.entries.length; s++) {
      const entry = this.entries[s];
      if (!entry) continue;
      let dot = 0;
      const base = s * d;
      for (let i = 0; i < d; i++) dot += (query[i] as number) * (data[base + i] as number);
      if (dot < minScore || (now > 0 && entry.expiresAt <= now)) continue;
      topK(out, k, { entry, score: dot });
    }
    return out;
  }

  bytes(): number {
    return this.metaBytes + this.entries.length * this.dimensions * 4 + this.entries.length * 8;
  }
}
