// Full stack: one GET /ping that goes through a session read, a rate limit, a response-cache hit, usage counting
// and request metrics, against bare Express; the same with the kit on its embedded store; and the peers' usual
// stack for the same work in the same run: express-session + connect-redis (node-redis), rate-limiter-flexible
// (RateLimiterRedis, ioredis), apicache (memory), a prom-client request histogram and a hand-written per-request
// usage counter in Redis (no peer library keeps usage). The client sends a session cookie from /login.
//
// Proof: /ping answers 401 unless the session carries the user /login stored (so every request read it); a
// /verify route with a limit of 3 must refuse the 4th request; the handler behind the cache may run only to fill
// the entry; /metrics must count the load's requests; the Redis set-ups must have stored the session and usage.

import { RedisStore } from 'connect-redis';
import apicache from 'apicache';
import express, { type Express, type RequestHandler } from 'express';
import session from 'express-session';
import Redis from 'ioredis';
import client from 'prom-client';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { createClient } from 'redis';
import { createRedisKit } from '../lib/kit';
import { cookieFrom, countKeys } from '../lib/http';
import type { BenchEnv, CheckResult, Setup, SetupContext, Suite } from '../lib/types';

const SECRET = 'bench-secret-0123456789abcdef';
const HUGE = 1_000_000_000;

type Sess = Record<string, unknown>;
const sess = (req: express.Request) => req.session as unknown as Sess;

interface Layers {
  /** Metrics and usage (outermost, as apps mount them). */
  observe: RequestHandler[];
  session: RequestHandler;
  rateLimit(limit: number, name: string): RequestHandler;
  cache: RequestHandler;
  metricsRoute: RequestHandler;
}

function stackApp(layers: Layers): Express {
  const app = express();
  let runs = 0;
  app.get('/__runs', (_req, res) => {
    res.json({ runs });
  });
  app.get('/metrics', layers.metricsRoute);
  app.use(...layers.observe, layers.session);
  app.get('/login', (req, res) => {
    sess(req).user = 'bench';
    res.json({ ok: true });
  });
  // Every request must carry the logged-in session: reading it is part of the work measured.
  const auth: RequestHandler = (req, res, next) => {
    if (sess(req).user !== 'bench') res.status(401).json({ error: 'not logged in' });
    else next();
  };
  app.get('/ping', auth, layers.rateLimit(HUGE, 'ping'), layers.cache, (_req, res) => {
    runs++;
    res.json({ ok: true });
  });
  app.get('/verify', layers.rateLimit(3, 'verify'), (_req, res) => {
    res.json({ ok: true });
  });
  return app;
}

async function login(ctx: SetupContext): Promise<Record<string, string>> {
  const res = await fetch(`${ctx.base}/login`);
  await res.arrayBuffer();
  const cookie = cookieFrom(res);
  if (res.status !== 200 || !cookie) throw new Error(`${ctx.base}/login gave ${res.status} and no cookie`);
  return { cookie };
}

function checker(metricPattern: RegExp, keyPatterns: string[]): (ctx: SetupContext) => Promise<CheckResult> {
  return async (ctx) => {
    const problems: string[] = [];
    const runs = ((await (await fetch(`${ctx.base}/__runs`)).json()) as { runs: number }).runs;
    if (runs > 20) problems.push(`the handler behind the cache ran ${runs} times: the cache did not serve the load`);
    const metrics = await (await fetch(`${ctx.base}/metrics`)).text();
    const counted = Math.max(0, ...[...metrics.matchAll(metricPattern)].map((m) => Number(m[1])));
    if (counted < 100) problems.push(`/metrics counted ${counted} requests of /ping`);
    // Usage is flushed in the background: give it a moment.
    await new Promise((r) => setTimeout(r, 600));
    for (const pattern of keyPatterns) {
      const n = await countKeys(ctx.redis, pattern);
      if (n === 0) problems.push(`no key matching ${pattern} in Redis`);
    }
    return { problems, figures: { 'handler runs': runs, 'requests in /metrics': counted } };
  };
}

const KIT_METRIC = /^rediskit_http_requests_total\{[^}]*route="\/ping"[^}]*\} (\d+)/gm;

