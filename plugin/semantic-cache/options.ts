// Options of the semantic cache, their defaults, and the parser that turns them into a complete config once.

import { type Duration, parseDuration } from '../core/duration.js';
import { ConfigError } from '../core/errors.js';
import { assertKnownKeys, assertPlainObject, positiveInt } from '../core/options.js';
import { OfflineEmbedder } from './embedders/offline.js';
import type { Embedder } from './embedders/types.js';
import type { GuardConfig } from './guards.js';
import type { LlmRequest } from './request.js';

export interface SemanticCacheOptions {
  /**
   * Cosine similarity a cached question must reach to be served (higher = stricter, 1 = identical wording only).
   * The default was tuned for the offline embedder (with the wording guard, which asks more of short questions) on
   * the GPTCache 999-pair set and half of the QQP set; a real embedding model needs its own value (see
   * docs/semantic-cache.md).
   * @default 0.65
   */
  threshold?: number;
  /** Where vectors come from: the built-in offline embedder, an HttpEmbedder, or functionEmbedder(fn). @default new OfflineEmbedder() */
  embedder?: Embedder;
  /** Longest an embedding call may take; past it the lookup is a miss (never a stalled request). @default '500 ms' */
  embedTimeout?: Duration;
  /** Embeddings of recently seen texts kept in process (repeated questions are not embedded twice). @default 5000 */
  embeddingCacheSize?: number;
  /** How long an entry lives. Absolute by default: hits do not extend it. @default '1 d' */
  ttl?: Duration;
  /** Extend an entry's life by `ttl` on every hit (sliding expiry) instead of keeping it absolute. @default false */
  slidingTtl?: boolean;
  /** Most entries per namespace; past it the entries closest to expiry are evicted. @default 10000 */
  maxEntriesPerNamespace?: number;
  /** Requests with a temperature above this are not cached (they ask for variety). @default 1 */
  maxTemperature?: number;
  /** Cache requests that declare tools (their answers are usually tool calls that depend on live state). @default false */
  cacheTools?: boolean;
  /** Serve streaming requests from the cache (the Express helper replays the answer as one SSE chunk). @default false */
  streamReplay?: boolean;
  /**
   * Your own bypass rule, run before anything else: return a reason string to skip the cache (e.g. personal data).
   * @example { bypass: (req) => (/\b\d{3}-\d{2}-\d{4}\b/.test(JSON.stringify(req.messages)) ? 'pii' : undefined) }
   */
  bypass?: (request: LlmRequest) => string | false | null | undefined;
  /** False-hit guards run after the vector match; each can be turned off. */
  guards?: {
    /** Reject when one side is negated or uses the opposite word ("enable" / "disable"). @default true */
    negation?: boolean;
    /** Reject when numbers, dates or units differ. @default true */
    numbers?: boolean;
    /** Reject when each side names something the other does not. @default true */
    entities?: boolean;
    /** Reject when one side asks why/when/where/who and the other does not. @default true */
    intent?: boolean;
    /** Reject when a short question is the other plus extra content words (a narrower question). @default true */
    refinement?: boolean;
    /** Reject when the two are one sentence with a single short span swapped ("tiger and a hippo" / "tiger and a lion"). @default true */
    substitution?: boolean;
    /**
     * Short questions must match in wording, function words included: near-identical at 4 content words or fewer,
     * relaxing to no requirement at 10. It makes up for the offline embedder ignoring 'how', 'most', 'our'; a real
     * embedding model sees those words, so it is off for other embedders by default.
     * @default true with the offline embedder, false with any other
     */
    wording?: boolean;
    /** Least share of content words in common (0 = off). @default 0.3 */
    minOverlap?: number;
  };
  /** How many of the best matches the guards may examine; 1 means a rejected best match is a miss. @default 1 */
  candidates?: number;
  /** Namespace of requests that name none. @default 'default' */
  defaultNamespace?: string;
  /** Questions longer than this (characters) are not cached (bypass 'too-large'). @default 8000 */
  maxQueryChars?: number;
  /** Requests with more text than this are rejected (413): bounds the work on any input. @default 1000000 */
  maxRequestChars?: number;
  /** Most messages in one request (more: 413). @default 1000 */
  maxMessages?: number;
  /** How often followers poll the change log (Upstash, and as a safety net behind pub/sub). @default '250 ms' on Upstash, '5 s' elsewhere */
  syncInterval?: Duration;
  /** Most partitions whose index one instance keeps in memory; the least recently used are dropped and reloaded on use. @default 1000 */
  maxIndexedPartitions?: number;
  /**
   * Index kind: 'sparse' (inverted index, for hashed-feature vectors), 'hnsw' (an HNSW graph for dense model
   * vectors, with an exact flat scan below `hnsw.minEntries`), 'flat' (always the exact flat scan), or 'auto':
   * 'sparse' for a sparse embedder (the offline one), 'hnsw' for any other.
   * @default 'auto'
   */
  index?: 'auto' | 'sparse' | 'flat' | 'hnsw';
  /** Knobs of the HNSW index for dense vectors (docs/semantic-cache.md has the measurements behind the defaults). */
  hnsw?: {
    /** Links per node (twice as many on the bottom layer). More: better recall, more memory, slower inserts. @default 16 */
    m?: number;
    /** Candidates examined when a vector is linked in. More: a better graph, slower inserts. @default 100 */
    efConstruction?: number;
    /**
     * Candidates examined per lookup. More: the true best match found more often, slower lookups. 'auto' widens the
     * search as a partition grows: 32 up to 20,000 entries, 64 up to 200,000, 128 beyond. @default 'auto'
     */
    efSearch?: number | 'auto';
    /** Partitions with fewer live entries are searched by an exact flat scan and build no graph. @default 1000 */
    minEntries?: number;
    /**
     * Dot products in a WebAssembly SIMD kernel (about 8 times plain JavaScript here); false, or a runtime without
     * WebAssembly SIMD, uses plain JavaScript. Scores that decide a hit are exact either way. @default true
     */
    simd?: boolean;
  };
}

