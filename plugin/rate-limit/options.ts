// The rate limiter's options, their defaults, and the one place they are parsed (at the factory, never per request).

import type { Request, Response, NextFunction } from 'express';
import { type Duration, parseDuration, parseLongDuration } from '../core/duration.js';
import { ConfigError } from '../core/errors.js';
import { assertKnownKeys, assertPlainObject, positiveInt } from '../core/options.js';
import { type CompiledPolicy, FIXED_WINDOW, GCRA, SLIDING_WINDOW, TOKEN_BUCKET } from './algorithms.js';

export type RateLimitAlgorithm = 'fixed-window' | 'sliding-window' | 'token-bucket' | 'gcra';

export interface RateLimitPolicy {
  /**
   * Name of the policy, shown in the `RateLimit` headers and in results; also part of its counter's key.
   * @default 'default' for a single policy, 'p1', 'p2', ... for several
   */
  name?: string;
  /**
   * How requests are counted.
   * - `fixed-window`: a counter per calendar window (cheap; allows up to 2 x limit across a window boundary)
   * - `sliding-window`: the current and previous window's counts, weighted (smooth, two numbers per client)
   * - `token-bucket`: `burst` tokens, refilled at `limit` per `window`
   * - `gcra`: the generic cell rate algorithm: evenly spaced requests with a burst allowance, one number per client
   * @default 'sliding-window'
   */
  algorithm?: RateLimitAlgorithm;
  /** Requests (cost units) allowed per `window`. */
  limit: number;
  /** Length of the window: milliseconds or e.g. '1 s', '15 m', '30 d'; at most 400 days. @example '1 h' */
  window: Duration;
  /** Largest burst (token bucket capacity, GCRA burst). Only for `token-bucket` and `gcra`. @default limit */
  burst?: number;
}

export type StoreFailureMode = 'open' | 'closed' | 'local';

export interface RateLimiterOptions extends Partial<RateLimitPolicy> {
  /**
   * Name of the limiter, part of its keys: two limiters with different names never share counters. When left
   * out, a name is derived from the policies (and a sequence number if two limiters have the same policies).
   * @default derived
   */
  name?: string;
  /** Several policies at once, all decided by one store call; the most restrictive one decides. */
  policies?: RateLimitPolicy[];
  /** Once a policy denies, keep denying the client for this long (a penalty). 0 turns it off. @default 0 */
  blockDuration?: Duration;
  /**
   * What happens when the store cannot be reached (bounded by the kit's command timeout):
   * - `open`: allow the request and flag the result (`reason: 'store-unavailable'`)
   * - `closed`: refuse it (status `closedStatus`)
   * - `local`: an in-process limiter takes over; its counts are added to the store's when it returns
   * @default 'local'
   */
  onStoreError?: StoreFailureMode;
  /**
   * Denied keys are remembered in process until their retry time, so an attacker's requests are answered without
   * a store call. `false` turns it off.
   * @default { maxKeys: 10_000 }
   */
  blockCache?: { maxKeys?: number } | false;
  /** Most keys the local fallback (onStoreError: 'local') tracks at once. @default 10_000 */
  localMaxKeys?: number;
}

/** One tier's policies, written as at the top level of the options: `{ limit, window }` or `{ policies: [...] }`. */
export type RateLimitTier = Pick<RateLimiterOptions, 'limit' | 'window' | 'algorithm' | 'burst' | 'policies'>;

export type KeyBy = 'ip' | 'user' | 'apiKey' | 'workspace' | ((req: Request) => string | undefined | null);

