// Options of `kit.cache(options)`, documented where declared, and their one-time parsing into a route config.

import type { Request, Response } from 'express';
import { type Duration, parseDuration } from '../core/duration.js';
import { ConfigError } from '../core/errors.js';
import { assertKnownKeys, assertPlainObject, positiveInt } from '../core/options.js';

/** RFC 9110 15.1's heuristically cacheable statuses, without 206 (we do not store ranges) and 501 (never 5xx). */
export const DEFAULT_STATUSES = [200, 203, 204, 300, 301, 308, 404, 405, 410, 414] as const;
export const DEFAULT_SESSION_COOKIES = ['connect.sid', 'sid', 'session', 'sessionid', 'rk.sid'] as const;

export interface ResponseCacheOptions {
  /**
   * Freshness lifetime when the response's own `Cache-Control` gives none (`s-maxage` beats `max-age` beats this).
   * @default '1 m'
   */
  ttl?: Duration;
  /**
   * After the ttl, how long a stale copy is still served at once while one request (cluster-wide) refreshes it in
   * the background. 0 turns it off. A response's `stale-while-revalidate=N` directive takes precedence.
   * @default 0
   */
  staleWhileRevalidate?: Duration;
  /**
   * After the ttl, how long a stale copy is served instead of a 5xx, a thrown error or a handler slower than
   * `staleIfErrorTimeout`. 0 turns it off. A response's `stale-if-error=N` directive takes precedence.
   * @default 0
   */
  staleIfError?: Duration;
  /** How long a handler may take before a stale copy is served instead (only when one is kept). @default '5 s' */
  staleIfErrorTimeout?: Duration;
  /**
   * Tags for `kit.cache.invalidate({ tags })`: a list, or a function of the request and the finished response.
   * @example tags: (req) => [`product:${req.params.id}`]
   */
  tags?: readonly string[] | ((req: Request, res: Response) => readonly string[] | undefined);
  /**
   * The primary key, instead of the normalised URL (the method is always part of it). Return `undefined` to skip
   * the cache for this request.
   * @default the URL with its query parameters sorted and percent-encoding normalised
   */
  key?: (req: Request) => string | undefined;
  /** Request fields to keep separate variants for, in addition to the response's `Vary`. @default [] */
  vary?: readonly string[];
  /**
   * Methods answered from the cache. HEAD is answered from a cached GET; no other method is cacheable here.
   * @default ['GET', 'HEAD']
   */
  methods?: ReadonlyArray<'GET' | 'HEAD'>;
  /** Statuses stored. Never a 5xx. @default [200, 203, 204, 300, 301, 308, 404, 405, 410, 414] */
  statuses?: readonly number[];
  /** Largest body stored, in bytes; larger responses are passed through. @default 1_048_576 */
  maxBodySize?: number;
  /**
   * Opt-in for personalised responses: a per-user key part. Without it, requests with `Authorization` or a session
   * cookie and responses with `Set-Cookie` are never cached. With it, they are cached under the user's key (the
   * `Set-Cookie` field itself is never stored). Return `undefined` to skip the cache for this request.
   * @example userKey: (req) => req.user?.id
   */
  userKey?: (req: Request) => string | undefined;
  /** Cookie names that mark a request as belonging to a session. @default ['connect.sid', 'sid', 'session', 'sessionid', 'rk.sid'] */
  sessionCookies?: readonly string[];
  /** Whether a request's `Cache-Control: no-cache` (or `max-age=0`, `Pragma: no-cache`) skips the stored copy and refreshes it. @default true */
  revalidateOnNoCache?: boolean;
  /**
   * Request coalescing: on a miss one request cluster-wide runs the handler (under a lease), the others wait for
   * its result. `false` turns it off.
   */
  coalesce?:
    | {
        /** Lease time to live: a filler that dies frees the key after this. @default '5 s' */
        lease?: Duration;
        /** Longest a request waits for another's result before running the handler itself. @default '5 s' */
        wait?: Duration;
      }
    | false;
  /**
   * In-process layer in front of the store for the hottest keys, invalidated through pub/sub. Needs a store that
   * can subscribe (not Upstash REST). `true` for the defaults.
   * @default false
   */
  hotLayer?:
    | boolean
    | {
        /** Entries held. @default 1000 */
        maxEntries?: number;
        /** Longest an entry is served from process memory without asking the store (bounds what a missed invalidation could cost). @default '5 s' */
        maxAge?: Duration;
      };
  /** Name of this cache in the `Cache-Status` field. @default 'express-redis-kit' */
  name?: string;
}

const KNOWN = [
  'ttl',
  'staleWhileRevalidate',
  'staleIfError',
  'staleIfErrorTimeout',
  'tags',
  'key',
  'vary',
  'methods',
  'statuses',
  'maxBodySize',
  'userKey',
  'sessionCookies',
  'revalidateOnNoCache',
  'coalesce',
  'hotLayer',
  'name',
] as const;

export const MAX_TAGS = 64;
export const MAX_TAG_LENGTH = 256;

