// In-process vector indexes, one per partition. Two kinds, picked by measurement (bench/semantic.ts):
// - SparseIndex: an inverted index for hashed-feature vectors (the offline embedder: ~50-150 non-zero components
//   out of 8,192). A query touches only the posting lists of its own features, so it stays fast at 100,000 entries
//   and the scores are exact cosines.
// - FlatIndex: a contiguous Float32 scan for dense model embeddings (384-1,536 dimensions). Exact, simple, and fast
//   enough at the sizes one partition reaches in practice; see the figures in docs/semantic-cache.md.
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

function topK(out: Candidate[], k: number, candidate: Candidate): void {
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

function entryBytes(e: IndexedEntry): number {
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
    for (let s = 0; s < this.entries.length; s++) {
      const e = this.entries[s];
      if (!e) continue;
      remap[s] = entries.length;
      this.slotOf.set(e.id, entries.length);
      entries.push(e);
    }
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

  search(query: Float32Array, k: number, minScore: number, now: number): Candidate[] {
    const n = this.entries.length;
    if (this.scores.length < n) {
      const size = Math.max(n, this.scores.length * 2, 64);
      this.scores = new Float32Array(size);
      this.touched = new Int32Array(size);
      this.marks = new Uint32Array(size);
      this.generation = 0;
    }
    // A generation stamp per slot says "already touched by this query" (a running sum can pass through zero).
    this.generation = (this.generation + 1) >>> 0 || 1;
    const gen = this.generation;
    const marks = this.marks;
    const scores = this.scores;
    const touched = this.touched;
    let count = 0;
    for (let f = 0; f < query.length; f++) {
      const q = query[f] as number;
      if (q === 0) continue;
      const p = this.postings.get(f);
      if (!p) continue;
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
    const out: Candidate[] = [];
    let floor = minScore;
    for (let i = 0; i < count; i++) {
      const s = touched[i] as number;
      const score = scores[s] as number;
      // Most touched entries share a word or two with the query: skip them before any object is made.
      if (score < floor) continue;
      const entry = this.entries[s];
      if (!entry || (now > 0 && entry.expiresAt <= now)) continue;
      topK(out, k, { entry, score });
      if (out.length >= k) floor = Math.max(floor, (out[out.length - 1] as Candidate).score);
    }
    return out;
  }

  bytes(): number {
    return this.metaBytes + this.postingCount * 8 + this.postings.size * 64 + this.entries.length * 8;
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