/** What the middleware adds to a limiter's options, with or without tiers. */
export interface MiddlewareOnlyOptions {
  /**
   * Who is counted: the client IP (honours Express `trust proxy`; IPv6 grouped by `ipv6Subnet`), the user
   * (`req.user.id`), the API key (`X-API-Key` header), the workspace (`req.workspace.id` or the `X-Workspace-Id`
   * header), or a function of the request. The named kinds fall back to the IP when the request has none.
   * @default 'ip'
   */
  keyBy?: KeyBy;
  /** IPv6 prefix length that counts as one client, so one client cannot rotate through its /64. @default 64 */
  ipv6Subnet?: number;
  /** Cost of a request: a number or a function of the request. @default 1 */
  cost?: number | ((req: Request) => number);
  /** Keys (or IPs, when keyed by IP) that are never limited, or a predicate. @default [] */
  allowList?: string[] | ((req: Request, key: string) => boolean);
  /** Keys (or IPs) that are always refused with 403. @default [] */
  denyList?: string[] | ((req: Request, key: string) => boolean);
  /** Requests for which the limiter does nothing at all. @default none */
  skip?: (req: Request) => boolean;
  /** Send the IETF `RateLimit-Policy` and `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers). @default true */
  headers?: boolean;
  /** Also send `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (of the tightest policy). @default false */
  legacyHeaders?: boolean;
  /** Status sent when onStoreError is 'closed' and the store is away. @default 503 */
  closedStatus?: 429 | 503;
  /** `detail` of the 429 problem body. @default 'Too many requests; retry after the time in Retry-After.' */
  message?: string;
  /** Replaces the 429 response. The result is also on `req.rateLimit`. @default a problem+json 429 */
  handler?: (req: Request, res: Response, next: NextFunction, result: import('./limiter.js').RateLimitResult) => void;
}

/** Policies at the top level: one limiter for every request. */
export interface RateLimitSingleOptions extends RateLimiterOptions, MiddlewareOnlyOptions {
  tiers?: undefined;
  tier?: undefined;
  defaultTier?: undefined;
}

/** The policy options, which with `tiers` are given per tier and not at the top level. */
type PolicyOptionKeys = 'limit' | 'window' | 'algorithm' | 'burst' | 'policies';

/**
 * Limits per tier (plan): the policies go in each tier, `name` and `tier` are required. The types refuse policies
 * at the top level, as the middleware does at construction.
 */
export interface RateLimitTieredOptions
  extends Omit<RateLimiterOptions, PolicyOptionKeys | 'name'>,
    MiddlewareOnlyOptions {
  /** Required with tiers: the tiers' limiters are named `<name>/<tier>` (e.g. 'api/free'). */
  name: string;
  limit?: undefined;
  window?: undefined;
  algorithm?: undefined;
  burst?: undefined;
  policies?: undefined;
  /**
   * Limits per plan, or per any class of client: each tier has policies of its own, and `tier(req)` names the one a
   * request counts against. The top level then gives no policies (no `limit`, `window`, `algorithm`, `burst` or
   * `policies`); the other options apply to every tier. Each tier is a limiter of its own, with its own counters
   * (named `<name>/<tier>`; `name` is required), so a client that moves to another tier starts afresh there.
   * At most 32 tiers, named with 1-16 characters from A-Z a-z 0-9 _ -, not digits only.
   * @example { name: 'api', tiers: { free: { limit: 100, window: '1 h' }, pro: { limit: 5000, window: '1 h' } },
   *            tier: (req) => req.user?.plan }
   */
  tiers: Record<string, RateLimitTier>;
  /**
   * The tier of a request, answered synchronously; required with `tiers`. Undefined or null: `defaultTier`. Anything
   * that is not the name of a tier also counts under `defaultTier`, and is logged once (code ERR_KIT_RATE_LIMIT_TIER).
   */
  tier: (req: Request) => string | undefined | null;
  /** The tier of the requests `tier()` does not place. @default the first tier listed */
  defaultTier?: string;
}

/** kit.rateLimit()'s options: policies at the top level, or `tiers` with a policy set each. */
export type RateLimitMiddlewareOptions = RateLimitSingleOptions | RateLimitTieredOptions;

export interface LimiterConfig {
  name: string | undefined;
  policies: CompiledPolicy[];
  blockMs: number;
  onStoreError: StoreFailureMode;
  blockCacheMax: number;
  localMaxKeys: number;
}

const ALGORITHMS: Record<RateLimitAlgorithm, CompiledPolicy['algorithm']> = {
  'fixed-window': FIXED_WINDOW,
  'sliding-window': SLIDING_WINDOW,
  'token-bucket': TOKEN_BUCKET,
  gcra: GCRA,
};
const NAME = /^[A-Za-z0-9_.-]{1,32}$/;
const MAX_LIMIT = 1_000_000_000;
const MAX_WINDOW_MS = 400 * 86_400_000;
const POLICY_KEYS = ['name', 'algorithm', 'limit', 'window', 'burst'] as const;
export const LIMITER_KEYS = [
  ...POLICY_KEYS,
  'policies',
  'blockDuration',
  'onStoreError',
  'blockCache',
  'localMaxKeys',
] as const;
export const MIDDLEWARE_KEYS = [
  ...LIMITER_KEYS,
  'keyBy',
  'ipv6Subnet',
  'cost',
  'allowList',
  'denyList',
  'skip',
  'headers',
  'legacyHeaders',
  'closedStatus',
  'message',
  'handler',
  'tiers',
  'tier',
  'defaultTier',
] as const;

