// The rate limiter's options, their defaults, and the one place they are parsed (at the factory, never per request).

import type { Request, Response, NextFunction } from 'express';
import { type Duration, parseDuration } from '../core/duration.js';
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
  /** Length of the window: milliseconds or e.g. '1 s', '15 m'. @example '1 h' */
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

export type KeyBy = 'ip' | 'user' | 'apiKey' | 'workspace' | ((req: Request) => string | undefined | null);

export interface RateLimitMiddlewareOptions extends RateLimiterOptions {
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
  const windowMs = parseDuration(p.window, `${where}.window`);
  if (p.burst !== undefined && algorithm !== TOKEN_BUCKET && algorithm !== GCRA) {
    throw new ConfigError(`${where}.burst only applies to 'token-bucket' and 'gcra' (got ${algorithmName})`);
  }
  const burst = p.burst === undefined ? limit : positiveInt(p.burst, `${where}.burst`, MAX_LIMIT);
  return { name: checkName(p.name ?? defaultName, `${where}.name`), algorithm, limit, windowMs, burst };
}

export function parseLimiterOptions(options: RateLimiterOptions, where: string): LimiterConfig {
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
    policies,
    blockMs:
      options.blockDuration === undefined
        ? 0
        : parseDuration(options.blockDuration, `${where}.blockDuration`, { allowZero: true }),
    onStoreError,
    blockCacheMax: cache === false ? 0 : positiveInt(cache.maxKeys ?? 10_000, `${where}.blockCache.maxKeys`),
    localMaxKeys: positiveInt(options.localMaxKeys ?? 10_000, `${where}.localMaxKeys`),
  };
}
