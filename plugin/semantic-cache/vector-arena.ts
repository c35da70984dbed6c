// Where the HNSW index keeps its vectors, and how it takes their dot products. Row -1 is a scratch row for the query
// being searched; rows 0..capacity-1 are the index's slots. Two kinds:
// - WebAssembly: the rows live in a WebAssembly.Memory and a 242-byte SIMD kernel (wasm/dot.wat) multiplies eight
//   floats per step. On this project's 2-core machine that is about 8 times a plain JavaScript loop (384
//   dimensions: 0.24 µs against 2.1 µs per product), which is what an HNSW search and build spend their time on.
// - JavaScript: a Float32Array and an unrolled loop summing in float64. Used for small indexes (below 1,024 slots:
//   a cache may hold up to a thousand partition indexes, most of them small, and each WebAssembly memory costs the
//   process a large reservation of address space), where WebAssembly SIMD is missing, when the rows outgrow a
//   32-bit memory (4 GiB), or when asked for (`simd: false`). A JavaScript arena that grows past 1,024 slots moves
//   its rows into a WebAssembly one.
// The kernel sums in float32 (relative error around 1e-6 over a few hundred dimensions), so scores that decide
// anything (a hit against a threshold, the ranking of the final candidates) are taken again with exact(), the
// float64 sum, and the kernel only steers the graph walk.

import { dotWasm } from './wasm.generated.js';

// The few WebAssembly JavaScript API members used here (the project's TypeScript libraries do not declare them).
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
type WasmModule = object;
declare const WebAssembly: {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { readonly exports: Record<string, unknown> };
  Memory: new (descriptor: { initial: number }) => WasmMemory;
};

export interface VectorArena {
  readonly dimensions: number;
  /** Whether dot() runs in the WebAssembly SIMD kernel. */
  readonly simd: boolean;
  /** The slots' floats (slot s at s * dimensions). A new view after grow(): do not keep it across one. */
  readonly rows: Float32Array;
  /** Stores a vector in a slot. */
  set(slot: number, vector: Float32Array): void;
  /** Copies the query into the scratch row (-1). */
  setQuery(query: Float32Array): void;
  /** Dot product of two rows (-1: the query), float32 sums in the kernel: for steering, not for deciding. */
  dot(a: number, b: number): number;
  /** Dot product of `query` and a slot, summed in float64. */
  exact(query: Float32Array, slot: number): number;
  /** Room for `capacity` slots, contents kept. May return another arena (a JavaScript one past the 4 GiB limit). */
  grow(capacity: number): VectorArena;
  /** Bytes held. */
  bytes(): number;
}

/** Dot product of a[ai..ai+d) and b[bi..bi+d), four accumulators (about twice a naive loop in V8), float64 sums. */
export function dotRange(a: Float32Array, ai: number, b: Float32Array, bi: number, d: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  for (; i + 3 < d; i += 4) {
    s0 += (a[ai + i] as number) * (b[bi + i] as number);
    s1 += (a[ai + i + 1] as number) * (b[bi + i + 1] as number);
    s2 += (a[ai + i + 2] as number) * (b[bi + i + 2] as number);
    s3 += (a[ai + i + 3] as number) * (b[bi + i + 3] as number);
  }
  for (; i < d; i++) s0 += (a[ai + i] as number) * (b[bi + i] as number);
  return s0 + s1 + s2 + s3;
}

class JsArena implements VectorArena {
  readonly simd = false;
  /** Row -1 at 0, slot s at (s + 1) * d. */
  private data: Float32Array;
  rows: Float32Array;

  constructor(
    readonly dimensions: number,
    private capacity: number,
    from?: Float32Array,
    /** The capacity from which grow() moves to WebAssembly (Infinity: never). */
    private readonly simdFrom = Number.POSITIVE_INFINITY,
  ) {
    this.data = new Float32Array((capacity + 1) * dimensions);
    if (from) this.data.set(from.subarray(0, Math.min(from.length, capacity * dimensions)), dimensions);
    this.rows = this.data.subarray(dimensions);
  }

  set(slot: number, vector: Float32Array): void {
    this.rows.set(vector, slot * this.dimensions);
  }

  setQuery(query: Float32Array): void {
    this.data.set(query, 0);
  }

  dot(a: number, b: number): number {
    const d = this.dimensions;
    return dotRange(this.data, (a + 1) * d, this.data, (b + 1) * d, d);
  }