function checkName(value: unknown, what: string): string {
  if (typeof value !== 'string' || !NAME.test(value)) {
    throw new ConfigError(`${what}: ${JSON.stringify(value)} must be 1-32 characters from A-Z a-z 0-9 _ . -`);
  }
  return value;
}

function compilePolicy(p: RateLimitPolicy, where: string, defaultName: string): CompiledPolicy {
  assertPlainObject(p, where);
  assertKnownKeys(p, POLICY_KEYS, where);
  const algorithmName = p.algorithm ?? 'sliding-window';
  const algorithm = ALGORITHMS[algorithmName];
  if (algorithm === undefined) {
    throw new ConfigError(`${where}.algorithm: expected one of ${Object.keys(ALGORITHMS).join(', ')}`);
  }
  if (p.limit === undefined) throw new ConfigError(`${where}.limit is required, e.g. { limit: 100, window: '1 m' }`);
  if (p.window === undefined) throw new ConfigError(`${where}.window is required, e.g. { limit: 100, window: '1 m' }`);
  const limit = positiveInt(p.limit, `${where}.limit`, MAX_LIMIT);
  // A window is never a timer's delay: a month or a year is fine ('30 d', '365 d').
  const windowMs = parseLongDuration(p.window, `${where}.window`, MAX_WINDOW_MS);
  if (p.burst !== undefined && algorithm !== TOKEN_BUCKET && algorithm !== GCRA) {
    throw new ConfigError(`${where}.burst only applies to 'token-bucket' and 'gcra' (got ${algorithmName})`);
  }
  const burst = p.burst === undefined ? limit : positiveInt(p.burst, `${where}.burst`, MAX_LIMIT);
  return { name: checkName(p.name ?? defaultName, `${where}.name`), algorithm, limit, windowMs, burst };
}

export function parseLimiterOptions(options: RateLimiterOptions, where: string): LimiterConfig {
  const policies = compilePolicies(options, where);
  return { ...limiterSettings(options, where), policies };
}

/** A limiter's policies, or one tier's: `policies: [...]`, or a single one written inline. */
function compilePolicies(options: RateLimitTier, where: string): CompiledPolicy[] {
  const shorthand = options.limit !== undefined || options.window !== undefined;
  let policies: CompiledPolicy[];
  if (options.policies !== undefined) {
    if (shorthand || options.algorithm !== undefined || options.burst !== undefined) {
      throw new ConfigError(`${where}: give either policies: [...] or limit/window/algorithm/burst, not both`);
    }
    if (!Array.isArray(options.policies) || options.policies.length === 0 || options.policies.length > 16) {
      throw new ConfigError(`${where}.policies: expected an array of 1 to 16 policies`);
    }
    policies = options.policies.map((p, i) =>
      compilePolicy(p, `${where}.policies[${i}]`, options.policies?.length === 1 ? 'default' : `p${i + 1}`),
    );
  } else {
    const { limit, window, algorithm, burst } = options;
    policies = [compilePolicy({ limit, window, algorithm, burst } as RateLimitPolicy, where, 'default')];
  }
  const seen = new Set<string>();
  for (const p of policies) {
    if (seen.has(p.name)) throw new ConfigError(`${where}: two policies are named '${p.name}'; names must differ`);
    seen.add(p.name);
  }
  return policies;
}

/** Everything of a limiter's configuration but its policies: the options a middleware's tiers share. */
function limiterSettings(options: RateLimiterOptions, where: string): Omit<LimiterConfig, 'policies'> {
  const onStoreError = options.onStoreError ?? 'local';
  if (!['open', 'closed', 'local'].includes(onStoreError)) {
    throw new ConfigError(`${where}.onStoreError: expected 'open', 'closed' or 'local', got ${String(onStoreError)}`);
  }
  const cache = options.blockCache ?? {};
  if (cache !== false) {
    assertPlainObject(cache, `${where}.blockCache`);
    assertKnownKeys(cache, ['maxKeys'], `${where}.blockCache`);
  }
  return {
    name: options.name === undefined ? undefined : checkName(options.name, `${where}.name`),
    blockMs:
      options.blockDuration === undefined
        ? 0
        : parseDuration(options.blockDuration, `${where}.blockDuration`, { allowZero: true }),
    onStoreError,
    blockCacheMax: cache === false ? 0 : positiveInt(cache.maxKeys ?? 10_000, `${where}.blockCache.maxKeys`),
    localMaxKeys: positiveInt(options.localMaxKeys ?? 10_000, `${where}.localMaxKeys`),
  };
}

