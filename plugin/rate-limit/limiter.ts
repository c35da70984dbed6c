// The programmatic limiter: one decision per call for every policy (one script on Redis, one function on the
// embedded store), a cache of blocked keys that answers attackers without a store call, and the failure mode
// that applies when the store is away (open, closed, or a local limiter whose counts are reconciled afterwards).

import { createHash } from 'node:crypto';
import { isCrossSlot, normaliseError } from '../connection/errors.js';
import { noteScript, withKeys } from '../connection/script.js';
import { MemoryEngine } from '../connection/memory.js';
import { TurnQueue } from '../connection/turn-queue.js';
import { type RedisArg, ReplyError, type Script } from '../connection/types.js';
import type { FeatureContext } from '../core/context.js';
import { type KitLogger, throttledWarning } from '../core/logger.js';
import { ClosedError, StoreUnavailableError } from '../core/errors.js';
import {
  type CompiledPolicy,
  CONSUME,
  decide,
  FORCE,
  type Mode,
  PEEK,
  type StateEngine,
  stateLength,
} from './algorithms.js';
import type { LimiterConfig } from './options.js';
import { limit as limitScript } from './scripts.generated.js';

export interface PolicyResult {
  name: string;
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Milliseconds until the policy's window rolls over (windows) or its quota is full again (bucket, GCRA). */
  resetMs: number;
  /** Milliseconds to wait before this request could pass (0 when allowed). */
  retryAfterMs: number;
}

export interface RateLimitResult {
  allowed: boolean;
  /** Remaining of the deciding policy. */
  remaining: number;
  /** Limit of the deciding policy. */
  limit: number;
  resetMs: number;
  retryAfterMs: number;
  /** Name of the deciding policy: the one that denied, or the one with the least remaining. */
  policy: string;
  /** Every policy's own figures, in the order they were declared. */
  policies: PolicyResult[];
  /**
   * Why the answer did not come from a normal store decision: `blocked` (serving a block duration),
   * `cache` (answered from the blocked-keys cache), `store-unavailable` (open/closed failure mode),
   * `local` (decided by the local fallback).
   */
  reason?: 'blocked' | 'cache' | 'store-unavailable' | 'local';
  /** HTTP status to refuse with when not allowed: 429, or closedStatus when the store is away. */
  status?: number;
}

export interface LimitCallOptions {
  /** Cost of this call. @default 1 */
  cost?: number;
}

export interface RateLimiterStats {
  /** Decisions sent to the store. */
  storeCalls: number;
  /** Denials answered from the blocked-keys cache without a store call. */
  cacheHits: number;
  /** Decisions taken while the store was away (any failure mode). */
  storeFailures: number;
  /** Keys whose local counts were added back to the store after an outage. */
  reconciled: number;
  /** Keys whose local counts were dropped because the pending list was full. */
  reconcileDropped: number;
  /** Calls admitted and refused (consuming calls only; peek is not a decision). Read by kit.metrics. */
  allowed: number;
  blocked: number;
}

export interface RateLimiter {
  readonly name: string;
  readonly policies: readonly CompiledPolicy[];
  readonly stats: RateLimiterStats;
  /** What the limiter does while the store is away: 'open', 'closed' or 'local'. */
  readonly onStoreError: 'open' | 'closed' | 'local';
  /** Counts one call (of `cost`) for `key` and says whether it is allowed. */
  limit(key: string, options?: LimitCallOptions): Promise<RateLimitResult>;
  /** Reads the state of `key` without consuming anything: would a call of cost 1 pass? */
  peek(key: string): Promise<RateLimitResult>;
  /** Forgets `key`'s counters and block. */
  reset(key: string): Promise<void>;
  /** Settles once local counts taken during an outage have been sent to the store (testing, shutdown). */
  flush(): Promise<void>;
}

// Longer client keys are hashed before they are used as map keys or key ids, so memory per key is bounded.
const MAX_KEY_LENGTH = 256;

/**
 * Most decisions in one script call. A turn's decisions are sent as soon as this many are queued, without waiting
 * for the end of the turn: the server works on one group while the process still reads the next requests, and one
 * call keeps the server busy for a bounded time (a few µs a decision).
 */
export const BATCH_DECISIONS = 16;

