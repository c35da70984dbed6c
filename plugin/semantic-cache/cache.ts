// The semantic LLM cache: an exact layer, then an exact partition, then a vector search in an in-process index
// kept in step with the store across instances, then the false-hit guards. Every answer says hit, miss or bypass,
// with the score, the entry id and the reason.

import { createHash } from 'node:crypto';
import { MemoryStore } from '../connection/store.js';
import type { FeatureContext } from '../core/context.js';
import { safeId } from '../core/keys.js';
import type { HitEntry, SemanticBackend } from './backend.js';
import { OfflineEmbedder } from './embedders/offline.js';
import type { Embedder } from './embedders/types.js';
import { EmbedderError, SemanticCacheInputError } from './errors.js';
import { checkGuards, GUARD_NAMES, type GuardName } from './guards.js';
import { MemorySemanticBackend } from './memory.js';
import { parseSemanticCacheOptions, type SemanticCacheConfig, type SemanticCacheOptions } from './options.js';
import { RedisSemanticBackend } from './redis.js';
import { type AnalysedRequest, analyseRequest, type LlmRequest } from './request.js';
import { type Signals, signals } from './text.js';
import { HnswIndex } from './hnsw.js';
import { FlatIndex, type IndexedEntry, normalise, SparseIndex, type VectorIndex } from './vector-index.js';

/** Back-off of the change-notice subscription when the store refuses it. */
const SUBSCRIBE_RETRY_MIN_MS = 1000;
const SUBSCRIBE_RETRY_MAX_MS = 30_000;

export type CacheStatus = 'hit' | 'miss' | 'bypass';

export interface CacheResult<T = unknown> {
  status: CacheStatus;
  /** `exact` (same normalised request) or `semantic` (vector match that passed the guards), on hits. */
  kind?: 'exact' | 'semantic';
  /** Cosine similarity of the best match (1 for exact hits); present whenever a vector search ran. */
  score?: number;
  /** Id of the entry served (hit) or of the best match a guard rejected. */
  id?: string;
  /** Why: the bypass rule, the miss cause (`no-match`, `below-threshold`, `guard`, `embed-timeout`, ...). */
  reason?: string;
  /** The guard that rejected the best match. */
  guard?: GuardName;
  /** The cached response, on hits. */
  response?: T;
  /** Tokens and compute time the hit saved (from the stored response's usage and measured compute time). */
  saved?: { tokens: number; ms: number };
}

export interface StoreOptions {
  /** This entry's time to live. @default the cache's ttl */
  ttl?: number;
  /** Tags for invalidation by tag (within the request's namespace). */
  tags?: string[];
  /** How long computing the response took (ms): reported as latency saved on later hits. */
  computeMs?: number;
}

export interface StoreResult {
  stored: boolean;
  id?: string;
  reason?: string;
}

export interface InvalidateTarget {
  namespace?: string;
  tag?: string;
  id?: string;
}

export interface SemanticCacheStats {
  lookups: number;
  hits: number;
  exactHits: number;
  semanticHits: number;
  misses: number;
  bypasses: number;
  bypassReasons: Record<string, number>;
  missReasons: Record<string, number>;
  guardRejections: Record<GuardName, number>;
  badHits: number;
  stores: number;
  storeErrors: number;
  embedErrors: number;
  /** Best-match scores of semantic lookups, in buckets of 0.05 from 0 (`le` is the upper bound). */
  scoreHistogram: Array<{ le: number; count: number }>;
  tokensSaved: number;
  latencySavedMs: number;
  indexedEntries: number;
  indexedPartitions: number;
  indexBytes: number;
  /**
   * Indexed entries an HNSW graph has not linked yet (searched by exact scan meanwhile): right after a partition
   * loads, this falls to 0 as the graph is built in the background. Partitions below `hnsw.minEntries` build no
   * graph and count here in full.
   */
  indexPending: number;
}

interface Payload {
  r: unknown;
  q: string;
  m: string;
  c: number;
  u?: number;
  l?: number;
}

interface PartitionState {
  index: VectorIndex;
  ready: boolean;
  loading?: Promise<void>;
}