const TIER_NAME = /^[A-Za-z0-9_-]{1,16}$/;
const TIER_KEYS = ['limit', 'window', 'algorithm', 'burst', 'policies'] as const;
/** Limiter options that apply to every tier, given at the top level. */
const SHARED_KEYS = ['name', 'blockDuration', 'onStoreError', 'blockCache', 'localMaxKeys'] as const;
const MAX_TIERS = 32;

/** The limiters of a middleware: one per tier, the default first; `tierOf` is set with `tiers` only. */
export interface MiddlewareLimiters {
  tiers: Array<{ name: string; config: LimiterConfig }>;
  tierOf: ((req: Request) => string | undefined | null) | undefined;
}

/**
 * Without `tiers`: one limiter from the top-level policies, as a tier named 'default'. With them: one limiter per
 * tier, from its own policies and the top level's other limiter options, named `<name>/<tier>` ('/' is outside the
 * alphabet of names given by hand, so no other limiter can have it), the default tier first.
 */
export function parseMiddlewareLimiters(options: RateLimitMiddlewareOptions, where: string): MiddlewareLimiters {
  const { tiers, tier, defaultTier } = options;
  if (tiers === undefined) {
    if (tier !== undefined || defaultTier !== undefined) {
      throw new ConfigError(`${where}: tier and defaultTier go with tiers: { name: { limit, window }, ... }`);
    }
    return { tiers: [{ name: 'default', config: parseLimiterOptions(options, where) }], tierOf: undefined };
  }
  assertPlainObject(tiers, `${where}.tiers`);
  const names = Object.keys(tiers);
  if (names.length === 0 || names.length > MAX_TIERS) {
    throw new ConfigError(`${where}.tiers: expected 1 to ${MAX_TIERS} tiers, got ${names.length}`);
  }
  if (typeof tier !== 'function') {
    throw new ConfigError(`${where}.tier: a function of the request naming its tier is required with tiers`);
  }
  const given = TIER_KEYS.filter((k) => options[k] !== undefined);
  if (given.length > 0) {
    throw new ConfigError(`${where}: with tiers, policies go in each tier, not at the top level (${given.join(', ')})`);
  }
  if (options.name === undefined) {
    throw new ConfigError(`${where}.name: tiers need a name (their limiters are named <name>/<tier>, e.g. 'api/free')`);
  }
  for (const name of names) {
    // Names of digits only would be listed first by the object whatever their place, and '__proto__' cannot be a
    // plain key of the object that lists the limiters.
    if (!TIER_NAME.test(name) || /^\d+$/.test(name) || name === '__proto__') {
      throw new ConfigError(
        `${where}.tiers: ${JSON.stringify(name)} must be 1-16 characters from A-Z a-z 0-9 _ -, not digits only`,
      );
    }
  }
  const fallback = defaultTier ?? names[0];
  if (typeof fallback !== 'string' || !Object.hasOwn(tiers, fallback)) {
    throw new ConfigError(
      `${where}.defaultTier: ${JSON.stringify(fallback)} is not one of the tiers (${names.join(', ')})`,
    );
  }
  // The settings every tier shares, checked once where they were given.
  const settings = limiterSettings(options, where);
  const parsed = names.map((name) => {
    const own = tiers[name] as RateLimitTier;
    const at = `${where}.tiers.${name}`;
    assertPlainObject(own, at);
    const misplaced = SHARED_KEYS.find((k) => (own as Record<string, unknown>)[k] !== undefined);
    if (misplaced !== undefined) {
      throw new ConfigError(
        `${at}.${misplaced}: ${misplaced} applies to every tier: give it at the top level of ${where}`,
      );
    }
    assertKnownKeys(own, TIER_KEYS, at);
    const config: LimiterConfig = { ...settings, name: `${options.name}/${name}`, policies: compilePolicies(own, at) };
    return { name, config };
  });
  parsed.sort((a, b) => (a.name === fallback ? -1 : b.name === fallback ? 1 : 0));
  return { tiers: parsed, tierOf: tier };
}
