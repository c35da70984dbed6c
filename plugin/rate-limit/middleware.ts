// kit.rateLimit(): the Express middleware. Everything that can be decided at construction is (key builder,
// header strings, cost, lists); a request costs one limiter call and a few setHeader calls.

import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { FeatureContext } from '../core/context.js';
import { ConfigError } from '../core/errors.js';
import { assertKnownKeys, assertPlainObject } from '../core/options.js';
import { localsOf, SharedPrototypes } from '../core/prototypes.js';
import { type HeaderWriter, headerWriter, retryAfterSeconds } from './headers.js';
import { buildKeyFn, ipKey } from './keys.js';
import {
  createRateLimiter,
  type DecisionSink,
  type InternalRateLimiter,
  type RateLimiter,
  type RateLimitResult,
} from './limiter.js';
import { MIDDLEWARE_KEYS, parseMiddlewareLimiters, type RateLimitMiddlewareOptions } from './options.js';

export interface RateLimitMiddleware extends RequestHandler {
  /** The limiter behind the middleware (peek, reset, stats): with `tiers`, the default tier's. */
  readonly limiter: RateLimiter;
  /** Every limiter of the middleware by tier name: `{ default: limiter }` without `tiers`. */
  readonly limiters: Readonly<Record<string, RateLimiter>>;
}

/** One tier's limiter and what the middleware needs of it per request. */
interface Tier {
  limiter: RateLimiter;
  /** On the embedded store the decision is synchronous: no promise, no microtask hop before next(). */
  limitSync: InternalRateLimiter['limitSync'];
  /** On Redis the decision reaches a Pending object from the reply's callback: no promise per request. */
  limitInto: InternalRateLimiter['limitInto'];
  writeHeaders: HeaderWriter;
}

declare global {
  namespace Express {
    interface Request {
      /** The last rate limiter's decision for this request. */
      rateLimit?: RateLimitResult;
    }
  }
}

// req.rateLimit reads the decision from the request's res.locals, through an accessor on the prototype Express's
// requests share: a new own property on each request cost about three times as much (core/prototypes.ts). An
// assignment to req.rateLimit (express-rate-limit on the same app) becomes a plain property of that request.
const RESULT = Symbol('rate limit result');

const prototypes = new SharedPrototypes({
  rateLimit: {
    configurable: true,
    get(this: Request) {
      return localsOf<RateLimitResult>(this.res)?.[RESULT];
    },
    set(this: Request, value: unknown) {
      Object.defineProperty(this, 'rateLimit', { value, writable: true, configurable: true, enumerable: true });
    },
  },
});

function expose(req: Request, res: Response, result: RateLimitResult): void {
  const locals = localsOf<RateLimitResult>(res);
  if (locals !== undefined && req.res === res && !Object.hasOwn(req, 'rateLimit') && prototypes.ready(req, res)) {
    locals[RESULT] = result;
  } else {
    req.rateLimit = result;
  }
}

type ListCheck = ((req: Request, key: string) => boolean) | undefined;

function listCheck(list: RateLimitMiddlewareOptions['allowList'], what: string, subnet: number): ListCheck {
  if (list === undefined) return undefined;
  if (typeof list === 'function') return list;
  if (!Array.isArray(list) || list.some((k) => typeof k !== 'string')) {
    throw new ConfigError(`${what}: expected an array of keys or IPs, or a function (req, key) => boolean`);
  }
  if (list.length === 0) return undefined;
  // Entries may be written as plain IPs or as the key kinds ('user:42'); IPs are normalised the way keys are.
  const set = new Set<string>();
  for (const entry of list) {
    set.add(entry);
    set.add(`ip:${ipKey(entry, subnet)}`);
  }
  return (_req, key) => set.has(key);
}

function looksLikeRequest(value: unknown): boolean {
  return !!value && typeof value === 'object' && 'socket' in value && 'headers' in value && 'method' in value;
}