export interface SemanticCacheConfig {
  threshold: number;
  embedder: Embedder;
  embedTimeoutMs: number;
  embeddingCacheSize: number;
  ttlMs: number;
  slidingTtl: boolean;
  maxEntries: number;
  maxTemperature: number;
  cacheTools: boolean;
  streamReplay: boolean;
  bypass: SemanticCacheOptions['bypass'];
  guards: GuardConfig;
  candidates: number;
  defaultNamespace: string;
  maxQueryChars: number;
  maxRequestChars: number;
  maxMessages: number;
  syncIntervalMs: number | undefined;
  maxIndexedPartitions: number;
  index: 'auto' | 'sparse' | 'flat' | 'hnsw';
  hnsw: { m: number; efConstruction: number; efSearch: number | 'auto'; minEntries: number; simd: boolean };
}

const KNOWN = [
  'threshold',
  'embedder',
  'embedTimeout',
  'embeddingCacheSize',
  'ttl',
  'slidingTtl',
  'maxEntriesPerNamespace',
  'maxTemperature',
  'cacheTools',
  'streamReplay',
  'bypass',
  'guards',
  'candidates',
  'defaultNamespace',
  'maxQueryChars',
  'maxRequestChars',
  'maxMessages',
  'syncInterval',
  'maxIndexedPartitions',
  'index',
  'hnsw',
] as const;

function bool(value: unknown, fallback: boolean, what: string): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean')
    throw new ConfigError(`${what}: expected true or false, got ${JSON.stringify(value)}`);
  return value;
}

