// kit.cache(options): the route middleware, and the per-kit state it shares (store contract, pub/sub for fills
// and invalidations, the Vary memo, in-process layers, counters). Per request it does one store round trip on a
// hit (none on a hot-layer hit); everything that can be decided once is decided in parseRouteOptions.

import { randomBytes } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Store } from '../connection/store.js';
import type { FeatureContext } from '../core/context.js';
import { ClosedError, ConfigError } from '../core/errors.js';
import { safeId } from '../core/keys.js';
import { assertKnownKeys, assertPlainObject } from '../core/options.js';
import type { CacheBackend, CachedEntry, EntryKeys, LookupReply, StoredResponse, TagKeys } from './backend.js';
import { Capture } from './capture.js';
import { HotLayer } from './hot.js';
import {
  canonicalPrefix,
  freshnessMs,
  notModified,
  normaliseUrl,
  parseCacheControl,
  pathPrefixes,
  secondaryKey,
  strongEtag,
  varySpec,
} from './http.js';
import { MemoryCacheBackend } from './memory.js';
import { checkTags, parseRouteOptions, type ResponseCacheOptions, type RouteConfig } from './options.js';
import { RedisCacheBackend } from './redis.js';

export interface InvalidateTarget {
  /** Entries stored with any of these tags. */
  tags?: readonly string[];
  /** One primary key: a URL path (normalised the same way: `/products?b=2&a=1`) or what your `key` function returns. */
  key?: string;
  /** Every entry whose URL path starts with this path, at segment boundaries: `/products` covers `/products/42`. */
  prefix?: string;
}

export interface ResponseCacheStats {
  hits: number;
  staleHits: number;
  hotHits: number;
  misses: number;
  collapsed: number;
  bypassed: number;
  stored: number;
  storeErrors: number;
}

export interface ResponseCache {
  /** Route middleware caching the responses of the routes after it. */
  (options?: ResponseCacheOptions): RequestHandler;
  /** Deletes entries everywhere (store and every instance's in-process layer). */
  invalidate(target: InvalidateTarget): Promise<{ deleted: number }>;
  /** Counters since the kit was created. */
  stats(): ResponseCacheStats;
}

const FEATURE = 'rc';
/** Most path segments turned into implicit prefix tags. */
const PREFIX_DEPTH = 6;
/** How long a tag's invalidation time is remembered (longer than any handler should run). */
const INVALIDATION_MEMORY_MS = 10 * 60_000;
/** How often a request waiting for another's fill looks at the entry and the lease again. */
const FILL_RECHECK_MS = 1000;
const SPEC_MEMO_MAX = 10_000;
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);
/** Fields never replayed from a stored response (hop-by-hop, per-response, recomputed). */
const UNSTORED = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'set-cookie',
  'age',
  'date',
  'cache-status',
  'content-length',
]);

type Verdict =
  | { ok: false; reason: string }
  | {
      ok: true;
      spec: string;
      freshMs: number;
      swrMs: number;
      sieMs: number;
      fields: Array<[string, string | string[]]>;
      originEtag: string | undefined;
      lastModified: number;
      originAge: number;
    };

type Waiter = (outcome: 'stored' | 'gone') => void;

/** The per-kit half: built once, shared by every route the kit caches. */
class CacheCore {
  readonly backend: CacheBackend;
  private readonly keyHead: string;
  private readonly tagHead: string;
  private readonly fillChannel: string;
  private readonly invChannel: string;
  private readonly waiters = new Map<string, Set<Waiter>>();
  readonly hotLayers = new Set<HotLayer>();
  private readonly specs = new Map<string, string>();
  subscribed = false;
  // Lease tokens: unique per process (random prefix) and per request (counter), without a random draw per request.
  private readonly tokenPrefix = randomBytes(9).toString('base64url');
  private tokenSeq = 0;
  private subscribing: Promise<void> | undefined;
  private unsubscribers: Array<() => Promise<void>> = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs = 250;
  closed = false;
  readonly counters: ResponseCacheStats = {
    hits: 0,
    staleHits: 0,
    hotHits: 0,
    misses: 0,
    collapsed: 0,
    bypassed: 0,
    stored: 0,
    storeErrors: 0,
  };

  readonly clock: StoreClock;