export function createRateLimitMiddleware(
  context: FeatureContext,
  options: RateLimitMiddlewareOptions,
): RateLimitMiddleware {
  if (looksLikeRequest(options)) {
    throw new TypeError(
      'kit.rateLimit was used as a middleware without calling it: write app.use(kit.rateLimit({ limit: 100, window: "1 m" }))',
    );
  }
  assertPlainObject(options, 'kit.rateLimit');
  assertKnownKeys(options, MIDDLEWARE_KEYS, 'kit.rateLimit');
  const { tiers: tierConfigs, tierOf } = parseMiddlewareLimiters(options, 'kit.rateLimit');
  const subnet = options.ipv6Subnet ?? 64;
  if (!Number.isInteger(subnet) || subnet < 8 || subnet > 128) {
    throw new ConfigError(`kit.rateLimit.ipv6Subnet: expected a whole number from 8 to 128, got ${String(subnet)}`);
  }
  const keyOf = buildKeyFn(options.keyBy ?? 'ip', subnet, context.logger);
  const allow = listCheck(options.allowList, 'kit.rateLimit.allowList', subnet);
  const deny = listCheck(options.denyList, 'kit.rateLimit.denyList', subnet);
  const skip = options.skip;
  if (skip !== undefined && typeof skip !== 'function')
    throw new ConfigError('kit.rateLimit.skip: expected a function');
  const cost = options.cost ?? 1;
  if (typeof cost === 'number' && (!Number.isFinite(cost) || cost < 0)) {
    throw new ConfigError(`kit.rateLimit.cost: expected a number >= 0 or a function, got ${cost}`);
  }
  if (typeof cost !== 'number' && typeof cost !== 'function') {
    throw new ConfigError('kit.rateLimit.cost: expected a number >= 0 or a function of the request');
  }
  const costOf =
    typeof cost === 'number'
      ? undefined
      : (req: Request): number => {
          const c = cost(req);
          if (typeof c === 'number' && Number.isFinite(c) && c >= 0) return c;
          context.logger.warnOnce('ERR_KIT_RATE_LIMIT_COST', `cost() returned ${String(c)}; counting the request as 1`);
          return 1;
        };
  const ietf = options.headers ?? true;
  const legacy = options.legacyHeaders ?? false;
  const tiers = new Map<string, Tier>();
  const limiters: Record<string, RateLimiter> = {};
  for (const { name, config } of tierConfigs) {
    const limiter = createRateLimiter(context, config);
    tiers.set(name, {
      limiter,
      limitSync: limiter.limitSync,
      limitInto: limiter.limitInto,
      writeHeaders: headerWriter(config.policies, ietf, legacy),
    });
    limiters[name] = limiter;
  }
  // The default tier is listed first; without `tiers` it is the only one.
  const fallback = tiers.get(tierConfigs[0]?.name as string) as Tier;
  const tierList = [...tiers.keys()].join(', ');
  let warnedTier = false;
  const unknownTier = (name: unknown): void => {
    if (warnedTier) return;
    warnedTier = true;
    // What tier() returned may come from the request (a header): logged cut short and escaped.
    const shown =
      typeof name === 'object' && typeof (name as { then?: unknown }).then === 'function'
        ? 'a promise (tier() must answer synchronously)'
        : JSON.stringify(String(name).slice(0, 40));
    // Once per middleware (not per kit, as warnOnce would): each tiered middleware's first stray answer shows.
    context.logger.warnCoded(
      'ERR_KIT_RATE_LIMIT_TIER',
      `kit.rateLimit '${String(options.name)}': tier() returned ${shown}, which is not one of the tiers (${tierList}); such requests count under the default tier`,
    );
  };
  const tierFor =
    tierOf === undefined
      ? undefined
      : (req: Request): Tier => {
          const name = tierOf(req);
          if (name === undefined || name === null) return fallback;
          const found = typeof name === 'string' ? tiers.get(name) : undefined;
          if (found !== undefined) return found;
          unknownTier(name);
          return fallback;
        };
  const closedStatus = options.closedStatus ?? 503;
  if (closedStatus !== 429 && closedStatus !== 503) throw new ConfigError('kit.rateLimit.closedStatus: 429 or 503');
  const detail = options.message ?? 'Too many requests; retry after the time in Retry-After.';
  if (typeof detail !== 'string') throw new ConfigError('kit.rateLimit.message: expected a string');
  const handler = options.handler;
  if (handler !== undefined && typeof handler !== 'function') {
    throw new ConfigError('kit.rateLimit.handler: expected a function (req, res, next, result)');
  }

  const refuse = (res: Response, status: number, title: string, text: string, retryAfter?: string): void => {
    res.statusCode = status;
    if (retryAfter !== undefined) res.setHeader('Retry-After', retryAfter);
    res.setHeader('Content-Type', 'application/problem+json');
    res.setHeader('Cache-Control', 'no-store');
    const body: Record<string, unknown> = { type: 'about:blank', title, status, detail: text };
    if (retryAfter !== undefined) body.retryAfter = Number(retryAfter);
    res.end(JSON.stringify(body));
  };

  const respond = (req: Request, res: Response, next: NextFunction, result: RateLimitResult, tier: Tier): void => {
    expose(req, res, result);
    tier.writeHeaders(res, result);
    if (result.allowed) next();
    else if (handler) handler(req, res, next, result);
    else if (result.reason === 'store-unavailable') {
      refuse(
        res,
        closedStatus,
        closedStatus === 503 ? 'Service Unavailable' : 'Too Many Requests',
        'The rate limiter cannot reach its store.',
        retryAfterSeconds(result),
      );
    } else refuse(res, 429, 'Too Many Requests', detail, retryAfterSeconds(result));
  };
  // A numeric `cost` option counts every request as that much (it used to be dropped: every request counted 1).
  const fixedCost = typeof cost === 'number' ? cost : 1;

  /** One request waiting for its decision on Redis (limitInto): answered from the store reply's callback. */
  class Pending implements DecisionSink {
    constructor(
      private readonly req: Request,
      private readonly res: Response,
      private readonly next: NextFunction,
      private readonly tier: Tier,
    ) {}

    done(result: RateLimitResult): void {
      try {
        respond(this.req, this.res, this.next, result, this.tier);
      } catch (error) {
        // A `handler` option that throws: Express's error handling, as for a throw in any middleware.
        this.next(error);
      }
    }

    fail(error: unknown): void {
      this.next(error);
    }
  }

  const middleware = ((req: Request, res: Response, next: NextFunction): void => {
    if (skip?.(req)) {
      next();
      return;
    }
    const key = keyOf(req);
    if (allow?.(req, key)) {
      next();
      return;
    }
    if (deny?.(req, key)) {
      refuse(res, 403, 'Forbidden', 'This client is not allowed.');
      return;
    }
    const c = costOf ? costOf(req) : fixedCost;
    const tier = tierFor === undefined ? fallback : tierFor(req);
    if (tier.limitSync !== undefined) {
      let result: RateLimitResult;
      try {
        result = tier.limitSync(key, c);
      } catch (error) {
        next(error);
        return;
      }
      respond(req, res, next, result, tier);
      return;
    }
    if (tier.limitInto !== undefined) {
      tier.limitInto(key, c, new Pending(req, res, next, tier));
      return;
    }
    // A limiter with neither path (none of the kit's stores today): the promise, answered the same way.
    const pending = new Pending(req, res, next, tier);
    tier.limiter.limit(key, c === 1 ? undefined : { cost: c }).then(
      (result) => pending.done(result),
      (error: unknown) => pending.fail(error),
    );
  }) as RateLimitMiddleware;
  Object.defineProperty(middleware, 'limiter', { value: fallback.limiter });
  Object.defineProperty(middleware, 'limiters', { value: Object.freeze(limiters) });
  return middleware;
}
