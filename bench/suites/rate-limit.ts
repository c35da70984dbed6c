// Rate limiting: GET /ping behind our middleware, one and three policies, on Redis and on the embedded store,
// against bare Express, rate-limiter-flexible (RateLimiterRedis) and express-rate-limit + rate-limit-redis,
// each configured the way its README shows. Limits are far above the load so every request is admitted (the
// common case costs what we measure); a /verify route with a limit of 3 proves each limiter really counts.

import express, { type Express, type RequestHandler } from 'express';
import { rateLimit } from 'express-rate-limit';
import Redis from 'ioredis';
import { RedisStore } from 'rate-limit-redis';
import { RateLimiterRedis, RateLimiterUnion } from 'rate-limiter-flexible';
import { createRedisKit } from '../lib/kit';
import type { BenchEnv, Setup, Suite } from '../lib/types';

const HUGE = 1_000_000_000;
// The burst policy's window in seconds: 1 s on /ping as documented, 1 h on /verify, whose four sequential
// requests must not straddle a window boundary (on a loaded machine they can take a second, and a fresh window
// would admit the fourth).
const burstSeconds = (limit: number): number => (limit === HUGE ? 1 : 3600);
const ping: RequestHandler = (_req, res) => {
  res.json({ ok: true });
};

function app(mw: (limit: number, name: string) => RequestHandler[]): Express {
  const a = express();
  a.get('/ping', ...mw(HUGE, 'ping'), ping);
  a.get('/verify', ...mw(3, 'verify'), ping);
  return a;
}

function kitSetup(name: string, label: string, policies: 1 | 3, memory: boolean): Setup {
  return {
    name,
    label,
    role: 'ours',
    usesRedis: !memory,
    verifyPath: '/verify',
    verifyLimit: 3,
    build(env: BenchEnv) {
      const kit = createRedisKit(memory ? { store: 'memory', logger: false } : { redis: env.redisUrl, logger: false });
      return app((limit, route) => [
        kit.rateLimit(
          policies === 1
            ? { name: route, limit, window: '1 m' }
            : {
                name: route,
                policies: [
                  { name: 'burst', limit, window: burstSeconds(limit) * 1000, algorithm: 'fixed-window' },
                  { name: 'minute', limit: HUGE, window: '1 m' },
                  { name: 'hour', limit: HUGE, window: '1 h', algorithm: 'gcra' },
                ],
              },
        ),
      ]);
    },
  };
}

function rlfSetup(name: string, label: string, policies: 1 | 3): Setup {
  return {
    name,
    label,
    role: 'peer',
    usesRedis: true,
    verifyPath: '/verify',
    verifyLimit: 3,
    build(env: BenchEnv) {
      const client = new Redis(env.redisUrl, { enableOfflineQueue: false });
      return app((limit, route) => {
        const make = (points: number, duration: number, prefix: string) =>
          new RateLimiterRedis({ storeClient: client, points, duration, keyPrefix: `rlf-${route}-${prefix}` });
        const limiter =
          policies === 1
            ? make(limit, 60, 'a')
            : new RateLimiterUnion(
                make(limit, burstSeconds(limit), 'burst'),
                make(HUGE, 60, 'minute'),
                make(HUGE, 3600, 'hour'),
              );
        return [
          (req, res, next) => {
            limiter
              .consume(req.ip ?? '')
              .then(() => next())
              .catch(() => {
                res.status(429).send('Too Many Requests');
              });
          },
        ];
      });
    },
  };
}

function erlSetup(name: string, label: string, policies: 1 | 3): Setup {
  return {
    name,
    label,
    role: 'peer',
    usesRedis: true,
    verifyPath: '/verify',
    verifyLimit: 3,
    build(env: BenchEnv) {
      const client = new Redis(env.redisUrl);
      const make = (limit: number, windowMs: number, prefix: string) =>
        rateLimit({
          windowMs,
          limit,
          standardHeaders: 'draft-8',
          legacyHeaders: false,
          store: new RedisStore({
            prefix,
            sendCommand: (command: string, ...args: string[]) => client.call(command, ...args) as Promise<never>,
          }),
        });
      return app((limit, route) =>
        policies === 1
          ? [make(limit, 60_000, `erl-${route}:`)]
          : [
              make(limit, burstSeconds(limit) * 1000, `erl-${route}-burst:`),
              make(HUGE, 60_000, `erl-${route}-minute:`),
              make(HUGE, 3_600_000, `erl-${route}-hour:`),
            ],
      );
    },
  };
}

/**
 * The least an in-process limiter that sends the standard fields costs, as a floor under the embedded-store row: a
 * fixed-window count per client address in a Map, and the two IETF fields (RateLimit-Policy, RateLimit) our
 * middleware sends. No algorithms, no key scheme, no bounds on memory, no blocked-keys cache, no failure modes.
 */
function floorSetup(): Setup {
  return {
    name: 'floor',
    label: 'reference: the least a limiter with the standard fields costs (a Map counter per address, two fields)',
    role: 'ours',
    usesRedis: false,
    verifyPath: '/verify',
    verifyLimit: 3,
    build: () =>
      app((limit, route) => {
        const windowMs = 60_000;
        const counts = new Map<string, { count: number; resetAt: number }>();
        const policy = `"${route}";q=${limit};w=60`;
        const head = `"${route}";r=`;
        return [
          (req, res, next) => {
            const key = req.socket.remoteAddress ?? '';
            const now = Date.now();
            let entry = counts.get(key);
            if (entry === undefined || entry.resetAt <= now) {
              entry = { count: 0, resetAt: now - (now % windowMs) + windowMs };
              counts.set(key, entry);
            }
            entry.count++;
            res.setHeader('RateLimit-Policy', policy);
            res.setHeader(
              'RateLimit',
              `${head}${Math.max(0, limit - entry.count)};t=${Math.ceil((entry.resetAt - now) / 1000)}`,
            );
            if (entry.count > limit) res.status(429).json({ title: 'Too Many Requests' });
            else next();
          },
        ];
      }),
  };
}

export const suite: Suite = {
  name: 'rate-limit',
  description: 'GET /ping behind a rate limiter (requests/s, latency, Redis commands per request)',
  setups: [
    { name: 'bare', label: 'bare Express', role: 'bare', usesRedis: false, build: () => app(() => []) },
    // The floor of any middleware: one more handler on the route that only calls next(). What a limiter costs
    // beyond this is its own work; up to this is Express's.
    {
      name: 'noop',
      label: 'reference: one no-op middleware, no limiter',
      role: 'ours',
      usesRedis: false,
      build: () => app(() => [(_req, _res, next) => next()]),
    },
    kitSetup('kit-redis-1', 'kit.rateLimit, Redis, 1 policy', 1, false),
    kitSetup('kit-redis-3', 'kit.rateLimit, Redis, 3 policies', 3, false),
    kitSetup('kit-memory-1', 'kit.rateLimit, embedded store, 1 policy', 1, true),
    rlfSetup('rlf-1', 'rate-limiter-flexible, 1 limiter', 1),
    rlfSetup('rlf-3', 'rate-limiter-flexible, union of 3', 3),
    erlSetup('erl-1', 'express-rate-limit + rate-limit-redis, 1', 1),
    erlSetup('erl-3', 'express-rate-limit + rate-limit-redis, 3 stacked', 3),
    floorSetup(),
  ],
};
