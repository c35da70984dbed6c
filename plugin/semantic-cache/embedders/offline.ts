// The default embedder: no model, no network. Hashed features (content-word stems, word bigrams, optionally
// character trigrams of each word) with a length-based, IDF-like weight, folded through the synonym table, into a sparse
// L2-normalised vector. It is a strong lexical baseline, not a language model: see docs/semantic-cache.md.

import { terms } from '../text.js';
import type { Embedder } from './types.js';

export interface OfflineEmbedderOptions {
  /** Size of the hashed feature space. @default 8192 */
  dimensions?: number;
  /** Weight of a content-word stem. @default 1 */
  wordWeight?: number;
  /** Weight of a bigram of consecutive stems. @default 0.4 */
  bigramWeight?: number;
  /**
   * Total weight of the character trigrams of one word (shared by its trigrams). Off by default: on the evaluation
   * sets they did not pay for the 4-5 times more features (slower search, more memory); turn on for typo-heavy text.
   * @default 0
   */
  charWeight?: number;
  /** Weight of a stop word. Zero keeps the very long posting lists of 'how', 'do', 'I' out of the index. @default 0 */
  stopWeight?: number;
}

/** FNV-1a, 32 bits. */
function hash(text: string, seed: number): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Rarer words are longer, on average: a corpus-free stand-in for inverse document frequency. */
function wordWeight(word: string): number {
  return Math.min(1.6, 0.5 + word.length * 0.12);
}

export class OfflineEmbedder implements Embedder {
  readonly name = 'offline-hash-v2';
  readonly dimensions: number;
  readonly sparse = true;
  private readonly w: Required<Omit<OfflineEmbedderOptions, 'dimensions'>>;

  constructor(options: OfflineEmbedderOptions = {}) {
    this.dimensions = options.dimensions ?? 8192;
    this.w = {
      wordWeight: options.wordWeight ?? 1,
      bigramWeight: options.bigramWeight ?? 0.4,
      charWeight: options.charWeight ?? 0,
      stopWeight: options.stopWeight ?? 0,
    };
  }

  async embed(texts: string[]): Promise<Float32Array[]> {
    return texts.map((t) => this.embedOne(t));
  }

  embedOne(text: string): Float32Array {
    const d = this.dimensions;
    const v = new Float32Array(d);
    for (const [i, x] of this.features(text)) v[i] = x;
    return v;
  }

  /**
   * The non-zero components of the text's L2-normalised vector, as index → value. The embedding is its dense form;
   * the wording guard compares two texts with these directly (a few dozen entries, no 8,192-float arrays).
   */
  features(text: string): Map<number, number> {
    const d = this.dimensions;
    const v = new Map<number, number>();
    const add = (feature: string, weight: number, seed: number): void => {
      const h = hash(feature, seed);
      // The sign bit keeps colliding features from always adding up (the hashing trick's unbiased form).
      const i = h % d;
      v.set(i, (v.get(i) ?? 0) + (h & 0x80000000 ? -weight : weight));
    };
    const ts = terms(text.length > 8000 ? text.slice(0, 8000) : text);
    let previous: string | undefined;
    for (const t of ts) {
      if (t.stop) {
        if (this.w.stopWeight > 0) add(t.stem, this.w.stopWeight, 1);
        continue;
      }
      const ww = wordWeight(t.stem);
      add(t.stem, this.w.wordWeight * ww, 1);
      if (previous !== undefined) add(`${previous} ${t.stem}`, this.w.bigramWeight * ww, 2);
      previous = t.stem;
      const padded = `<${t.raw}>`;
      if (padded.length > 4 && this.w.charWeight > 0) {
        const grams = padded.length - 2;
        const each = (this.w.charWeight * ww) / Math.sqrt(grams);
        for (let i = 0; i + 3 <= padded.length; i++) add(padded.slice(i, i + 3), each, 3);
      }
    }
    let norm = 0;
    for (const x of v.values()) norm += x * x;
    if (norm > 0) {
      const inv = 1 / Math.sqrt(norm);
      for (const [i, x] of v) v.set(i, x * inv);
    }
    return v;
  }
}
