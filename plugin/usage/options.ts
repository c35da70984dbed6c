// Usage tracking options: the kit-level settings (buffer, flush, retention) parsed once at createRedisKit(), and the
// middleware's extractors parsed once per kit.usage() call.

import type { Request, Response } from 'express';
import { type Duration, parseDuration, parseLongDuration } from '../core/duration.js';
import { ConfigError } from '../core/errors.js';
import { assertKnownKeys, assertPlainObject, positiveInt } from '../core/options.js';

export interface UsageOptions {
  /** How often the in-process buffer is written to the store (one pipeline per flush). @default '250 ms' */
  flushInterval?: Duration;
  /**
   * Distinct (workspace, user, route, feature, minute) counters held before a flush is started early; past twice
   * this while the store is unreachable, new increments are dropped and counted in `rediskit_usage_dropped_total`.
   * @default 50_000
   */
  maxBuffered?: number;
  /** How long each bucket size is kept after its bucket ends. */
  retention?: {
    /** @default '1 d' */
    minute?: Duration;
    /** @default '31 d' */
    hour?: Duration;
    /** @default '400 d' */
    day?: Duration;
    /** @default '800 d' */
    month?: Duration;
  };
}

export interface UsageConfig {
  flushIntervalMs: number;
  maxBuffered: number;
  retentionMs: Record<Granularity, number>;
}

export type Granularity = 'minute' | 'hour' | 'day' | 'month';
export const GRANULARITIES: readonly Granularity[] = ['minute', 'hour', 'day', 'month'];

export function parseUsageOptions(options: UsageOptions | undefined): UsageConfig {
  const o = options ?? {};
  assertPlainObject(o, 'usage');
  assertKnownKeys(o, ['flushInterval', 'maxBuffered', 'retention'], 'usage');
  const r = o.retention ?? {};
  assertPlainObject(r, 'usage.retention');
  assertKnownKeys(r, GRANULARITIES, 'usage.retention');
  return {
    flushIntervalMs: parseDuration(o.flushInterval ?? '250 ms', 'usage.flushInterval'),
    maxBuffered: positiveInt(o.maxBuffered ?? 50_000, 'usage.maxBuffered'),
    retentionMs: {
      minute: parseLongDuration(r.minute ?? '1 d', 'usage.retention.minute'),
      hour: parseLongDuration(r.hour ?? '31 d', 'usage.retention.hour'),
      day: parseLongDuration(r.day ?? '400 d', 'usage.retention.day'),
      month: parseLongDuration(r.month ?? '800 d', 'usage.retention.month'),
    },
  };
}

type Extract = (req: Request, res: Response) => string | undefined | null;

export interface UsageMiddlewareOptions {
  /**
   * The workspace (tenant) a request counts against, read when the response finishes (so an auth middleware that
   * runs later has set it). Requests without one count under `default`.
   * @default (req, res) => res.locals.workspace
   */
  workspace?: Extract;
  /**
   * The user, for per-user counts and the daily unique-user estimate.
   * @default (req, res) => res.locals.user?.id ?? res.locals.userId
   */
  user?: Extract;
  /** The feature a request belongs to (e.g. 'chat', 'search'). @default (req, res) => res.locals.feature */
  feature?: Extract;
  /** The route label. @default the matched route template (`/items/:id`), `unmatched` when none */
  route?: Extract;
  /** Requests not to count (health probes, the metrics scrape). @default none */
  skip?: (req: Request, res: Response) => boolean;
}

/** The options as given; `workspace`, `user` and `feature` undefined: the defaults, read by `fromLocals`. */
export interface UsageMiddlewareConfig {
  workspace: Extract | undefined;
  user: Extract | undefined;
  feature: Extract | undefined;
  route: Extract | undefined;
  skip: ((req: Request, res: Response) => boolean) | undefined;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

type Locals = Record<string, unknown> | undefined;

/**
 * The defaults of `workspace`, `user` and `feature`, as functions of the response's `res.locals` (which the
 * middleware hands them, read once per response: on Express's responses each read of `res.locals` is a slow
 * property load, and the three defaults made four of them).
 */
export const fromLocals = {
  workspace: (l: Locals): string | undefined => str(l?.workspace),
  user: (l: Locals): string | undefined => str((l?.user as { id?: unknown } | null | undefined)?.id) ?? str(l?.userId),
  feature: (l: Locals): string | undefined => str(l?.feature),
};

export function parseUsageMiddlewareOptions(options: UsageMiddlewareOptions | undefined): UsageMiddlewareConfig {
  if (options !== undefined && (options as unknown as { method?: unknown }).method !== undefined) {
    // app.use(kit.usage) hands Express's req as "options"
    throw new ConfigError('kit.usage: call it: app.use(kit.usage()), not app.use(kit.usage)');
  }
  const o = options ?? {};
  assertPlainObject(o, 'kit.usage');
  assertKnownKeys(o, ['workspace', 'user', 'feature', 'route', 'skip'], 'kit.usage');
  for (const name of ['workspace', 'user', 'feature', 'route', 'skip'] as const) {
    if (o[name] !== undefined && typeof o[name] !== 'function') {
      throw new TypeError(`kit.usage: ${name} must be a function of (req, res), got ${typeof o[name]}`);
    }
  }
  return { workspace: o.workspace, user: o.user, feature: o.feature, route: o.route, skip: o.skip };
}