interface NamespaceState {
  lastSeq: number;
  partitions: Map<string, PartitionState>;
  syncing?: Promise<void>;
  /** A change arrived while a sync was running: run again when it ends. */
  again: boolean;
}

const ID_PATTERN = /^(~[A-Za-z0-9_-]{24}|[A-Za-z0-9_.@=+-]{1,64})\.([A-Za-z0-9_-]{24})$/;
const HISTOGRAM_BUCKETS = 20;
const MAX_TAGS = 32;
/** Longest a lookup waits for its partition's first load; a longer load goes on in the background. */
const LOAD_WAIT_MS = 250;

function sha(text: string, length: number): string {
  return createHash('sha256').update(text, 'utf8').digest('base64url').slice(0, length);
}

/** Total tokens of an OpenAI-style `usage` object, if the response carries one. */
function usageTokens(response: unknown): number | undefined {
  const usage = (
    response as { usage?: { total_tokens?: unknown; prompt_tokens?: unknown; completion_tokens?: unknown } }
  )?.usage;
  if (!usage || typeof usage !== 'object') return undefined;
  if (typeof usage.total_tokens === 'number') return usage.total_tokens;
  const p = typeof usage.prompt_tokens === 'number' ? usage.prompt_tokens : 0;
  const c = typeof usage.completion_tokens === 'number' ? usage.completion_tokens : 0;
  return p + c || undefined;
}

function encodeVector(v: Float32Array, sparse: boolean): string {
  if (sparse) {
    let n = 0;
    for (let i = 0; i < v.length; i++) if (v[i] !== 0) n++;
    const buf = new ArrayBuffer(n * 8);
    const idx = new Int32Array(buf, 0, n);
    const val = new Float32Array(buf, n * 4, n);
    let j = 0;
    for (let i = 0; i < v.length; i++) {
      if (v[i] === 0) continue;
      idx[j] = i;
      val[j] = v[i] as number;
      j++;
    }
    return `s${v.length}:${Buffer.from(buf).toString('base64')}`;
  }
  return `d${v.length}:${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')}`;
}

function decodeVector(text: string): Float32Array | undefined {
  const colon = text.indexOf(':');
  if (colon < 2) return undefined;
  const dims = Number(text.slice(1, colon));
  const bytes = Buffer.from(text.slice(colon + 1), 'base64');
  // Copy into an aligned buffer: a Buffer's offset inside Node's pool need not be a multiple of 4.
  const aligned = new ArrayBuffer(bytes.length);
  new Uint8Array(aligned).set(bytes);
  if (text[0] === 'd') return aligned.byteLength === dims * 4 ? new Float32Array(aligned) : undefined;
  if (text[0] !== 's' || aligned.byteLength % 8 !== 0) return undefined;
  const n = aligned.byteLength / 8;
  const idx = new Int32Array(aligned, 0, n);
  const val = new Float32Array(aligned, n * 4, n);
  const v = new Float32Array(dims);
  for (let i = 0; i < n; i++) {
    const at = idx[i] as number;
    if (at >= 0 && at < dims) v[at] = val[i] as number;
  }
  return v;
}

/** `expiresAt|vector|meta` → the index entry and its vector. */
function decodeRecord(id: string, record: string): { entry: IndexedEntry; vector: Float32Array } | undefined {
  const a = record.indexOf('|');
  const b = record.indexOf('|', a + 1);
  if (a < 0 || b < 0) return undefined;
  const vector = decodeVector(record.slice(a + 1, b));
  if (!vector) return undefined;
  try {
    const meta = JSON.parse(record.slice(b + 1)) as { q: string; s: Signals };
    return { entry: { id, expiresAt: Number(record.slice(0, a)), text: meta.q, signals: meta.s }, vector };
  } catch {
    return undefined;
  }
}

class EmbedTimeout extends EmbedderError {}

