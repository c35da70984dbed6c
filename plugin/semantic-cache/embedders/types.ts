// The one interface every embedder implements, so the cache does not care where vectors come from.

export interface Embedder {
  /** Name shown in stats and docs (and part of the partition: vectors of two embedders are never compared). */
  readonly name: string;
  /** Length of every vector this embedder returns. */
  readonly dimensions: number;
  /**
   * True when most components of a vector are zero (hashed features): the cache then keeps an inverted index,
   * whose cost grows with the non-zero components instead of the dimensions.
   */
  readonly sparse?: boolean;
  /** One vector per text, in order. `signal` aborts a call that took too long. */
  embed(texts: string[], options?: { signal?: AbortSignal }): Promise<Float32Array[]>;
}