function kitSetup(name: string, label: string, memory: boolean): Setup {
  const prefix = `bench-${name}`;
  return {
    name,
    label,
    role: 'ours',
    usesRedis: !memory,
    prepare: login,
    verifyPath: '/verify',
    verifyLimit: 3,
    check: checker(KIT_METRIC, memory ? [] : [`${prefix}:session:*`, `${prefix}:usage:*`]),
    async build(env: BenchEnv) {
      const kit = createRedisKit(
        memory ? { store: 'memory', logger: false, env: {} } : { redis: env.redisUrl, prefix, logger: false, env: {} },
      );
      await kit.ready();
      return stackApp({
        observe: [kit.observe({ usage: { workspace: () => 'acme', user: (req) => String(sess(req).user) } })],
        session: kit.session({ secret: SECRET }),
        rateLimit: (limit, route) => kit.rateLimit({ name: route, limit, window: '1 m' }),
        // A personalised response, cached per user (a request with a session cookie is never cached without it).
        cache: kit.cache({ ttl: '10 m', userKey: (req) => String(sess(req).user) }),
        metricsRoute: (_req, res) => {
          kit.metrics
            .registry()
            .then((registry) => registry.metrics())
            .then((text) => {
              res.type('text/plain').send(text);
            });
        },
      });
    },
  };
}

function peerSetup(): Setup {
  const prefix = 'bench-peer';
  return {
    name: 'peers',
    label: 'peers: express-session + connect-redis, rate-limiter-flexible, apicache, prom-client, usage INCR',
    role: 'peer',
    usesRedis: true,
    prepare: login,
    verifyPath: '/verify',
    verifyLimit: 3,
    check: checker(/^http_requests_total\{[^}]*route="\/ping"[^}]*\} (\d+)/gm, [
      `${prefix}-sess:*`,
      `${prefix}-usage:*`,
    ]),
    async build(env: BenchEnv) {
      const nodeRedis = createClient({ url: env.redisUrl });
      await nodeRedis.connect();
      const ioredis = new Redis(env.redisUrl, { enableOfflineQueue: false });
      const registry = new client.Registry();
      const requests = new client.Counter({
        name: 'http_requests_total',
        help: 'requests',
        labelNames: ['method', 'route', 'status'],
        registers: [registry],
      });
      const duration = new client.Histogram({
        name: 'http_request_duration_seconds',
        help: 'latency',
        labelNames: ['method', 'route', 'status'],
        registers: [registry],
      });
      // What prom-client's README suggests: time each request, label by route template on finish.
      const metrics: RequestHandler = (req, res, next) => {
        const end = duration.startTimer();
        res.on('finish', () => {
          const labels = { method: req.method, route: req.route?.path ?? 'unmatched', status: String(res.statusCode) };
          end(labels);
          requests.inc(labels);
        });
        next();
      };
      // Usage: no peer library keeps it; the plain way is one HINCRBY per request, not awaited.
      const usage: RequestHandler = (_req, res, next) => {
        res.on('finish', () => {
          const day = new Date().toISOString().slice(0, 10);
          nodeRedis.hIncrBy(`${prefix}-usage:acme:${day}`, 'requests', 1).catch(() => undefined);
        });
        next();
      };
      const limiters = new Map<string, RateLimiterRedis>();
      return stackApp({
        observe: [metrics, usage],
        session: session({
          store: new RedisStore({ client: nodeRedis, prefix: `${prefix}-sess:` }),
          secret: SECRET,
          resave: false,
          saveUninitialized: false,
        }),
        rateLimit(limit, route) {
          const limiter = new RateLimiterRedis({
            storeClient: ioredis,
            points: limit,
            duration: 60,
            keyPrefix: `${prefix}-rl-${route}`,
          });
          limiters.set(route, limiter);
          return (req, res, next) => {
            limiter
              .consume(req.ip ?? '')
              .then(() => next())
              .catch(() => {
                res.status(429).send('Too Many Requests');
              });
          };
        },
        cache: apicache.middleware('10 minutes'),
        metricsRoute: (_req, res) => {
          registry.metrics().then((text) => {
            res.type(registry.contentType).send(text);
          });
        },
      });
    },
  };
}

export const suite: Suite = {
  name: 'full-stack',
  description: 'session + rate limit + response-cache hit + usage + metrics on one GET /ping, vs bare Express',
  defaults: { rounds: 5, duration: 3 },
  setups: [
    {
      name: 'bare',
      label: 'bare Express',
      role: 'bare',
      usesRedis: false,
      build() {
        const app = express();
        app.get('/ping', (_req, res) => {
          res.json({ ok: true });
        });
        return app;
      },
    },
    kitSetup('kit-redis', 'kit: session + rateLimit + cache hit + usage + metrics, real Redis', false),
    kitSetup('kit-memory', 'kit: the same stack, embedded store', true),
    peerSetup(),
  ],
  targets: [
    { feature: 'Full stack on one request, real Redis (vs bare Express)', setup: 'kit-redis', minRatio: 0.75 },
    { feature: 'Full stack on one request, embedded store (vs bare Express)', setup: 'kit-memory', minRatio: 0.75 },
  ],
};