export class SemanticCache {
  readonly config: SemanticCacheConfig;
  private readonly backend: SemanticBackend;
  private readonly embedder: Embedder;
  private readonly sparse: boolean;
  private readonly embeddings = new Map<string, Float32Array>();
  private readonly namespaces = new Map<string, NamespaceState>();
  /** Loaded partitions in order of use (`ns\u0000partition`), for the LRU bound. */
  private readonly recent = new Map<string, undefined>();
  private readonly channel: string;
  private unsubscribe: (() => Promise<void>) | undefined;
  private subscribing: Promise<void> | undefined;
  private subscribeRetry: NodeJS.Timeout | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly counters = {
    lookups: 0,
    hits: 0,
    exactHits: 0,
    semanticHits: 0,
    misses: 0,
    bypasses: 0,
    badHits: 0,
    stores: 0,
    storeErrors: 0,
    embedErrors: 0,
    tokensSaved: 0,
    latencySavedMs: 0,
  };
  private readonly bypassReasons: Record<string, number> = {};
  private readonly missReasons: Record<string, number> = {};
  private readonly guardRejections = Object.fromEntries(GUARD_NAMES.map((g) => [g, 0])) as Record<GuardName, number>;
  private readonly histogram = new Array<number>(HISTOGRAM_BUCKETS).fill(0);

  constructor(
    private readonly context: FeatureContext,
    options: SemanticCacheOptions = {},
  ) {
    this.config = parseSemanticCacheOptions(options);
    const { store } = context;
    this.backend = store instanceof MemoryStore ? new MemorySemanticBackend(store) : new RedisSemanticBackend(store);
    this.embedder = this.config.embedder;
    this.sparse = this.config.index === 'sparse' || (this.config.index === 'auto' && this.embedder.sparse === true);
    this.channel = store.keys.channel('semcache', 'changes');
    context.onClose(() => this.close());
  }

  // ---- public API -------------------------------------------------------------------------------------------

  /**
   * Answers from the cache or computes, stores and returns. `compute` runs on a miss or a bypass; its result is
   * stored on a miss only. Store trouble never fails the call: the cache steps aside and `compute` answers.
   */
  async wrap<T>(
    request: LlmRequest,
    compute: () => Promise<T>,
    options: Omit<StoreOptions, 'computeMs'> = {},
  ): Promise<CacheResult<T> & { response: T }> {
    const result = await this.lookup<T>(request);
    if (result.status === 'hit') return result as CacheResult<T> & { response: T };
    const started = performance.now();
    const response = await compute();
    const computeMs = performance.now() - started;
    if (result.status === 'miss') {
      const stored = await this.store(request, response, { ...options, computeMs });
      return { ...result, id: stored.id ?? result.id, response };
    }
    return { ...result, response };
  }