interface QueuedDecision {
  key: string;
  cost: number;
  mode: Mode;
  resolve(reply: ArrayLike<unknown>): void;
  reject(error: unknown): void;
}

/**
 * ERR_KIT_RATE_LIMIT_STORE, one per kit (every limiter of a kit shares it): logged when an outage starts and at most
 * every 10 s while it lasts, so a store that fails now and then does not log a line per decision.
 */
const storeWarnings = new WeakMap<KitLogger, ReturnType<typeof throttledWarning>>();

function storeWarning(logger: KitLogger): ReturnType<typeof throttledWarning> {
  let warn = storeWarnings.get(logger);
  if (warn === undefined) {
    warn = throttledWarning(logger, 'ERR_KIT_RATE_LIMIT_STORE');
    storeWarnings.set(logger, warn);
  }
  return warn;
}

const names = new WeakMap<FeatureContext, Map<string, number>>();

function deriveName(context: FeatureContext, config: LimiterConfig): string {
  if (config.name) return config.name;
  const signature = config.policies.map((p) => `${p.name}/${p.algorithm}/${p.limit}/${p.windowMs}/${p.burst}`).join();
  const base = `rl${createHash('sha1').update(signature).digest('hex').slice(0, 8)}`;
  // Two limiters with the same policies on two routes must not share counters: number them in creation order,
  // which is the same in every instance of the app.
  let seen = names.get(context);
  if (!seen) {
    seen = new Map();
    names.set(context, seen);
  }
  const n = seen.get(base) ?? 0;
  seen.set(base, n + 1);
  return n === 0 ? base : `${base}-${n}`;
}

const CONSTANTS_LINE = 'local C, F, V, out = nil, nil, nil, nil -- constants';

/**
 * The limiter's own copy of lua/limit.lua with its block duration, policies and state format written into the
 * source: each call then sends two arguments (cost, mode) instead of 3 + 4 per policy, and the server parses none
 * of them. One script per limiter in the server's script cache, loaded by the first call (NOSCRIPT, then EVAL).
 */
export function scriptFor(blockMs: number, policies: readonly CompiledPolicy[]): Script {
  const constants = [blockMs, ...policies.flatMap((p) => [p.algorithm, p.limit, p.windowMs, p.burst])];
  if (!constants.every(Number.isFinite)) throw new TypeError('rate limiter: policy figures must be finite numbers');
  const format = 'd'.repeat(stateLength(policies));
  // Seven scratch slots per policy (see the script), and the reply: two, then four per policy.
  const scratch = policies.map(() => "false, 0, 0, 0, 0, 0, ''").join(', ');
  const reply = new Array(2 + 4 * policies.length).fill(0).join(', ');
  const source = limitScript.source.replace(
    CONSTANTS_LINE,
    `local C, F, V, out = { ${constants.map(String).join(', ')} }, '${format}', { ${scratch} }, { ${reply} }`,
  );
  if (source === limitScript.source) throw new Error('lua/limit.lua: the constants line is missing');
  const sha = createHash('sha1').update(source).digest('hex');
  return { name: limitScript.name, source, sha, keys: 1 };
}

/**
 * The last part of a limiter's state key: its name, then a digest of its policies' names and algorithms, which fix
 * the state's layout. A limiter whose policies were renamed, reordered or given another algorithm starts from fresh
 * state instead of reading numbers laid out for other policies; a changed limit, window or burst keeps the counts.
 */
export function statePart(name: string, policies: readonly CompiledPolicy[]): string {
  const layout = policies.map((p) => `${p.name}/${p.algorithm}`).join();
  return `${name}#${createHash('sha1').update(`v2|${layout}`).digest('hex').slice(0, 8)}`;
}

interface CacheEntry {
  /** When the client may come back (the refusal's retry time). */
  until: number;
  /**
   * When the store is asked again all the same: a long refusal (a monthly quota's) is not answered from this
   * process's memory for weeks, so a `reset(key)` made in another instance takes effect here within a minute.
   */
  recheck: number;
  cost: number;
  result: RateLimitResult;
}

/** Longest a refusal is answered from the blocked-keys cache before the store is asked again. */
const BLOCK_CACHE_RECHECK_MS = 60_000;

/** Where limitInto() hands its decision: `done` with the result (failure modes applied), `fail` with an error. */
export interface DecisionSink {
  done(result: RateLimitResult): void;
  fail(error: unknown): void;
}