  constructor(readonly context: FeatureContext) {
    const store = context.store;
    this.clock = new StoreClock(store);
    this.backend = store.mode === 'memory' ? new MemoryCacheBackend(store) : new RedisCacheBackend(store);
    this.keyHead = `${store.keys.prefix}:${FEATURE}:{`;
    this.tagHead = `${store.keys.prefix}:${FEATURE}t:{`;
    this.fillChannel = store.keys.channel(FEATURE, 'fill');
    this.invChannel = store.keys.channel(FEATURE, 'invalidate');
    context.onClose(() => this.close());
  }

  get store(): Store {
    return this.context.store;
  }

  /** Subscribes (once, in the background) to fill notices and invalidations; retries with backoff. */
  ensureSubscribed(): void {
    if (this.subscribing || this.closed || !this.store.canSubscribe) return;
    this.subscribing = (async () => {
      try {
        this.unsubscribers.push(await this.store.subscribe(this.fillChannel, (m) => this.onFill(m)));
        this.unsubscribers.push(await this.store.subscribe(this.invChannel, (m) => this.onInvalidate(m)));
        this.subscribed = true;
        this.retryMs = 250;
      } catch (error) {
        await Promise.all(this.unsubscribers.splice(0).map((u) => u().catch(() => undefined)));
        this.storeError(error, 'subscribe');
        if (this.closed) return;
        this.retryTimer = setTimeout(() => {
          this.subscribing = undefined;
          this.ensureSubscribed();
        }, this.retryMs);
        this.retryTimer.unref();
        this.retryMs = Math.min(this.retryMs * 2, 10_000);
      }
    })();
  }

  token(): string {
    this.tokenSeq = (this.tokenSeq + 1) % Number.MAX_SAFE_INTEGER;
    return `${this.tokenPrefix}.${this.tokenSeq.toString(36)}`;
  }

  /** Only the two keys a fresh-hit read needs. */
  readKeys(id: string, sec: string): { vary: string; entry: string } {
    const head = `${this.keyHead}${id}}`;
    return { vary: `${head}:vary`, entry: `${head}:e:${sec}` };
  }

  entryKeys(id: string, sec: string): EntryKeys {
    const head = `${this.keyHead}${id}}`;
    return {
      vary: `${head}:vary`,
      entry: `${head}:e:${sec}`,
      lease: `${head}:lease`,
      variants: `${head}:vz`,
      legacyVariants: `${head}:variants`,
    };
  }

  tagKeys(tag: string): TagKeys {
    const head = `${this.tagHead}${safeId(tag)}}`;
    return { members: `${head}:z`, invalidated: `${head}:i`, legacy: `${head}:m` };
  }

  specFor(id: string): string {
    return this.specs.get(id) ?? '';
  }

  rememberSpec(id: string, spec: string): void {
    if (this.specs.get(id) === spec) return;
    // Bounded: when full, start over (the memo only saves a round trip; the store has the truth).
    if (this.specs.size >= SPEC_MEMO_MAX) this.specs.clear();
    this.specs.set(id, spec);
  }

  storeError(error: unknown, where: string): void {
    this.counters.storeErrors++;
    for (const hot of this.hotLayers) hot.clear();
    this.context.logger.warnOnce(
      'ERR_KIT_CACHE_STORE',
      'response cache: the store failed; requests go to their handlers uncached until it answers again',
      { where, err: error },
    );
  }

  /** Registers interest in the fill of `id`; resolves 'stored' / 'gone' when notified, 'timeout' otherwise. */
  wait(id: string, ms: number): { done: Promise<'stored' | 'gone' | 'timeout'>; cancel(): void } {
    let set = this.waiters.get(id);
    if (!set) {
      set = new Set();
      this.waiters.set(id, set);
    }
    const waiters = set;
    let waiter: Waiter = () => undefined;
    let timer: NodeJS.Timeout | undefined;
    const cancel = () => {
      clearTimeout(timer);
      waiters.delete(waiter);
      if (waiters.size === 0 && this.waiters.get(id) === waiters) this.waiters.delete(id);
    };
    const done = new Promise<'stored' | 'gone' | 'timeout'>((resolve) => {
      waiter = (outcome) => {
        cancel();
        resolve(outcome);
      };
      timer = setTimeout(() => {
        cancel();
        resolve('timeout');
      }, ms);
      timer.unref();
    });
    waiters.add(waiter);
    return { done, cancel };
  }

  private onFill(message: string): void {
    const nl = message.lastIndexOf('\n');
    const id = message.slice(0, nl);
    const set = this.waiters.get(id);
    if (!set) return;
    const outcome = message.slice(nl + 1) === '1' ? 'stored' : 'gone';
    for (const w of [...set]) w(outcome);
  }