  /** Looks a request up. Throws SemanticCacheInputError (4xx) on a malformed request; never on store trouble. */
  async lookup<T = unknown>(request: LlmRequest): Promise<CacheResult<T>> {
    this.assertOpen();
    const req = this.analyse(request);
    this.counters.lookups++;
    const bypass = this.bypassReason(request, req);
    if (bypass) return this.bypassed(bypass);

    const ns = safeId(req.namespace);
    const id = `${ns}.${req.digest}`;
    const slide = this.config.slidingTtl ? this.config.ttlMs : 0;
    // With a local embedder (or a question embedded before) and the partition's index in memory, the vector search
    // costs microseconds: it runs first and one store call then asks for the exact entry and the guarded candidates
    // together, so any hit is one round trip. A remote embedder may take hundreds of ms, and an index may still be
    // loading: then the exact layer answers identical requests first, without waiting for either.
    const partition = this.vectorPartition(req);
    const local = this.embedder.constructor === OfflineEmbedder || this.embeddings.has(req.query);
    let index: VectorIndex | undefined;
    try {
      index = local ? await this.partitionIndex(ns, partition, false) : undefined;
    } catch {
      index = undefined;
    }
    if (!index) {
      try {
        const exact = await this.backend.hit(ns, [id], slide);
        if (exact) return this.served<T>(exact.payload, id, 1, 'exact');
      } catch (error) {
        return this.missed('store-unavailable', { error });
      }
    }
    const ids = index ? [id] : [];
    const scores = new Map<string, number>();
    let miss: { reason: string; score?: number; id?: string; guard?: GuardName; error?: unknown } | undefined;
    let vector: Float32Array | undefined;
    try {
      vector = await this.embedQuery(req.query);
    } catch (error) {
      miss = { reason: error instanceof EmbedTimeout ? 'embed-timeout' : 'embed-error', error };
    }
    if (vector && !index) {
      try {
        index = await this.partitionIndex(ns, partition, true);
        if (!index) miss = { reason: 'index-loading' };
      } catch (error) {
        miss = { reason: 'store-unavailable', error };
      }
    }
    if (index && vector) {
      const now = this.config.slidingTtl ? 0 : Date.now();
      // The threshold lets the sparse index skip long posting lists that cannot produce a match on their own.
      const candidates = index.search(vector, this.config.candidates, this.config.threshold, now);
      const best = candidates[0];
      if (!best) miss = { reason: 'no-match' };
      else {
        this.histogram[Math.max(0, Math.min(HISTOGRAM_BUCKETS - 1, Math.floor(best.score * HISTOGRAM_BUCKETS)))]!++;
        if (best.score < this.config.threshold) {
          miss = { reason: 'below-threshold', score: best.score, id: best.entry.id };
        } else {
          const query = signals(req.query);
          for (const candidate of candidates) {
            if (candidate.score < this.config.threshold) break;
            // The exact entry is asked for anyway (or was, and was not there).
            if (candidate.entry.id === id) continue;
            const guard = checkGuards(
              this.config.guards,
              query,
              req.query,
              candidate.entry.signals,
              candidate.entry.text,
            );
            if (guard) {
              this.guardRejections[guard]++;
              miss ??= { reason: 'guard', score: candidate.score, id: candidate.entry.id, guard };
              continue;
            }
            ids.push(candidate.entry.id);
            scores.set(candidate.entry.id, candidate.score);
          }
          if (scores.size > 0) miss = undefined;
          miss ??= { reason: 'expired', score: best.score };
        }
      }
    }
    if (ids.length > 0) {
      let entry: HitEntry | null;
      try {
        entry = await this.backend.hit(ns, ids, slide);
      } catch (error) {
        return this.missed('store-unavailable', { error, score: scores.values().next().value });
      }
      if (entry?.id === id) return this.served<T>(entry.payload, id, 1, 'exact');
      if (entry) return this.served<T>(entry.payload, entry.id, scores.get(entry.id) ?? 0, 'semantic');
      // Indexed but gone from the store (expired or removed meanwhile): drop them here too.
      for (const candidate of scores.keys()) index?.remove(candidate);
      if (scores.size > 0) miss = { reason: 'expired', score: Math.max(...scores.values()) };
    }
    const m = miss ?? { reason: 'no-match' };
    return this.missed(m.reason, m);
  }

  /** Stores a response for a request. Never throws on store trouble (returns `stored: false` with the reason). */
  async store(request: LlmRequest, response: unknown, options: StoreOptions = {}): Promise<StoreResult> {
    this.assertOpen();
    const req = this.analyse(request);
    const bypass = this.bypassReason(request, req);
    if (bypass) return { stored: false, reason: bypass };
    if (response === undefined) throw new SemanticCacheInputError('store: the response is undefined');
    const tags = options.tags ?? [];
    if (!Array.isArray(tags) || tags.length > MAX_TAGS || tags.some((t) => typeof t !== 'string' || t === '')) {
      throw new SemanticCacheInputError(`store: tags must be up to ${MAX_TAGS} non-empty strings`);
    }
    const ttlMs = options.ttl ?? this.config.ttlMs;
    if (!Number.isFinite(ttlMs) || ttlMs <= 0)
      throw new SemanticCacheInputError('store: ttl must be a positive number of ms');
    const ns = safeId(req.namespace);
    const id = `${ns}.${req.digest}`;
    const partition = this.vectorPartition(req);
    let vector = '';
    let querySignals: Signals | undefined;
    let normalised: Float32Array | undefined;
    try {
      normalised = await this.embedQuery(req.query);
      vector = encodeVector(normalised, this.sparse);
      querySignals = signals(req.query);
    } catch {
      // No vector: the entry still answers identical requests through the exact layer.
      this.counters.embedErrors++;
    }
    const text = req.query.slice(0, 1000);
    const payload: Payload = { r: response, q: text, m: req.model, c: Date.now() };
    const tokens = usageTokens(response);
    if (tokens !== undefined) payload.u = tokens;
    if (options.computeMs !== undefined) payload.l = Math.round(options.computeMs);
    let json: string;
    try {
      json = JSON.stringify(payload);
    } catch (error) {
      throw new SemanticCacheInputError(
        `store: the response cannot be serialised as JSON (${(error as Error).message})`,
      );
    }
    try {
      const put = await this.backend.put(ns, {
        id,
        partition,
        payload: json,
        record: vector ? `${vector}|${JSON.stringify({ q: text, s: querySignals })}` : '',
        ttlMs: Math.round(ttlMs),
        tags: tags.map((t) => sha(t, 16)),
        cap: this.config.maxEntries,
      });
      this.counters.stores++;
      const state = this.namespaces.get(ns);
      const part = state?.partitions.get(partition);
      if (part?.ready && normalised && querySignals) {
        part.index.add({ id, expiresAt: put.expiresAt, text, signals: querySignals }, normalised);
      }
      this.notify(ns);
      return { stored: true, id };
    } catch (error) {
      this.counters.storeErrors++;
      // Once, as the other features do: during an outage every request fails the same way (the fault suite saw a
      // line per request). storeErrors counts them all.
      this.context.logger.warnOnce('ERR_KIT_SEMANTIC_STORE', 'semantic cache: store failed', { err: error });
      return { stored: false, reason: 'store-unavailable' };
    }
  }

