// The int8 scalar-quantised flat scan the dense-index benchmark measures against the HNSW graph (it lost: see
// docs/semantic-cache.md). Each vector is kept twice: as int8 codes with one scale per vector (a quarter of the
// bytes, scanned with integer multiply-adds) and as float32 for an exact re-rank of the best `rerank` codes.

import { type Candidate, type IndexedEntry, topK, type VectorIndex } from '../../plugin/semantic-cache/vector-index';

export class Int8FlatIndex implements VectorIndex {
  private codes: Int8Array;
  private floats: Float32Array;
  private scales: Float32Array;
  private entries: Array<IndexedEntry | undefined> = [];
  private readonly slotOf = new Map<string, number>();
  private readonly free: number[] = [];
  private live = 0;
  private readonly q = new Int8Array(0);

  constructor(
    readonly dimensions: number,
    private readonly rerank = 16,
  ) {
    this.codes = new Int8Array(dimensions * 64);
    this.floats = new Float32Array(dimensions * 64);
    this.scales = new Float32Array(64);
    this.q = new Int8Array(dimensions);
  }

  get size(): number {
    return this.live;
  }

  add(entry: IndexedEntry, vector: Float32Array): void {
    const d = this.dimensions;
    this.remove(entry.id);
    let slot = this.free.pop();
    if (slot === undefined) {
      slot = this.entries.length;
      this.entries.push(undefined);
      if (slot >= this.scales.length) {
        const codes = new Int8Array(this.codes.length * 2);
        codes.set(this.codes);
        this.codes = codes;
        const floats = new Float32Array(this.floats.length * 2);
        floats.set(this.floats);
        this.floats = floats;
        const scales = new Float32Array(this.scales.length * 2);
        scales.set(this.scales);
        this.scales = scales;
      }
    }
    this.scales[slot] = quantise(vector, this.codes, slot * d);
    this.floats.set(vector, slot * d);
    this.entries[slot] = entry;
    this.slotOf.set(entry.id, slot);
    this.live++;
  }

  remove(id: string): boolean {
    const slot = this.slotOf.get(id);
    if (slot === undefined) return false;
    this.entries[slot] = undefined;
    this.slotOf.delete(id);
    this.free.push(slot);
    this.live--;
    return true;
  }

  search(query: Float32Array, k: number, minScore: number, now: number): Candidate[] {
    const d = this.dimensions;
    const q = this.q;
    const qScale = quantise(query, q, 0);
    const codes = this.codes;
    const scales = this.scales;
    // The best `rerank` slots by approximate score, kept in a small sorted array.
    const r = Math.max(this.rerank, k);
    const best = new Float64Array(r).fill(Number.NEGATIVE_INFINITY);
    const slots = new Int32Array(r).fill(-1);
    for (let s = 0; s < this.entries.length; s++) {
      const entry = this.entries[s];
      if (!entry || (now > 0 && entry.expiresAt <= now)) continue;
      const base = s * d;
      let acc = 0;
      for (let i = 0; i < d; i++) acc = (acc + (q[i] as number) * (codes[base + i] as number)) | 0;
      const approx = acc * qScale * (scales[s] as number);
      if (approx <= (best[r - 1] as number)) continue;
      let i = r - 1;
      while (i > 0 && (best[i - 1] as number) < approx) {
        best[i] = best[i - 1] as number;
        slots[i] = slots[i - 1] as number;
        i--;
      }
      best[i] = approx;
      slots[i] = s;
    }
    const out: Candidate[] = [];
    const floats = this.floats;
    for (const s of slots) {
      if (s < 0) continue;
      let dot = 0;
      const base = s * d;
      for (let i = 0; i < d; i++) dot += (query[i] as number) * (floats[base + i] as number);
      if (dot >= minScore) topK(out, k, { entry: this.entries[s] as IndexedEntry, score: dot });
    }
    return out;
  }

  bytes(): number {
    return this.entries.length * (this.dimensions * 5 + 4 + 8);
  }
}

/** Writes int8 codes of `v` at `at` and returns the factor that turns a code back into a value. */
function quantise(v: Float32Array, out: Int8Array, at: number): number {
  let max = 0;
  for (let i = 0; i < v.length; i++) max = Math.max(max, Math.abs(v[i] as number));
  if (max === 0) return 0;
  const f = 127 / max;
  for (let i = 0; i < v.length; i++) out[at + i] = Math.round((v[i] as number) * f);
  return max / 127;
}