  exact(query: Float32Array, slot: number): number {
    return dotRange(query, 0, this.rows, slot * this.dimensions, this.dimensions);
  }

  grow(capacity: number): VectorArena {
    if (capacity <= this.capacity) return this;
    if (capacity >= this.simdFrom) {
      const wasm = WasmArena.create(this.dimensions, capacity);
      if (wasm) {
        wasm.rows.set(this.rows);
        return wasm;
      }
    }
    return new JsArena(this.dimensions, capacity, this.rows, this.simdFrom);
  }

  bytes(): number {
    return this.data.byteLength;
  }
}

const PAGE = 65_536;
const MAX_PAGES = 65_536;
let compiled: WasmModule | null | undefined;

/** The kernel, compiled once per process; null where WebAssembly or its SIMD is not available. */
function kernel(): WasmModule | null {
  if (compiled !== undefined) return compiled;
  try {
    const bytes = Uint8Array.from(atob(dotWasm), (c) => c.charCodeAt(0));
    compiled = typeof WebAssembly === 'object' && WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  } catch {
    compiled = null;
  }
  return compiled;
}

class WasmArena implements VectorArena {
  readonly simd = true;
  rows: Float32Array;
  private scratch: Float32Array;
  private readonly stride: number;
  private readonly fn: (a: number, b: number, n: number) => number;

  constructor(
    readonly dimensions: number,
    private capacity: number,
    private readonly memory: WasmMemory,
    module: WasmModule,
  ) {
    this.stride = dimensions * 4;
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    this.fn = instance.exports.dot as (a: number, b: number, n: number) => number;
    this.scratch = new Float32Array(memory.buffer, 0, dimensions);
    this.rows = new Float32Array(memory.buffer, this.stride, capacity * dimensions);
  }

  static create(dimensions: number, capacity: number): WasmArena | undefined {
    const module = kernel();
    const pages = WasmArena.pages(dimensions, capacity);
    if (!module || pages > MAX_PAGES) return undefined;
    try {
      return new WasmArena(dimensions, capacity, new WebAssembly.Memory({ initial: pages }), module);
    } catch {
      return undefined;
    }
  }

  private static pages(dimensions: number, capacity: number): number {
    return Math.ceil(((capacity + 1) * dimensions * 4) / PAGE);
  }

  set(slot: number, vector: Float32Array): void {
    this.rows.set(vector, slot * this.dimensions);
  }

  setQuery(query: Float32Array): void {
    this.scratch.set(query);
  }

  dot(a: number, b: number): number {
    return this.fn((a + 1) * this.stride, (b + 1) * this.stride, this.dimensions);
  }

  exact(query: Float32Array, slot: number): number {
    return dotRange(query, 0, this.rows, slot * this.dimensions, this.dimensions);
  }

  grow(capacity: number): VectorArena {
    if (capacity <= this.capacity) return this;
    const pages = WasmArena.pages(this.dimensions, capacity);
    const have = this.memory.buffer.byteLength / PAGE;
    try {
      if (pages > MAX_PAGES) throw new RangeError('past 4 GiB');
      if (pages > have) this.memory.grow(pages - have);
    } catch {
      // Past what a 32-bit memory holds (or refused by the engine): go on in JavaScript, contents copied.
      return new JsArena(this.dimensions, capacity, this.rows);
    }
    this.capacity = capacity;
    // Growing replaces the memory's buffer: the views are made again over the new one (contents stay in place).
    this.scratch = new Float32Array(this.memory.buffer, 0, this.dimensions);
    this.rows = new Float32Array(this.memory.buffer, this.stride, capacity * this.dimensions);
    return this;
  }

  bytes(): number {
    return this.memory.buffer.byteLength;
  }
}

/** Slots from which an arena runs in WebAssembly (below, the JavaScript loop: see the top of this file). */
export const SIMD_FROM = 1024;

/**
 * An arena for `capacity` vectors of `dimensions` floats: WebAssembly SIMD once it holds `simdFrom` slots, when
 * available and wanted; JavaScript before that and otherwise.
 */
export function createVectorArena(
  dimensions: number,
  capacity: number,
  simd = true,
  simdFrom = SIMD_FROM,
): VectorArena {
  if (!simd) return new JsArena(dimensions, capacity);
  if (capacity >= simdFrom) {
    const wasm = WasmArena.create(dimensions, capacity);
    if (wasm) return wasm;
  }
  return new JsArena(dimensions, capacity, undefined, simdFrom);
}