  /** Tells waiters (here at once, elsewhere through pub/sub) that the fill of `id` is over. */
  notifyFill(id: string, stored: boolean): void {
    this.onFill(`${id}\n${stored ? 1 : 0}`);
    if (this.store.canSubscribe) {
      this.store.publish(this.fillChannel, `${id}\n${stored ? 1 : 0}`).catch((e) => this.storeError(e, 'publish'));
    }
  }

  private onInvalidate(message: string): void {
    let parsed: { k?: string[]; t?: string[]; p?: string[] };
    try {
      parsed = JSON.parse(message);
    } catch {
      return;
    }
    for (const hot of this.hotLayers) hot.invalidate(parsed);
  }

  async invalidate(target: InvalidateTarget): Promise<{ deleted: number }> {
    if (this.closed) throw new ClosedError('the response cache');
    assertPlainObject(target, 'kit.cache.invalidate');
    assertKnownKeys(target, ['tags', 'key', 'prefix'], 'kit.cache.invalidate');
    const tags = target.tags === undefined ? [] : [...checkTags(target.tags)];
    if (target.key !== undefined && typeof target.key !== 'string')
      throw new ConfigError('invalidate: key must be a string');
    if (target.prefix !== undefined && typeof target.prefix !== 'string')
      throw new ConfigError('invalidate: prefix must be a string');
    const prefix = target.prefix === undefined ? undefined : canonicalPrefix(target.prefix);
    const id = target.key === undefined ? undefined : primaryId(keyString(target.key));
    const message = { k: id ? [id] : [], t: tags, p: prefix ? [prefix] : [] };
    // Local layers first, so this instance's very next request already misses.
    for (const hot of this.hotLayers) hot.invalidate(message);
    let deleted = 0;
    const tagNames = [...tags.map((t) => `t:${t}`), ...(prefix ? [`p:${prefix}`] : [])];
    for (const name of tagNames) {
      const members = await this.backend.tagPurge(this.tagKeys(name), INVALIDATION_MEMORY_MS);
      deleted += await this.backend.deleteEntries(members);
    }
    if (id) {
      const keys = this.entryKeys(id, '-');
      deleted += await this.backend.purgeKey(keys);
    }
    if (this.store.canSubscribe) await this.store.publish(this.invChannel, JSON.stringify(message));
    return { deleted };
  }

  async close(): Promise<void> {
    // Hits read in the turn that closes the kit go out before the store closes.
    this.backend.close?.();
    this.closed = true;
    this.clock.stop();
    clearTimeout(this.retryTimer);
    for (const hot of this.hotLayers) hot.clear();
    for (const set of this.waiters.values()) for (const w of [...set]) w('gone');
    await Promise.all(this.unsubscribers.splice(0).map((u) => u().catch(() => undefined)));
  }
}

/**
 * An estimate of the store's clock (its TIME, read now and then, minus half the round trip), so a fresh hit can be
 * judged without a script. Freshness is decided in whole seconds of Age, so a few ms of error do not matter;
 * everything near or past expiry is decided by the scripts on the server's own clock.
 */
class StoreClock {
  private offset = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly store: Store) {}

  now(): number {
    return Date.now() + this.offset;
  }

  start(): void {
    if (this.timer || this.store.mode === 'memory') return;
    const sync = () => {
      const t0 = Date.now();
      this.store.time().then(
        (server) => {
          const t1 = Date.now();
          this.offset = server - (t0 + t1) / 2;
        },
        () => undefined,
      );
    };
    sync();
    this.timer = setInterval(sync, 30_000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

function keyString(key: string): string {
  return `GET ${key.startsWith('/') ? normaliseUrl(key) : key}`;
}

// Hashing the primary key is the costliest step of a hit's key work; hot URLs repeat, so remember recent ids.
const ID_MEMO_MAX = 10_000;
const idMemo = new Map<string, string>();

function primaryId(key: string): string {
  let id = idMemo.get(key);
  if (id === undefined) {
    id = safeId(key);
    // Bounded in count (start over when full) and in key length (a 16 kB URL is not worth keeping).
    if (key.length <= 2048) {
      if (idMemo.size >= ID_MEMO_MAX) idMemo.clear();
      idMemo.set(key, id);
    }
  }
  return id;
}

function headerText(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(', ') : String(value);
}

const sleep = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref();
  });