function unit(value: unknown, fallback: number, what: string, max = 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > max) {
    throw new ConfigError(`${what}: expected a number from 0 to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

export const DEFAULT_THRESHOLD = 0.65;

export function parseSemanticCacheOptions(options: SemanticCacheOptions = {}): SemanticCacheConfig {
  assertPlainObject(options, 'semanticCache');
  assertKnownKeys(options, KNOWN, 'semanticCache');
  const guards = options.guards ?? {};
  assertPlainObject(guards, 'semanticCache.guards');
  assertKnownKeys(
    guards,
    ['negation', 'numbers', 'entities', 'intent', 'refinement', 'substitution', 'wording', 'minOverlap'],
    'semanticCache.guards',
  );
  const embedder = options.embedder ?? new OfflineEmbedder();
  if (
    !embedder ||
    typeof embedder.embed !== 'function' ||
    !Number.isInteger(embedder.dimensions) ||
    typeof embedder.name !== 'string'
  ) {
    throw new ConfigError(
      'semanticCache.embedder: expected { name, dimensions, embed(texts) } (OfflineEmbedder, HttpEmbedder or functionEmbedder(fn))',
    );
  }
  if (options.bypass !== undefined && typeof options.bypass !== 'function') {
    throw new ConfigError('semanticCache.bypass: expected a function (request) => reason | undefined');
  }
  const index = options.index ?? 'auto';
  if (!['auto', 'sparse', 'flat', 'hnsw'].includes(index)) {
    throw new ConfigError(
      `semanticCache.index: expected 'auto', 'sparse', 'flat' or 'hnsw', got ${JSON.stringify(index)}`,
    );
  }
  const hnsw = options.hnsw ?? {};
  assertPlainObject(hnsw, 'semanticCache.hnsw');
  assertKnownKeys(hnsw, ['m', 'efConstruction', 'efSearch', 'minEntries', 'simd'], 'semanticCache.hnsw');
  const defaultNamespace = options.defaultNamespace ?? 'default';
  if (typeof defaultNamespace !== 'string' || defaultNamespace === '') {
    throw new ConfigError('semanticCache.defaultNamespace: expected a non-empty string');
  }
  return {
    threshold: unit(options.threshold, DEFAULT_THRESHOLD, 'semanticCache.threshold'),
    embedder,
    embedTimeoutMs: parseDuration(options.embedTimeout ?? '500 ms', 'semanticCache.embedTimeout'),
    embeddingCacheSize: positiveInt(options.embeddingCacheSize ?? 5000, 'semanticCache.embeddingCacheSize', 1_000_000),
    ttlMs: parseDuration(options.ttl ?? '1 d', 'semanticCache.ttl'),
    slidingTtl: bool(options.slidingTtl, false, 'semanticCache.slidingTtl'),
    maxEntries: positiveInt(options.maxEntriesPerNamespace ?? 10_000, 'semanticCache.maxEntriesPerNamespace'),
    maxTemperature: unit(options.maxTemperature, 1, 'semanticCache.maxTemperature', 2),
    cacheTools: bool(options.cacheTools, false, 'semanticCache.cacheTools'),
    streamReplay: bool(options.streamReplay, false, 'semanticCache.streamReplay'),
    bypass: options.bypass,
    guards: {
      negation: bool(guards.negation, true, 'semanticCache.guards.negation'),
      numbers: bool(guards.numbers, true, 'semanticCache.guards.numbers'),
      entities: bool(guards.entities, true, 'semanticCache.guards.entities'),
      intent: bool(guards.intent, true, 'semanticCache.guards.intent'),
      refinement: bool(guards.refinement, true, 'semanticCache.guards.refinement'),
      substitution: bool(guards.substitution, true, 'semanticCache.guards.substitution'),
      wording: bool(guards.wording, embedder instanceof OfflineEmbedder, 'semanticCache.guards.wording'),
      minOverlap: unit(guards.minOverlap, 0.3, 'semanticCache.guards.minOverlap'),
    },
    candidates: positiveInt(options.candidates ?? 1, 'semanticCache.candidates', 50),
    defaultNamespace,
    maxQueryChars: positiveInt(options.maxQueryChars ?? 8000, 'semanticCache.maxQueryChars'),
    maxRequestChars: positiveInt(options.maxRequestChars ?? 1_000_000, 'semanticCache.maxRequestChars'),
    maxMessages: positiveInt(options.maxMessages ?? 1000, 'semanticCache.maxMessages'),
    syncIntervalMs:
      options.syncInterval === undefined
        ? undefined
        : parseDuration(options.syncInterval, 'semanticCache.syncInterval'),
    maxIndexedPartitions: positiveInt(options.maxIndexedPartitions ?? 1000, 'semanticCache.maxIndexedPartitions'),
    index,
    hnsw: {
      m: positiveInt(hnsw.m ?? 16, 'semanticCache.hnsw.m', 64),
      efConstruction: positiveInt(hnsw.efConstruction ?? 100, 'semanticCache.hnsw.efConstruction', 2000),
      efSearch:
        hnsw.efSearch === undefined || hnsw.efSearch === 'auto'
          ? 'auto'
          : positiveInt(hnsw.efSearch, 'semanticCache.hnsw.efSearch', 10_000),
      // 0 is allowed: a graph from the first entry.
      minEntries: hnsw.minEntries === 0 ? 0 : positiveInt(hnsw.minEntries ?? 1000, 'semanticCache.hnsw.minEntries'),
      simd: bool(hnsw.simd, true, 'semanticCache.hnsw.simd'),
    },
  };
}