export interface RouteConfig {
  ttlMs: number;
  swrMs: number;
  sieMs: number;
  sieTimeoutMs: number;
  tags: readonly string[] | ((req: Request, res: Response) => readonly string[] | undefined);
  key: ((req: Request) => string | undefined) | undefined;
  vary: readonly string[];
  head: boolean;
  get: boolean;
  statuses: ReadonlySet<number>;
  maxBodySize: number;
  userKey: ((req: Request) => string | undefined) | undefined;
  sessionCookies: readonly string[];
  revalidateOnNoCache: boolean;
  coalesce: { leaseMs: number; waitMs: number } | false;
  hot: { maxEntries: number; maxAgeMs: number } | false;
  name: string;
}

function fn<T>(value: T | undefined, what: string): T | undefined {
  if (value !== undefined && typeof value !== 'function') throw new TypeError(`kit.cache: ${what} must be a function`);
  return value;
}

export function parseRouteOptions(options: ResponseCacheOptions): RouteConfig {
  assertPlainObject(options, 'kit.cache');
  assertKnownKeys(options, KNOWN, 'kit.cache');
  const methods = options.methods ?? ['GET', 'HEAD'];
  if (!Array.isArray(methods) || methods.length === 0)
    throw new ConfigError('kit.cache: methods must list GET and/or HEAD');
  for (const m of methods) {
    if (m !== 'GET' && m !== 'HEAD') {
      throw new ConfigError(
        `kit.cache: method ${JSON.stringify(m)} cannot be cached; only GET (and HEAD, answered from a cached GET) can`,
      );
    }
  }
  const statuses = options.statuses ?? DEFAULT_STATUSES;
  for (const s of statuses) {
    if (!Number.isInteger(s) || s < 200 || s > 499) {
      throw new ConfigError(`kit.cache: status ${JSON.stringify(s)} cannot be cached; use 2xx, 3xx or 4xx (never 5xx)`);
    }
  }
  const tags = options.tags ?? [];
  if (typeof tags !== 'function') {
    if (!Array.isArray(tags)) throw new TypeError('kit.cache: tags must be a list of strings or a function');
    checkTags(tags);
  }
  const vary = (options.vary ?? []).map((v) => {
    if (typeof v !== 'string' || !/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(v))
      throw new ConfigError(`kit.cache: vary entry ${JSON.stringify(v)} is not a header name`);
    return v.toLowerCase();
  });
  const coalesce = options.coalesce ?? {};
  if (coalesce !== false) {
    assertPlainObject(coalesce, 'kit.cache coalesce');
    assertKnownKeys(coalesce, ['lease', 'wait'], 'kit.cache coalesce');
  }
  const hotOption = options.hotLayer ?? false;
  const hot = hotOption === true ? {} : hotOption;
  if (hot !== false) {
    assertPlainObject(hot, 'kit.cache hotLayer');
    assertKnownKeys(hot, ['maxEntries', 'maxAge'], 'kit.cache hotLayer');
  }
  const name = options.name ?? 'express-redis-kit';
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) throw new ConfigError('kit.cache: name must be a short token, e.g. "api"');
  return {
    ttlMs: parseDuration(options.ttl ?? '1 m', 'kit.cache ttl'),
    swrMs: parseDuration(options.staleWhileRevalidate ?? 0, 'kit.cache staleWhileRevalidate', { allowZero: true }),
    sieMs: parseDuration(options.staleIfError ?? 0, 'kit.cache staleIfError', { allowZero: true }),
    sieTimeoutMs: parseDuration(options.staleIfErrorTimeout ?? '5 s', 'kit.cache staleIfErrorTimeout'),
    tags,
    key: fn(options.key, 'key'),
    vary,
    get: methods.includes('GET'),
    head: methods.includes('HEAD'),
    statuses: new Set(statuses),
    maxBodySize: positiveInt(options.maxBodySize ?? 1_048_576, 'kit.cache maxBodySize', 512 * 1024 * 1024),
    userKey: fn(options.userKey, 'userKey'),
    sessionCookies: [...(options.sessionCookies ?? DEFAULT_SESSION_COOKIES)],
    revalidateOnNoCache: options.revalidateOnNoCache ?? true,
    coalesce:
      coalesce === false
        ? false
        : {
            leaseMs: parseDuration(coalesce.lease ?? '5 s', 'kit.cache coalesce.lease'),
            waitMs: parseDuration(coalesce.wait ?? '5 s', 'kit.cache coalesce.wait'),
          },
    hot:
      hot === false
        ? false
        : {
            maxEntries: positiveInt(hot.maxEntries ?? 1000, 'kit.cache hotLayer.maxEntries', 1_000_000),
            maxAgeMs: parseDuration(hot.maxAge ?? '5 s', 'kit.cache hotLayer.maxAge'),
          },
    name,
  };
}

/** Tags become key parts (hashed when long); bound how many and how long so one response cannot fan out. */
export function checkTags(tags: readonly unknown[]): readonly string[] {
  if (tags.length > MAX_TAGS) throw new ConfigError(`kit.cache: at most ${MAX_TAGS} tags per response`);
  for (const t of tags) {
    if (typeof t !== 'string' || t.length === 0 || t.length > MAX_TAG_LENGTH) {
      throw new ConfigError(`kit.cache: a tag must be a string of 1 to ${MAX_TAG_LENGTH} characters`);
    }
  }
  return tags as readonly string[];
}
