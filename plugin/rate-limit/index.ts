// The rate-limit feature's entry: the factories kit.ts calls and the types index.ts re-exports.

import type { FeatureContext } from '../core/context.js';
import { assertKnownKeys, assertPlainObject } from '../core/options.js';
import { KitRateLimitStore } from './express-rate-limit-store.js';
import { createRateLimiter, type RateLimiter } from './limiter.js';
import { LIMITER_KEYS, parseLimiterOptions, type RateLimiterOptions } from './options.js';

export { createRateLimitMiddleware } from './middleware.js';
export type { RateLimitMiddleware } from './middleware.js';
export type { RateLimiter, RateLimitResult, PolicyResult, RateLimiterStats, LimitCallOptions } from './limiter.js';
export type {
  KeyBy,
  RateLimitAlgorithm,
  MiddlewareOnlyOptions,
  RateLimitMiddlewareOptions,
  RateLimitPolicy,
  RateLimitSingleOptions,
  RateLimitTier,
  RateLimitTieredOptions,
  RateLimiterOptions,
  StoreFailureMode,
} from './options.js';
export { KitRateLimitStore } from './express-rate-limit-store.js';

export function rateLimiter(context: FeatureContext, options: RateLimiterOptions): RateLimiter {
  assertPlainObject(options, 'kit.rateLimiter');
  assertKnownKeys(options, LIMITER_KEYS, 'kit.rateLimiter');
  return createRateLimiter(context, parseLimiterOptions(options, 'kit.rateLimiter'));
}

export function rateLimitStore(context: FeatureContext, options: { prefix?: string } = {}): KitRateLimitStore {
  assertPlainObject(options, 'kit.rateLimitStore');
  assertKnownKeys(options, ['prefix'], 'kit.rateLimitStore');
  return new KitRateLimitStore(context, options);
}