/** Builds `kit.cache`: a function making route middleware, with `invalidate` and `stats` on it. */
export function createResponseCache(context: FeatureContext): ResponseCache {
  let core: CacheCore | undefined;
  const getCore = () => {
    core ??= new CacheCore(context);
    return core;
  };
  const cache = ((options: ResponseCacheOptions = {}) => {
    if (options && typeof options === 'object' && 'method' in options && 'url' in options) {
      throw new TypeError('kit.cache is a factory: use app.get(path, kit.cache({ ttl: "1 m" }), handler)');
    }
    const config = parseRouteOptions(options);
    const c = getCore();
    c.ensureSubscribed();
    c.clock.start();
    return routeMiddleware(c, config);
  }) as ResponseCache;
  cache.invalidate = (target) => getCore().invalidate(target);
  cache.stats = () => ({ ...getCore().counters });
  return cache;
}

function routeMiddleware(core: CacheCore, config: RouteConfig): RequestHandler {
  const name = config.name;
  const status = (params: string) => `${name}; ${params}`;
  const sessionCookie = config.sessionCookies.length
    ? new RegExp(
        `(?:^|;)\\s*(?:${config.sessionCookies.map((c) => c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})=`,
      )
    : undefined;
  let hot: HotLayer | undefined;
  if (config.hot) {
    if (core.store.canSubscribe) {
      hot = new HotLayer(config.hot.maxEntries, config.hot.maxAgeMs);
      core.hotLayers.add(hot);
    } else {
      core.context.logger.warnOnce(
        'ERR_KIT_CACHE_HOT_LAYER',
        'response cache: hotLayer needs pub/sub for invalidation, which Upstash REST has not; it is off',
      );
    }
  }
  const leaseMs = config.coalesce ? config.coalesce.leaseMs : 0;
  const skewMs = core.store.mode === 'cluster' ? 1000 : 0;

  const bypass = (res: Response, next: NextFunction, params: string) => {
    core.counters.bypassed++;
    res.setHeader('cache-status', status(params));
    next();
  };

  function serve(req: Request, res: Response, entry: CachedEntry, now: number, params: string): void {
    const r = entry.response;
    for (const [field, value] of r.h) res.setHeader(field, value);
    const storedAt = entry.freshUntil - r.f;
    res.setHeader('age', String(r.a + Math.max(0, Math.floor((now - storedAt) / 1000))));
    res.setHeader('cache-status', status(`${params}; ttl=${Math.floor((entry.freshUntil - now) / 1000)}`));
    if (r.s >= 200 && r.s < 300 && notModified(req.headers, r.et, r.lm)) {
      res.statusCode = 304;
      res.removeHeader('content-type');
      res.end();
      return;
    }
    res.statusCode = r.s;
    if (req.method === 'HEAD' || r.s === 204) {
      if (r.s !== 204) res.setHeader('content-length', String(entry.body.length));
      res.end();
      return;
    }
    res.end(entry.body);
  }

  function verdict(
    code: number,
    headers: Record<string, unknown>,
    upstream: Record<string, unknown> | undefined,
  ): Verdict {
    if (!config.statuses.has(code)) return { ok: false, reason: `status-${code}` };
    if (headers['set-cookie'] !== undefined && !config.userKey) return { ok: false, reason: 'set-cookie' };
    if (headers['content-range'] !== undefined) return { ok: false, reason: 'partial' };
    const cc = parseCacheControl(headers['cache-control']);
    if (cc.noStore) return { ok: false, reason: 'no-store' };
    if (cc.private) return { ok: false, reason: 'private' };
    if (cc.noCache) return { ok: false, reason: 'no-cache' };
    const spec = varySpec(headers.vary, config.vary);
    if (spec === null) return { ok: false, reason: 'vary' };
    const freshMs = freshnessMs(cc, headers.expires, Date.now(), config.ttlMs);
    if (freshMs <= 0) return { ok: false, reason: 'stale-on-arrival' };
    const fields: Array<[string, string | string[]]> = [];
    let originEtag: string | undefined;
    let lastModified = Number.NaN;
    for (const [field, value] of Object.entries(headers)) {
      if (value === undefined || UNSTORED.has(field)) continue;
      // Set by middleware before the cache (a request id, CORS, security headers): per request, set again on every
      // hit by that middleware, so not stored (unless the handler changed the value).
      if (upstream && upstream[field] === value) continue;
      if (field === 'etag') {
        const tag = String(value);
        // Express's automatic ETag is weak; we keep an origin's strong one and make our own otherwise.
        if (!tag.startsWith('W/')) originEtag = tag;
        continue;
      }
      if (field === 'last-modified') lastModified = Date.parse(String(value));
      fields.push([field, Array.isArray(value) ? value.map(String) : String(value)]);
    }
    const ageHeader = Number(headers.age);
    return {
      ok: true,
      spec,
      freshMs,
      swrMs: cc.mustRevalidate
        ? 0
        : (cc.staleWhileRevalidate ?? -1) >= 0
          ? (cc.staleWhileRevalidate as number) * 1000
          : config.swrMs,
      sieMs: cc.mustRevalidate ? 0 : (cc.staleIfError ?? -1) >= 0 ? (cc.staleIfError as number) * 1000 : config.sieMs,
      fields,
      originEtag,
      lastModified,
      originAge: Number.isFinite(ageHeader) && ageHeader > 0 ? Math.floor(ageHeader) : 0,
    };
  }

  interface Flow {
    req: Request;
    res: Response;
    next: NextFunction;
    id: string;
    url: string;
    token: string;
  }

  /** Stores what a run of the handler produced (or gives the lease back), then tells any waiters. */
  async function finish(flow: Flow, cap: Capture, v: Verdict | undefined, lease: boolean, startedAt: number) {
    const { req, res, id } = flow;
    const keysNoVariant = core.entryKeys(id, '-');
    if (cap.discarded || !cap.recording || cap.overflow || !v || !v.ok) {
      if (lease) {
        // Not storable by policy (private, too big, ...) rather than by failure: leave a short marker so that
        // concurrent requests run their handlers at once instead of queueing behind one filler after another.
        // After a 5xx the lease is simply released: queueing then spares a failing backend.
        const byPolicy = !cap.discarded && (cap.overflow || (v !== undefined && !v.ok && cap.status < 500));
        const markerMs = byPolicy ? Math.min(leaseMs, 1000) : 0;
        await core.backend
          .release(keysNoVariant.lease, flow.token, markerMs)
          .catch((e) => core.storeError(e, 'release'));
        core.notifyFill(id, false);
      }
      return;
    }
    try {
      const body = cap.body;
      const etag = v.originEtag ?? strongEtag(body);
      const lm = Number.isFinite(v.lastModified) ? v.lastModified : startedAt;
      const fields = v.fields;
      fields.push(['etag', etag]);
      if (!Number.isFinite(v.lastModified)) fields.push(['last-modified', new Date(lm).toUTCString()]);
      let userTags: readonly string[];
      try {
        userTags = typeof config.tags === 'function' ? checkTags(config.tags(req, res) ?? []) : config.tags;
      } catch (error) {
        // A tags function that throws or returns bad tags: the response cannot be invalidated, so do not keep it.
        core.context.logger.warnOnce('ERR_KIT_CACHE_TAGS', 'response cache: the tags function failed; not storing', {
          err: error,
        });
        if (lease) core.notifyFill(id, false);
        if (lease) await core.backend.release(keysNoVariant.lease, flow.token).catch(() => undefined);
        return;
      }
      const response: StoredResponse = {
        s: cap.status,
        h: fields,
        b: body.toString('base64'),
        et: etag,
        lm,
        f: v.freshMs,
        a: v.originAge,
        sie: v.sieMs,
        tg: [...userTags],
        u: flow.url,
      };
      const sec = secondaryKey(v.spec, req.headers);
      const keys = core.entryKeys(id, sec);
      const keepMs = v.freshMs + Math.max(v.swrMs, v.sieMs);
      const storedAt = await core.backend.store(keys, {
        spec: v.spec,
        token: lease ? flow.token : '',
        freshMs: v.freshMs,
        swrMs: v.swrMs,
        keepMs,
        response,
        body,
      });
      core.rememberSpec(id, v.spec);
      const tagNames = [...userTags.map((t) => `t:${t}`), ...pathPrefixes(flow.url, PREFIX_DEPTH).map((p) => `p:${p}`)];
      const registered = await Promise.all(
        tagNames.map((t) => core.backend.tagAdd(core.tagKeys(t), keys.entry, startedAt, keepMs, skewMs)),
      );
      if (registered.every(Boolean)) {
        core.counters.stored++;
        if (hot && core.subscribed) {
          const freshUntil = storedAt + v.freshMs;
          const entry = { freshUntil, staleUntil: freshUntil + v.swrMs, response, body };
          hot.set(`${id}\u0000${sec}`, id, entry, storedAt, Date.now());
        }
        if (lease) core.notifyFill(id, true);
      } else {
        // A tag was invalidated while the handler ran: what it produced may predate the change.
        await core.backend.deleteEntries([keys.entry]);
        if (lease) core.notifyFill(id, false);
      }
    } catch (error) {
      core.storeError(error, 'store');
      if (lease) {
        core.notifyFill(id, false);
        await core.backend.release(keysNoVariant.lease, flow.token).catch(() => undefined);
      }
    }
  }

  /**
   * Runs the rest of the chain with the response captured. `stale` is a copy that may stand in for a failure;
   * `shadow` means the client already has its answer.
   */
  function run(
    flow: Flow,
    params: string,
    opts: { lease: boolean; startedAt: number; stale?: CachedEntry; staleNow?: number; shadow?: boolean },
  ): void {
    const { req, res, next } = flow;
    let decided: Verdict | undefined;
    let timer: NodeJS.Timeout | undefined;
    const stale = opts.stale;
    const staleUsable =
      stale && stale.response.sie > 0 && (opts.staleNow ?? 0) < stale.freshUntil + stale.response.sie
        ? stale
        : undefined;
    const serveStale = (r: Response, detail: string) => {
      if (!staleUsable) return;
      core.counters.staleHits++;
      serve(req, r, staleUsable, opts.staleNow ?? 0, `hit; fwd=stale; ${detail}`);
    };
    // What middleware before us set: the shadow's starting state, and the fields not to store.
    const snapshot = res.getHeaders();
    if (opts.shadow && stale) {
      core.counters.staleHits++;
      serve(req, res, stale, opts.staleNow ?? 0, 'hit; detail=stale-while-revalidate');
    }
    // Ask the handler for the full representation; conditionals are answered from what we store.
    delete req.headers['if-none-match'];
    delete req.headers['if-modified-since'];
    const cap = new Capture(
      res,
      config.maxBodySize,
      {
        onHead(c) {
          clearTimeout(timer);
          if (c.status >= 500 && staleUsable) {
            c.divert((r) => serveStale(r, `fwd-status=${c.status}; detail=stale-if-error`), false);
            return false;
          }
          decided = verdict(c.status, c.headers(), snapshot);
          // One detail per member (RFC 9211 parameters are a dictionary): why it was not stored wins.
          res.setHeader(
            'cache-status',
            status(decided.ok ? params : `${params.replace(/; detail=[^;]*/, '')}; detail=${decided.reason}`),
          );
          return decided.ok;
        },
        onEnd(c) {
          clearTimeout(timer);
          if (c.mode === 'shadow' && !c.discarded) decided = verdict(c.status, c.headers(), snapshot);
          void finish(flow, c, decided, opts.lease, opts.startedAt);
        },
      },
      opts.shadow ? 'shadow' : 'pass',
      opts.shadow ? snapshot : undefined,
    );
    if (opts.shadow) cap.startRecording();
    if (staleUsable && !opts.shadow) {
      timer = setTimeout(() => {
        if (cap.headSeen || cap.ended) return;
        // Too slow: answer with the stale copy now; what the handler still produces may be stored.
        cap.startRecording();
        cap.divert((r) => serveStale(r, 'detail=stale-if-error-timeout'), true);
      }, config.sieTimeoutMs);
      timer.unref();
    }
    if (opts.lease && !opts.shadow) {
      // The client went away before the handler finished: free the key for others. (A shadow run outlives its
      // client's response by design, and keeps the lease until it stores.)
      res.once('close', () => {
        if (!cap.ended && cap.mode === 'pass') {
          clearTimeout(timer);
          core.notifyFill(flow.id, false);
          core.backend.release(core.entryKeys(flow.id, '-').lease, flow.token).catch(() => undefined);
        }
      });
    }
    next();
  }

  async function lookup(flow: Flow, spec: string, wantLease: boolean): Promise<LookupReply> {
    const keys = core.entryKeys(flow.id, secondaryKey(spec, flow.req.headers));
    let reply = await core.backend.lookup(keys, spec, flow.token, leaseMs || 1, wantLease && leaseMs > 0);
    if (reply.state === 'mismatch') {
      // The route's Vary changed or this process had not seen it yet: once more with the stored spec.
      core.rememberSpec(flow.id, reply.spec);
      const again = core.entryKeys(flow.id, secondaryKey(reply.spec, flow.req.headers));
      reply = await core.backend.lookup(again, reply.spec, flow.token, leaseMs || 1, wantLease && leaseMs > 0);
      if (reply.state === 'mismatch') reply = { ...reply, state: 'miss', lease: false };
    } else if (reply.specKnown) {
      core.rememberSpec(flow.id, reply.spec);
    }
    return reply;
  }

  /** A miss whose lease is held elsewhere: wait for that fill (pub/sub, or polling on Upstash), bounded. */
  async function awaitFill(flow: Flow, waitMs: number): Promise<LookupReply | 'gone' | 'timeout'> {
    const deadline = Date.now() + waitMs;
    let delay = 5;
    while (!core.closed) {
      const left = deadline - Date.now();
      if (left <= 0) return 'timeout';
      if (core.subscribed) {
        // Bounded by FILL_RECHECK_MS too: a filler that died or lost the store announces nothing, and its lease
        // expiring is seen only by looking again (which then takes the lease and runs this request's handler).
        const w = core.wait(flow.id, Math.min(left, FILL_RECHECK_MS));
        // Look again after registering, so a fill finished in between is not missed.
        const reply = await lookup(flow, core.specFor(flow.id), true).catch((e) => {
          w.cancel();
          throw e;
        });
        if (reply.state === 'fresh' || reply.state === 'stale' || reply.lease) {
          w.cancel();
          return reply;
        }
        if (reply.notStorable) {
          w.cancel();
          return 'gone';
        }
        const outcome = await w.done;
        if (outcome === 'gone') return outcome;
      } else {
        await sleep(Math.min(delay, left));
        delay = Math.min(delay * 2, 250);
        const reply = await lookup(flow, core.specFor(flow.id), true);
        if (reply.state === 'fresh' || reply.state === 'stale' || reply.lease) return reply;
        if (reply.notStorable) return 'gone';
      }
    }
    return 'gone';
  }

  async function flowOf(flow: Flow, head: boolean, revalidate: boolean): Promise<void> {
    const { req, res, next, id } = flow;
    const spec = core.specFor(id);
    const wantLease = !head && !revalidate;
    let reply: LookupReply;
    try {
      reply = await lookup(flow, spec, wantLease);
    } catch (error) {
      core.storeError(error, 'lookup');
      bypass(res, next, 'fwd=bypass; detail=store-unavailable');
      return;
    }
    let { state, entry } = reply;
    const usable = (s: typeof state) => s === 'fresh' || (s === 'stale' && !revalidate);
    if (!revalidate && state === 'fresh' && entry) {
      core.counters.hits++;
      hot?.set(`${id}\u0000${secondaryKey(reply.spec, req.headers)}`, id, entry, reply.now, Date.now());
      serve(req, res, entry, reply.now, 'hit');
      return;
    }
    if (head) {
      if (usable(state) && entry) {
        core.counters.hits++;
        serve(req, res, entry, reply.now, state === 'fresh' ? 'hit' : 'hit; detail=stale-while-revalidate');
        return;
      }
      core.counters.misses++;
      res.setHeader('cache-status', status(revalidate ? 'fwd=request' : 'fwd=miss'));
      next();
      return;
    }
    if (revalidate) {
      core.counters.misses++;
      run(flow, 'fwd=request', { lease: false, startedAt: reply.now, stale: entry ?? undefined, staleNow: reply.now });
      return;
    }
    if (state === 'stale' && entry) {
      if (reply.lease) {
        run(flow, 'fwd=stale', { lease: true, startedAt: reply.now, stale: entry, staleNow: reply.now, shadow: true });
      } else {
        core.counters.staleHits++;
        serve(req, res, entry, reply.now, 'hit; detail=stale-while-revalidate');
      }
      return;
    }
    // miss or expired
    let collapsed = false;
    if (!reply.lease && reply.notStorable) {
      core.counters.misses++;
      run(flow, 'fwd=miss', { lease: false, startedAt: reply.now, stale: entry ?? undefined, staleNow: reply.now });
      return;
    }
    if (!reply.lease && config.coalesce) {
      let waited: LookupReply | 'gone' | 'timeout';
      try {
        waited = await awaitFill(flow, config.coalesce.waitMs);
      } catch (error) {
        core.storeError(error, 'lookup');
        bypass(res, next, 'fwd=bypass; detail=store-unavailable');
        return;
      }
      if (waited === 'gone' || waited === 'timeout') {
        core.counters.misses++;
        run(flow, `fwd=miss; detail=${waited === 'gone' ? 'not-stored' : 'coalesce-timeout'}`, {
          lease: false,
          startedAt: reply.now,
          stale: entry ?? undefined,
          staleNow: reply.now,
        });
        return;
      }
      reply = waited;
      state = reply.state;
      entry = reply.entry;
      collapsed = true;
      if ((state === 'fresh' || state === 'stale') && entry) {
        core.counters.collapsed++;
        serve(req, res, entry, reply.now, 'fwd=miss; collapsed');
        return;
      }
    }
    core.counters.misses++;
    const params = state === 'expired' ? 'fwd=stale' : 'fwd=miss';
    run(flow, collapsed ? `${params}; collapsed` : params, {
      lease: reply.lease,
      startedAt: reply.now,
      stale: entry ?? undefined,
      staleNow: reply.now,
    });
  }

  return function responseCache(req: Request, res: Response, next: NextFunction): void {
    const method = req.method;
    const head = method === 'HEAD';
    if (!((method === 'GET' && config.get) || (head && config.head))) {
      res.setHeader('cache-status', status('fwd=method'));
      if (!SAFE_METHODS.has(method)) {
        // RFC 9111 4.4: a successful unsafe request invalidates the stored responses of its target URI.
        res.once('finish', () => {
          if (res.statusCode >= 400) return;
          let k: string | undefined;
          try {
            k = config.key ? config.key(req) : normaliseUrl(req.originalUrl);
          } catch {
            return;
          }
          if (k !== undefined) core.invalidate({ key: k }).catch((e) => core.storeError(e, 'invalidate'));
        });
      }
      next();
      return;
    }
    const h = req.headers;
    let revalidate = false;
    const reqCc = h['cache-control'];
    if (reqCc !== undefined) {
      const cc = parseCacheControl(reqCc);
      if (cc.noStore) {
        bypass(res, next, 'fwd=request; detail=no-store');
        return;
      }
      if (config.revalidateOnNoCache && (cc.noCache || cc.maxAge === 0)) revalidate = true;
    } else if (config.revalidateOnNoCache && h.pragma !== undefined && /no-cache/i.test(String(h.pragma))) {
      revalidate = true;
    }
    let user = '';
    if (config.userKey) {
      const u = config.userKey(req);
      if (u === undefined) {
        bypass(res, next, 'fwd=bypass; detail=no-user-key');
        return;
      }
      user = `\u0000u=${u}`;
    } else if (h.authorization !== undefined) {
      bypass(res, next, 'fwd=bypass; detail=authorization');
      return;
    } else if (sessionCookie && h.cookie !== undefined && sessionCookie.test(headerText(h.cookie) ?? '')) {
      bypass(res, next, 'fwd=bypass; detail=session-cookie');
      return;
    }
    const url = normaliseUrl(req.originalUrl);
    let primary: string;
    if (config.key) {
      const k = config.key(req);
      if (k === undefined) {
        bypass(res, next, 'fwd=bypass; detail=no-key');
        return;
      }
      primary = `GET ${k}${user}`;
    } else {
      primary = `GET ${url}${user}`;
    }
    const id = primaryId(primary);
    if (hot && !revalidate && core.subscribed) {
      const item = hot.get(`${id}\u0000${secondaryKey(core.specFor(id), h)}`, Date.now());
      if (item) {
        core.counters.hits++;
        core.counters.hotHits++;
        serve(req, res, item.entry, Date.now() + item.offset, 'hit; detail=memory');
        return;
      }
    }
    const slow = () => {
      const flow: Flow = { req, res, next, id, url, token: core.token() };
      flowOf(flow, head, revalidate).catch((error: unknown) => {
        // Our own bug must not cost the request: go on uncached if nothing was sent yet.
        core.storeError(error, 'middleware');
        if (!res.headersSent) next();
      });
    };
    const read = core.backend.read;
    if (revalidate || !read) {
      slow();
      return;
    }
    // The common case, a fresh hit, with a plain read of two keys (cheaper for the server than a script, and no
    // async frames here). Anything else (stale, missing, another Vary spec, an error) takes the full path, where
    // the lookup script decides on the server's clock.
    const spec = core.specFor(id);
    const sec = secondaryKey(spec, h);
    read.call(core.backend, core.readKeys(id, sec)).then(
      (found) => {
        const entry = found.entry;
        if (entry && found.spec === spec) {
          const now = core.clock.now();
          if (now < entry.freshUntil) {
            core.counters.hits++;
            hot?.set(`${id}\u0000${sec}`, id, entry, now, Date.now());
            serve(req, res, entry, now, 'hit');
            return;
          }
        }
        slow();
      },
      (error: unknown) => {
        // Not slow(): its lookup would wait for the same dead store a second time.
        core.storeError(error, 'lookup');
        bypass(res, next, 'fwd=bypass; detail=store-unavailable');
      },
    );
  };
}