  /** Removes entries by id, by tag (within `namespace`, default namespace if absent) or a whole namespace. */
  async invalidate(target: InvalidateTarget): Promise<number> {
    this.assertOpen();
    if (target === null || typeof target !== 'object') {
      throw new SemanticCacheInputError('invalidate: expected { id } or { namespace } or { tag, namespace? }');
    }
    if (target.id !== undefined) {
      const parsed = this.parseId(target.id);
      const n = await this.backend.remove(parsed.ns, [target.id]);
      this.forget(parsed.ns, [target.id]);
      this.notify(parsed.ns);
      return n;
    }
    const namespace = target.namespace ?? (target.tag !== undefined ? this.config.defaultNamespace : undefined);
    if (typeof namespace !== 'string' || namespace === '') {
      throw new SemanticCacheInputError('invalidate: expected { id } or { namespace } or { tag, namespace? }');
    }
    const ns = safeId(namespace);
    if (target.tag !== undefined) {
      if (typeof target.tag !== 'string' || target.tag === '') throw new SemanticCacheInputError('invalidate: bad tag');
      const ids = await this.backend.tagged(ns, sha(target.tag, 16));
      const n = await this.backend.remove(ns, ids);
      this.forget(ns, ids);
      this.notify(ns);
      return n;
    }
    const n = await this.backend.clear(ns);
    const dropped = this.namespaces.get(ns);
    if (dropped) SemanticCache.closeIndexes(dropped.partitions.values());
    this.namespaces.delete(ns);
    this.notify(ns);
    return n;
  }

  /** A user or a check found a served answer wrong: remove the entry and count it. */
  async reportBadHit(id: string): Promise<boolean> {
    const n = await this.invalidate({ id });
    this.counters.badHits++;
    return n > 0;
  }

  stats(): SemanticCacheStats {
    let indexedEntries = 0;
    let indexedPartitions = 0;
    let indexBytes = 0;
    let indexPending = 0;
    for (const state of this.namespaces.values()) {
      for (const p of state.partitions.values()) {
        indexedPartitions++;
        indexedEntries += p.index.size;
        indexBytes += p.index.bytes();
        indexPending += p.index.pending ?? 0;
      }
    }
    return {
      ...this.counters,
      bypassReasons: { ...this.bypassReasons },
      missReasons: { ...this.missReasons },
      guardRejections: { ...this.guardRejections },
      scoreHistogram: this.histogram.map((count, i) => ({
        le: Math.round(((i + 1) / HISTOGRAM_BUCKETS) * 100) / 100,
        count,
      })),
      latencySavedMs: Math.round(this.counters.latencySavedMs),
      indexedEntries,
      indexedPartitions,
      indexBytes,
      indexPending,
    };
  }