/**
 * What the middleware sees: on the embedded store, a synchronous decision of cost `cost` (consume); on Redis, a
 * decision handed to a sink, settled in the reply's own callback without a promise per decision (limit() makes
 * three: the queued call's, its settling, the caller's).
 */
export interface InternalRateLimiter extends RateLimiter {
  readonly limitSync: ((key: string, cost: number) => RateLimitResult) | undefined;
  readonly limitInto: ((key: string, cost: number, sink: DecisionSink) => void) | undefined;
}

export function createRateLimiter(context: FeatureContext, config: LimiterConfig): InternalRateLimiter {
  const { store, logger } = context;
  const { policies, blockMs, onStoreError } = config;
  const name = deriveName(context, config);
  const n = policies.length;
  const keyOf = store.keys.forFeature('rl');
  const part = statePart(name, policies);
  const script = scriptFor(blockMs, policies);
  // Known to the script reload from the start: after a restart that emptied the server's script cache, the first
  // NOSCRIPT of any script reloads this one too, even if this limiter has not decided anything yet.
  if (store.mode !== 'memory') noteScript(script);
  const stats: RateLimiterStats = {
    storeCalls: 0,
    cacheHits: 0,
    storeFailures: 0,
    reconciled: 0,
    reconcileDropped: 0,
    allowed: 0,
    blocked: 0,
  };
  const blocked = new Map<string, CacheEntry>();
  const pending = new Map<string, number>();
  let local: MemoryEngine | undefined;
  let reconciling: Promise<void> | undefined;
  let closed = false;

  // Built keys of recently seen clients: the hot path skips escaping and concatenation for a returning client.
  // Bounded: cleared when full (cheaper than LRU bookkeeping, and refilled by the next requests). Each entry is the
  // script's KEYS: the one key holding the client's whole state for this limiter.
  const keyCache = new Map<string, [string]>();
  const keysFor = (id: string): [string] => {
    let keys = keyCache.get(id);
    if (keys === undefined) {
      keys = [keyOf(id, part)];
      if (keyCache.size >= 4096) keyCache.clear();
      keyCache.set(id, keys);
    }
    return keys;
  };
  const decideIn = (engine: StateEngine, id: string, cost: number, mode: Mode, out?: number[]): number[] =>
    decide(engine, keysFor(id)[0], policies, cost, mode, blockMs, out);
  // The synchronous path reads a decision's numbers before the next decision starts: one array serves them all.
  const syncOut: number[] = [];
  // The arguments of the common call (cost 1, consume) are built once per limiter, not once per request.
  const argsOne = [1, CONSUME];
  const memory = store.mode === 'memory' ? store : undefined;
  const redis = store.mode === 'memory' ? undefined : store;

  // Decisions on Redis go in batches: those started in one turn of the event loop (the requests whose sockets
  // were readable together) share one script call, which runs them one after the other at one server time. Client
  // work per command (command object, promise, deadline, reply parsing) and the server's per-call overhead were
  // most of a decision's cost; a batch pays them once. A decision alone in its turn is sent alone at the end of
  // that turn. Off on a Cluster, where the keys of different clients live on different nodes.
  let batching = redis !== undefined && redis.mode !== 'cluster';
  const per = 2 + 4 * n;
  const sendBatch = (batch: QueuedDecision[]): void => {
    const k = batch.length;
    const keys: string[] = new Array(k);
    const args: RedisArg[] = new Array(2 * k);
    for (let i = 0; i < k; i++) {
      const q = batch[i] as QueuedDecision;
      keys[i] = q.key;
      args[2 * i] = q.cost;
      args[2 * i + 1] = q.mode;
    }
    (redis as NonNullable<typeof redis>).script(withKeys(script, k), keys, args).then(
      (reply) => {
        if (!Array.isArray(reply) || reply.length !== k * per) {
          const error = normaliseError(
            new ReplyError(`ERR ${script.name} answered ${JSON.stringify(reply)?.slice(0, 80)} to ${k} decisions`),
            `script ${script.name}`,
          );
          for (const q of batch) q.reject(error);
          return;
        }
        for (let i = 0; i < k; i++) {
          try {
            (batch[i] as QueuedDecision).resolve(reply.slice(i * per, (i + 1) * per));
          } catch (error) {
            // A sink's code threw (limitInto): the other decisions of the batch are still answered.
            logger.error({ err: error, limiter: name }, 'rate limiter: a decision callback threw');
          }
        }
      },
      (error: unknown) => {
        if (k > 1 && isCrossSlot(error)) {
          // A server that looks like one node but shards keys behind it (a proxy): decide one by one from now on.
          batching = false;
          logger.warnOnce(
            'ERR_KIT_RATE_LIMIT_CROSSSLOT',
            `rate limiter '${name}': the server refused keys of several slots in one call; sending decisions one by one`,
          );
          for (const q of batch) sendBatch([q]);
          return;
        }
        for (const q of batch) q.reject(error);
      },
    );
  };

  // The batch is this turn's write: out now, not one more turn later with the store's own write batching.
  const queue = new TurnQueue<QueuedDecision>(BATCH_DECISIONS, sendBatch, () => redis?.flushWrites());

  /** Hands a decision to Redis: in this turn's batch, or (batching off) in a script call of its own. */
  const toStore = (id: string, decision: QueuedDecision): void => {
    if (batching) {
      queue.push(decision);
      return;
    }
    const { cost, mode } = decision;
    const args = cost === 1 && mode === CONSUME ? argsOne : [cost, mode];
    // Redis replies arrive as numbers already (Lua integers), so they are read in place rather than copied.
    (redis as NonNullable<typeof redis>).script(script, keysFor(id), args).then(
      (raw) => decision.resolve(raw as ArrayLike<unknown>),
      (error: unknown) => decision.reject(error),
    );
  };

  /** The store's raw answer to one decision, nothing settled: the reconciliation's force-mode calls. */
  const run = (id: string, cost: number, mode: Mode): Promise<ArrayLike<unknown>> => {
    if (memory) {
      try {
        return Promise.resolve(decideIn(memory.engine, id, cost, mode));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return new Promise((resolve, reject) => toStore(id, { key: keysFor(id)[0], cost, mode, resolve, reject }));
  };

  const toResult = (raw: ArrayLike<unknown>): RateLimitResult => {
    const out: PolicyResult[] = new Array(n);
    const left = Number(raw[0]);
    if (left > 0) {
      // Serving a block duration: every policy reports it.
      const retryAfterMs = left;
      const culprit = policies[Number(raw[1] ?? 0)] ?? (policies[0] as CompiledPolicy);
      for (let i = 0; i < n; i++) {
        const p = policies[i] as CompiledPolicy;
        out[i] = { name: p.name, allowed: false, limit: p.limit, remaining: 0, resetMs: retryAfterMs, retryAfterMs };
      }
      return {
        allowed: false,
        remaining: 0,
        limit: culprit.limit,
        resetMs: retryAfterMs,
        retryAfterMs,
        policy: culprit.name,
        policies: out,
        reason: 'blocked',
        status: 429,
      };
    }
    let allowed = true;
    let decider = 0;
    for (let i = 0; i < n; i++) {
      const o = 2 + i * 4;
      const p = policies[i] as CompiledPolicy;
      const r: PolicyResult = {
        name: p.name,
        allowed: Number(raw[o]) === 1,
        limit: p.limit,
        remaining: Number(raw[o + 1]),
        resetMs: Number(raw[o + 2]),
        retryAfterMs: Number(raw[o + 3]),
      };
      out[i] = r;
      const d = out[decider] as PolicyResult;
      if (allowed && !r.allowed) {
        allowed = false;
        decider = i;
      } else if (!allowed ? !r.allowed && r.retryAfterMs > d.retryAfterMs : r.remaining < d.remaining) {
        decider = i;
      }
    }
    const d = out[decider] as PolicyResult;
    const result: RateLimitResult = {
      allowed,
      remaining: d.remaining,
      limit: d.limit,
      resetMs: d.resetMs,
      retryAfterMs: d.retryAfterMs,
      policy: d.name,
      policies: out,
    };
    if (!allowed) result.status = 429;
    return result;
  };

  const remember = (key: string, cost: number, result: RateLimitResult): void => {
    if (config.blockCacheMax === 0 || result.retryAfterMs <= 0) return;
    if (blocked.size >= config.blockCacheMax) {
      // Oldest entry first (Map keeps insertion order): a bounded cache, never a growing one.
      const oldest = blocked.keys().next();
      if (!oldest.done) blocked.delete(oldest.value);
    }
    const now = Date.now();
    const until = now + result.retryAfterMs;
    blocked.set(key, { until, recheck: Math.min(until, now + BLOCK_CACHE_RECHECK_MS), cost, result });
  };

  const localEngine = (): MemoryEngine => {
    if (!local) {
      local = new MemoryEngine({ maxKeys: config.localMaxKeys, sweepIntervalMs: 5000 });
      const engine = local;
      context.onClose(() => engine.close());
    }
    return local;
  };

  const reconcile = (): Promise<void> => {
    reconciling ??= (async () => {
      try {
        for (const [id, cost] of pending) {
          if (closed) return;
          await run(id, cost, FORCE);
          pending.delete(id);
          stats.reconciled++;
        }
        local?.clear();
        logger.info({ limiter: name }, 'rate limiter: store back, local counts added to it');
      } catch {
        // Still away: keep what is left for the next successful call.
      } finally {
        reconciling = undefined;
      }
    })();
    return reconciling;
  };

  const warnStore = storeWarning(logger);
  const onFailure = (id: string, cost: number, mode: Mode, error: unknown): RateLimitResult => {
    stats.storeFailures++;
    warnStore(`rate limiter '${name}': store unavailable, failing ${onStoreError}`, { err: error });
    if (onStoreError === 'local') {
      const result = toResult(decideIn(localEngine(), id, cost, mode));
      if (mode === CONSUME && result.allowed) {
        if (pending.has(id) || pending.size < config.localMaxKeys) pending.set(id, (pending.get(id) ?? 0) + cost);
        else stats.reconcileDropped++;
      }
      result.reason = 'local';
      if (mode === CONSUME) stats[result.allowed ? 'allowed' : 'blocked']++;
      return result;
    }
    const p = policies[0] as CompiledPolicy;
    const open = onStoreError === 'open';
    if (mode === CONSUME) stats[open ? 'allowed' : 'blocked']++;
    return {
      allowed: open,
      remaining: open ? p.limit : 0,
      limit: p.limit,
      resetMs: 0,
      retryAfterMs: open ? 0 : 1000,
      policy: p.name,
      policies: policies.map((q) => ({
        name: q.name,
        allowed: open,
        limit: q.limit,
        remaining: open ? q.limit : 0,
        resetMs: 0,
        retryAfterMs: open ? 0 : 1000,
      })),
      reason: 'store-unavailable',
      ...(open ? {} : { status: 503 }),
    };
  };

  const idOf = (key: string): string =>
    key.length > MAX_KEY_LENGTH ? `~${createHash('sha256').update(key).digest('base64url')}` : key;

  /** A denial still running, answered from the blocked-keys cache; undefined when the store must decide. */
  const fromCache = (id: string, cost: number): RateLimitResult | undefined => {
    const hit = blocked.get(id);
    if (hit === undefined) return undefined;
    const now = Date.now();
    if (now >= hit.recheck) {
      blocked.delete(id);
      return undefined;
    }
    const left = hit.until - now;
    if (cost >= hit.cost) {
      stats.cacheHits++;
      stats.blocked++;
      return { ...hit.result, retryAfterMs: left, resetMs: Math.max(left, 0), reason: 'cache' };
    }
    return undefined;
  };

  const settle = (id: string, cost: number, mode: Mode, raw: ArrayLike<unknown>): RateLimitResult => {
    if (pending.size > 0 && !reconciling) void reconcile();
    const result = toResult(raw);
    if (mode === CONSUME) {
      if (result.allowed) stats.allowed++;
      else {
        stats.blocked++;
        remember(id, cost, result);
      }
    }
    return result;
  };

  /** settle() to a sink: a reply that cannot be read fails the decision; what the sink does with it is its own. */
  const settleInto = (sink: DecisionSink, id: string, cost: number, mode: Mode, raw: ArrayLike<unknown>): void => {
    let result: RateLimitResult;
    try {
      result = settle(id, cost, mode, raw);
    } catch (error) {
      sink.fail(error);
      return;
    }
    sink.done(result);
  };

  /** A decision on its way to the store whose outcome goes to a sink: no promise, no closure per decision. */
  class SinkDecision implements QueuedDecision {
    constructor(
      readonly key: string,
      readonly cost: number,
      readonly mode: Mode,
      private readonly id: string,
      private readonly sink: DecisionSink,
    ) {}

    resolve(reply: ArrayLike<unknown>): void {
      settleInto(this.sink, this.id, this.cost, this.mode, reply);
    }

    reject(error: unknown): void {
      if (!(error instanceof StoreUnavailableError)) {
        this.sink.fail(error);
        return;
      }
      // The failure mode's answer; should it throw, the decision fails rather than the rest of its batch.
      let result: RateLimitResult;
      try {
        result = onFailure(this.id, this.cost, this.mode, error);
      } catch (thrown) {
        this.sink.fail(thrown);
        return;
      }
      this.sink.done(result);
    }
  }

  /**
   * One decision, its outcome handed to `sink`: the closed check, the blocked-keys cache, the store (a batch on
   * Redis), the failure modes. limit() and peek() wrap it in a promise; the middleware on Redis passes its own sink
   * (limitInto), settled in the reply's callback without a promise per request.
   */
  const decideInto = (key: string, cost: number, mode: Mode, sink: DecisionSink): void => {
    if (closed) {
      sink.fail(new ClosedError(`rate limiter '${name}'`));
      return;
    }
    const id = idOf(key);
    if (mode === CONSUME && blocked.size > 0) {
      const cached = fromCache(id, cost);
      if (cached !== undefined) {
        sink.done(cached);
        return;
      }
    }
    stats.storeCalls++;
    if (memory) {
      // Settled at once, so the shared output array is read before any other decision reuses it.
      let raw: ArrayLike<unknown>;
      try {
        raw = decideIn(memory.engine, id, cost, mode, syncOut);
      } catch (error) {
        sink.fail(error);
        return;
      }
      settleInto(sink, id, cost, mode, raw);
      return;
    }
    toStore(id, new SinkDecision(keysFor(id)[0], cost, mode, id, sink));
  };

  const decideFor = (key: string, cost: number, mode: Mode): Promise<RateLimitResult> =>
    new Promise((resolve, reject) => decideInto(key, cost, mode, { done: resolve, fail: reject }));

  /** limit(key, { cost }) for the middleware on Redis: the outcome to `sink` (see decideInto). */
  const limitInto = redis
    ? (key: string, cost: number, sink: DecisionSink): void => decideInto(key, cost, CONSUME, sink)
    : undefined;

  /**
   * The embedded store decides synchronously: the middleware takes this path and answers without a promise.
   * The same steps as decideInto (closed check, cache, decision, cache fill), kept apart: it returns the result
   * instead of handing it to a sink, with no object made per request.
   */
  const limitSync = memory
    ? (key: string, cost: number): RateLimitResult => {
        if (closed) throw new ClosedError(`rate limiter '${name}'`);
        const id = idOf(key);
        if (blocked.size > 0) {
          const cached = fromCache(id, cost);
          if (cached !== undefined) return cached;
        }
        stats.storeCalls++;
        return settle(id, cost, CONSUME, decideIn(memory.engine, id, cost, CONSUME, syncOut));
      }
    : undefined;

  context.onClose(async () => {
    // Decisions started in the turn that closes the kit go out before the store closes.
    queue.send();
    if (pending.size > 0) await reconcile();
    closed = true;
    blocked.clear();
  });

  const limiter: InternalRateLimiter = {
    name,
    policies,
    stats,
    onStoreError,
    limitSync,
    limitInto,
    limit(key, options) {
      const cost = options?.cost ?? 1;
      if (typeof cost !== 'number' || !Number.isFinite(cost) || cost < 0) {
        return Promise.reject(new TypeError(`limit(): cost must be a finite number >= 0, got ${String(cost)}`));
      }
      return decideFor(String(key), cost, CONSUME);
    },
    peek(key) {
      return decideFor(String(key), 1, PEEK);
    },
    async reset(key) {
      // Decisions started before this reset are applied first (call order).
      queue.send();
      const id = idOf(String(key));
      blocked.delete(id);
      pending.delete(id);
      const [stateKey] = keysFor(id);
      local?.delete(stateKey);
      if (store.mode === 'memory') store.engine.delete(stateKey);
      else await store.command('DEL', stateKey);
    },
    async flush() {
      if (pending.size > 0) await reconcile();
    },
  };
  return limiter;
}