  /** Brings every loaded namespace up to date with the store now (followers do this on their own, too). */
  async sync(): Promise<void> {
    await Promise.all([...this.namespaces.keys()].map((ns) => this.syncNamespace(ns)));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.subscribeRetry);
    await this.subscribing?.catch(() => undefined);
    await this.unsubscribe?.().catch(() => undefined);
    for (const state of this.namespaces.values()) SemanticCache.closeIndexes(state.partitions.values());
    this.namespaces.clear();
    this.embeddings.clear();
  }

  // ---- internals --------------------------------------------------------------------------------------------

  private assertOpen(): void {
    if (this.closed) throw new SemanticCacheInputError('the semantic cache has been closed', 503);
  }

  private analyse(request: LlmRequest): AnalysedRequest {
    return analyseRequest(
      request,
      { maxChars: this.config.maxRequestChars, maxMessages: this.config.maxMessages },
      this.config.defaultNamespace,
    );
  }

  private bypassReason(request: LlmRequest, req: AnalysedRequest): string | undefined {
    if (req.noCache) return 'no-cache';
    if (this.config.bypass) {
      const reason = this.config.bypass(request);
      if (reason) return typeof reason === 'string' ? reason : 'rule';
    }
    if (req.stream && !this.config.streamReplay) return 'stream';
    if (req.notQuestion) return 'not-a-question';
    if (req.hasTools && !this.config.cacheTools) return 'tools';
    if (req.temperature !== undefined && req.temperature > this.config.maxTemperature) return 'temperature';
    if (req.query.length > this.config.maxQueryChars) return 'too-large';
    return undefined;
  }

  private bypassed<T>(reason: string): CacheResult<T> {
    this.counters.bypasses++;
    this.bypassReasons[reason] = (this.bypassReasons[reason] ?? 0) + 1;
    return { status: 'bypass', reason };
  }

  private missed<T>(
    reason: string,
    extra: { score?: number; id?: string; guard?: GuardName; error?: unknown } = {},
  ): CacheResult<T> {
    this.counters.misses++;
    this.missReasons[reason] = (this.missReasons[reason] ?? 0) + 1;
    if (extra.error !== undefined && reason !== 'embed-timeout' && reason !== 'embed-error') {
      this.context.logger.warnOnce('ERR_KIT_SEMANTIC_LOOKUP', `semantic cache: ${reason}`, { err: extra.error });
    }
    if (reason === 'embed-timeout' || reason === 'embed-error') this.counters.embedErrors++;
    const result: CacheResult<T> = { status: 'miss', reason };
    if (extra.score !== undefined) result.score = extra.score;
    if (extra.id !== undefined) result.id = extra.id;
    if (extra.guard !== undefined) result.guard = extra.guard;
    return result;
  }

  private served<T>(json: string, id: string, score: number, kind: 'exact' | 'semantic'): CacheResult<T> {
    const payload = JSON.parse(json) as Payload;
    this.counters.hits++;
    if (kind === 'exact') this.counters.exactHits++;
    else this.counters.semanticHits++;
    const saved = { tokens: payload.u ?? 0, ms: payload.l ?? 0 };
    this.counters.tokensSaved += saved.tokens;
    this.counters.latencySavedMs += saved.ms;
    return { status: 'hit', kind, score, id, response: payload.r as T, saved };
  }

  private parseId(id: unknown): { ns: string } {
    const match = typeof id === 'string' ? ID_PATTERN.exec(id) : null;
    if (!match) throw new SemanticCacheInputError(`not a semantic-cache entry id: ${JSON.stringify(id)?.slice(0, 80)}`);
    return { ns: match[1] as string };
  }

  /** The partition of vectors: the request's partition and the embedder (vectors of two models never meet). */
  private vectorPartition(req: AnalysedRequest): string {
    return sha(`${req.partition}\u0000${this.embedder.name}\u0000${this.embedder.dimensions}`, 16);
  }

  private remember(text: string, unit: Float32Array): void {
    this.embeddings.set(text, unit);
    if (this.embeddings.size > this.config.embeddingCacheSize) {
      this.embeddings.delete(this.embeddings.keys().next().value as string);
    }
  }

  private async embedQuery(text: string): Promise<Float32Array> {
    const cached = this.embeddings.get(text);
    if (cached) {
      // Refresh its place: the map's order is the eviction order.
      this.embeddings.delete(text);
      this.embeddings.set(text, cached);
      return cached;
    }
    if (this.embedder.constructor === OfflineEmbedder) {
      // Synchronous and bounded (8,000 characters at most): no timer, no promise race. Not kept either: computing
      // it again takes microseconds, while keeping 5,000 dense 8,192-float vectors would hold 160 MB and feed the
      // old generation (long GC pauses).
      return (this.embedder as OfflineEmbedder).embedOne(text);
    }
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new EmbedTimeout(`the embedder did not answer within ${this.config.embedTimeoutMs} ms`));
      }, this.config.embedTimeoutMs);
    });
    try {
      const call = this.embedder.embed([text], { signal: controller.signal });
      call.catch(() => undefined);
      const [vector] = await Promise.race([call, timeout]);
      if (!(vector instanceof Float32Array) || vector.length !== this.embedder.dimensions) {
        throw new EmbedderError(`embedder ${this.embedder.name} returned a bad vector`);
      }
      const unit = normalise(vector);
      this.remember(text, unit);
      return unit;
    } finally {
      clearTimeout(timer);
    }
  }

  private newIndex(): VectorIndex {
    if (this.sparse) return new SparseIndex();
    if (this.config.index === 'flat') return new FlatIndex(this.embedder.dimensions);
    return new HnswIndex(this.embedder.dimensions, this.config.hnsw);
  }

  /** Dropped indexes stop their background work (an HNSW graph still being linked). */
  private static closeIndexes(partitions: Iterable<PartitionState>): void {
    for (const p of partitions) p.index.close?.();
  }

  /**
   * The partition's index, loaded from the store on first use. A load that takes longer than 250 ms (or the command
   * timeout, if shorter) goes on in the background and lookups meanwhile are misses ('index-loading').
   */
  private async partitionIndex(ns: string, partition: string, wait: boolean): Promise<VectorIndex | undefined> {
    this.startFollowing();
    let state = this.namespaces.get(ns);
    if (!state) {
      state = { lastSeq: -1, partitions: new Map(), again: false };
      this.namespaces.set(ns, state);
    }
    this.touchPartition(ns, partition);
    let part = state.partitions.get(partition);
    if (!part) {
      const created: PartitionState = { index: this.newIndex(), ready: false };
      part = created;
      state.partitions.set(partition, created);
      created.loading = this.load(ns, state, partition, created).catch((error: unknown) => {
        created.index.close?.();
        if (state.partitions.get(partition) === created) state.partitions.delete(partition);
        throw error;
      });
      created.loading.catch(() => undefined);
    }
    if (part.ready) return part.index;
    if (!wait || !part.loading) return undefined;
    let timer: NodeJS.Timeout | undefined;
    const loaded = await Promise.race([
      part.loading.then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), Math.min(this.context.commandTimeoutMs, LOAD_WAIT_MS));
      }),
    ]).finally(() => clearTimeout(timer));
    return loaded ? part.index : undefined;
  }

  /** Least recently used partitions beyond `maxIndexedPartitions` are dropped (reloaded on their next use). */
  private touchPartition(ns: string, partition: string): void {
    const key = `${ns}\u0000${partition}`;
    this.recent.delete(key);
    this.recent.set(key, undefined);
    while (this.recent.size > this.config.maxIndexedPartitions) {
      const oldest = this.recent.keys().next().value as string;
      this.recent.delete(oldest);
      const [oldNs = '', oldPartition = ''] = oldest.split('\u0000');
      const state = this.namespaces.get(oldNs);
      if (!state) continue;
      state.partitions.get(oldPartition)?.index.close?.();
      state.partitions.delete(oldPartition);
      if (state.partitions.size === 0 && !state.syncing && oldNs !== ns) this.namespaces.delete(oldNs);
    }
  }

  private async load(ns: string, state: NamespaceState, partition: string, part: PartitionState): Promise<void> {
    if (state.lastSeq < 0) state.lastSeq = await this.backend.seq(ns);
    let cursor = '0';
    do {
      const page = await this.backend.scan(ns, partition, cursor);
      for (const [id, record] of page.records) {
        const decoded = decodeRecord(id, record);
        if (decoded) part.index.add(decoded.entry, decoded.vector);
      }
      cursor = page.cursor;
      // Let requests and timers run between pages: decoding a large partition takes a while.
      if (cursor !== '0') await new Promise((resolve) => setImmediate(resolve));
    } while (cursor !== '0' && !this.closed);
    part.ready = true;
  }

  private forget(ns: string, ids: string[]): void {
    const state = this.namespaces.get(ns);
    if (!state) return;
    for (const p of state.partitions.values()) for (const id of ids) p.index.remove(id);
  }

  /** Tells other instances that a namespace changed (they pull the change log); best effort. */
  private notify(ns: string): void {
    if (!this.context.store.canSubscribe) return;
    this.context.store.publish(this.channel, ns).catch(() => undefined);
  }

  private startFollowing(): void {
    if (this.timer || this.closed) return;
    const { store } = this.context;
    const interval = this.config.syncIntervalMs ?? (store.canSubscribe ? 5000 : 250);
    this.timer = setInterval(() => {
      void this.sync().catch(() => undefined);
    }, interval);
    this.timer.unref();
    if (store.canSubscribe) this.follow(SUBSCRIBE_RETRY_MIN_MS);
  }

  /**
   * Subscribes to change notices; a failure (the store was down at start-up) is retried with back-off, doubling
   * from 1 s to 30 s, while the interval sync keeps the index roughly current meanwhile.
   */
  private follow(retryMs: number): void {
    if (this.closed) return;
    this.subscribing = this.context.store
      .subscribe(this.channel, (ns) => {
        if (this.namespaces.has(ns)) void this.syncNamespace(ns).catch(() => undefined);
      })
      .then((off) => {
        if (this.closed) void off();
        else {
          this.unsubscribe = off;
          // Changes published while the subscription was being set up were not heard: catch up once.
          void this.sync().catch(() => undefined);
        }
      })
      .catch((error: unknown) => {
        this.context.logger.warnOnce(
          'ERR_KIT_SEMANTIC_SUBSCRIBE',
          'semantic cache: cannot subscribe to change notices; syncing on an interval and retrying',
          { err: error },
        );
        if (this.closed) return;
        this.subscribeRetry = setTimeout(() => this.follow(Math.min(retryMs * 2, SUBSCRIBE_RETRY_MAX_MS)), retryMs);
        this.subscribeRetry.unref();
      });
  }

  private syncNamespace(ns: string): Promise<void> {
    const state = this.namespaces.get(ns);
    if (!state || state.lastSeq < 0) return Promise.resolve();
    if (state.syncing) {
      state.again = true;
      return state.syncing;
    }
    state.syncing = (async () => {
      try {
        do {
          state.again = false;
          await this.pull(ns, state);
        } while (state.again && !this.closed);
      } finally {
        state.syncing = undefined;
      }
    })();
    return state.syncing;
  }

  private async pull(ns: string, state: NamespaceState): Promise<void> {
    for (let page = 0; page < 20; page++) {
      const batch = await this.backend.changes(ns, state.lastSeq, 1000);
      if (batch.seq < state.lastSeq || batch.oldest > state.lastSeq + 1) {
        // The store restarted, or this instance fell behind the log: rebuild lazily from the store.
        SemanticCache.closeIndexes(state.partitions.values());
        state.partitions.clear();
        state.lastSeq = batch.seq;
        return;
      }
      for (const change of batch.changes) {
        state.lastSeq = change.seq;
        if (change.op === 'r') {
          SemanticCache.closeIndexes(state.partitions.values());
          state.partitions.clear();
          continue;
        }
        const part = state.partitions.get(change.partition);
        if (!part) continue;
        if (change.op === 'd') part.index.remove(change.id);
        else if (change.record) {
          const decoded = decodeRecord(change.id, change.record);
          if (decoded) part.index.add(decoded.entry, decoded.vector);
        }
      }
      if (batch.changes.length < 1000) return;
    }
  }
}

export function createSemanticCache(context: FeatureContext, options?: SemanticCacheOptions): SemanticCache {
  return new SemanticCache(context, options);
}
