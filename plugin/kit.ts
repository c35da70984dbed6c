// createRedisKit(): resolves the store once, builds features on first use, mounts the kit's routers, closes
// everything it opened.

import { Router, type Application, type Router as ExpressRouter, type RequestHandler } from 'express';
import { connect, modeOf } from './connection/connect.js';
import { MemoryEngine } from './connection/memory.js';
import { resolveStore, type StoreSpec } from './connection/resolve.js';
import { MemoryStore, RedisStore, type Store } from './connection/store.js';
import type { StoreMode } from './connection/types.js';
import { type Duration, parseDuration } from './core/duration.js';
import { ConfigError } from './core/errors.js';
import { KeyBuilder } from './core/keys.js';
import { consoleLogger, isLogger, KitLogger, type Logger, silentLogger } from './core/logger.js';
import type { FeatureContext } from './core/context.js';
import { assertKnownKeys, assertPlainObject, positiveInt } from './core/options.js';
import { type AdminConfig, type AdminOptions, parseAdminOptions } from './observability/admin.js';
import { healthRouter, type HealthOptions } from './observability/health.js';
import {
  createSessionFeature,
  createSessionManager,
  createSessionMiddleware,
  createSessionStore,
  type KitSessionStore,
  type SessionManager,
  type SessionOptions,
  type SessionStoreOptions,
} from './session/index.js';
import type { SessionFeature } from './session/middleware.js';
import {
  createRateLimitMiddleware,
  type KitRateLimitStore,
  type RateLimiter,
  type RateLimiterOptions,
  type RateLimitMiddleware,
  type RateLimitMiddlewareOptions,
  rateLimiter,
  rateLimitStore,
} from './rate-limit/index.js';
import { createLocks, type Locks } from './locks/locks.js';
import { type LocksConfig, type LocksOptions, parseLocksOptions } from './locks/options.js';
import { SemanticCache } from './semantic-cache/cache.js';
import type { SemanticCacheOptions } from './semantic-cache/options.js';
import { createResponseCache, type ResponseCache } from './response-cache/middleware.js';
import { Queue, type QueueOptions } from './queue/index.js';
import { observeMiddleware } from './observability/finish.js';
import type { HttpMetricsOptions } from './observability/http.js';
import { createObservability, type MetricsApi } from './observability/setup.js';
import { createUsageApi, type UsageApi } from './usage/middleware.js';
import {
  parseUsageOptions,
  type UsageConfig,
  type UsageMiddlewareOptions,
  type UsageOptions,
} from './usage/options.js';
import { parseRealtimeOptions, type RealtimeConfig, type RealtimeOptions } from './realtime/options.js';
import type { Presence } from './realtime/presence.js';
import { realtimeRouter } from './realtime/router.js';
import { type Realtime, RealtimeService } from './realtime/service.js';

export interface RedisKitOptions {
  /**
   * Redis over TCP: a `redis://` / `rediss://` URL, or an ioredis instance (Redis or Cluster) you created.
   * An instance you pass in is yours: the kit does not close it.
   * @default process.env.REDIS_URL
   * @example { redis: 'redis://localhost:6379/0' }
   */
  redis?: string | object;
  /**
   * Redis Cluster: seed nodes as `'host:port'` strings or `{ host, port }`, or an ioredis Cluster instance.
   * @default process.env.REDIS_CLUSTER_NODES (comma-separated host:port)
   * @example { cluster: ['10.0.0.1:7000', '10.0.0.2:7000'] }
   */
  cluster?: Array<string | { host: string; port: number }> | object;
  /**
   * Redis behind Sentinel.
   * @example { sentinel: { sentinels: ['10.0.0.1:26379'], name: 'mymaster' } }
   */
  sentinel?: { sentinels: Array<string | { host: string; port: number }>; name: string; password?: string };
  /**
   * Upstash over its REST API: `{ url, token }` or an @upstash/redis instance.
   * @default process.env.UPSTASH_REDIS_REST_URL + UPSTASH_REDIS_REST_TOKEN (also UPSTASH_REDIS_URL + UPSTASH_REDIS_TOKEN)
   */
  upstash?: { url: string; token: string } | object;
  /** `'memory'` forces the embedded in-memory store even when the environment names a Redis. */
  store?: 'memory';
  /** Settings of the embedded store. */
  memory?: {
    /** Most keys the embedded store holds; the oldest are evicted past it. @default 1_000_000 */
    maxKeys?: number;
  };
  /**
   * Namespace of every key and channel the kit writes: `prefix:feature:{id}:part`.
   * @default 'rk'
   */
  prefix?: string;
  /** A pino-compatible logger, or `false` for none. @default console */
  logger?: Logger | false;
  /** Longest a single store command may take before the request goes on without it. @default '1 s' */
  commandTimeout?: Duration;
  /** Longest to wait for a TCP connection to be set up (clients the kit creates). @default '5 s' */
  connectTimeout?: Duration;
  /** Circuit breaker in front of the store, or `false` to turn it off. */
  circuitBreaker?:
    | {
        /** Consecutive transport failures that open the circuit. @default 5 */
        failureThreshold?: number;
        /** How long the circuit stays open before one probe is let through. @default '1 s' */
        cooldown?: Duration;
      }
    | false;
  /** The health routes. */
  health?: {
    /** Longest `/health/redis` waits for the store before answering 503. @default '800 ms' */
    timeout?: Duration;
    /** Ping latency above which readiness reports `warn`. @default '100 ms' */
    warnLatency?: Duration;
  };
  /** Realtime channels (Server-Sent Events) and presence: see docs/realtime.md. */
  realtime?: RealtimeOptions;
  /** Where environment variables are read from. @default process.env */
  env?: Record<string, string | undefined>;
  /** Defaults of `kit.locks` (leases, waiting, fairness). See docs/locks.md. */
  locks?: LocksOptions;
  /**
   * Who may read `/metrics`, `/admin/redis-metrics` and the dashboard's data: a bearer token, or `open: true`.
   * @default { token: process.env.REDIS_KIT_ADMIN_TOKEN } (no token: those routes answer 403)
   */
  admin?: AdminOptions;
  /** Usage tracking: buffer, flush interval, retention per bucket size (docs/usage.md). */
  usage?: UsageOptions;
}

export interface MountOptions {
  /** Path the kit's routers are mounted under. @default '/api/v1' */
  basePath?: string;
}

export interface RedisKit {
  /** The store every feature uses: embedded memory, Redis (standalone, Sentinel, Cluster) or Upstash REST. */
  readonly store: Store;
  /** `memory`, `standalone`, `sentinel`, `cluster` or `upstash`. */
  readonly mode: StoreMode;
  readonly logger: KitLogger;
  /** What feature factories receive (store, logger, settings, close hooks). For feature authors. */
  readonly context: FeatureContext;
  /**
   * HTTP response cache: `app.get('/products', kit.cache({ ttl: '30 s', tags: ['products'] }), handler)`, and
   * `kit.cache.invalidate({ tags: ['products'] })`. See docs/response-cache.md.
   */
  readonly cache: ResponseCache;
  /**
   * Request metrics middleware (`app.use(kit.metrics())`), and the registry features feed through
   * `kit.metrics.collect(...)` (docs/observability.md).
   */
  readonly metrics: MetricsApi;
  /** Usage tracking middleware (`app.use(kit.usage())`), `kit.usage.record`, `.query`, `.monthToDate` (docs/usage.md). */
  readonly usage: UsageApi;
  /**
   * `kit.metrics()` and `kit.usage()` as one middleware: one router layer less per request. Either may be `false`.
   * @example app.use(kit.observe({ usage: { workspace: (req, res) => res.locals.tenant } }))
   */
  observe(options?: { metrics?: HttpMetricsOptions | false; usage?: UsageMiddlewareOptions | false }): RequestHandler;
  /** Publish to channels that browsers follow over Server-Sent Events at `GET {base}/realtime/:channel`. */
  readonly realtime: Realtime;
  /** Who is in a channel: joins with heartbeats, leases on the store's clock, join/leave events on the channel. */
  readonly presence: Presence;
  /** An Express router with every route the kit serves: health, metrics and admin, realtime. */
  router(): ExpressRouter;
  /**
   * Session middleware giving `req.session` with express-session's API (passport works unchanged), lazy loading,
   * field-level writes, idle and absolute timeouts, per-user index and workspace binding. See docs/sessions.md.
   * @example app.use(kit.session({ secret: process.env.SESSION_SECRET }))
   */
  session(options: SessionOptions): RequestHandler;
  /** A user's sessions: list, revoke one, revoke all ("log out everywhere"). */
  readonly sessions: SessionManager;
  /** An express-session Store on the kit's store, for apps that keep express-session. */
  sessionStore(options?: SessionStoreOptions): KitSessionStore;
  /** Mounts `router()` on `app` under `basePath`. */
  mount(app: Application | ExpressRouter, options?: MountOptions): RedisKit;
  /** Distributed locks with fencing tokens: mutexes, semaphores, read/write locks. Built on first use. */
  readonly locks: Locks;
  /**
   * A semantic LLM cache on this kit's store (options parsed here, once). Call once per configuration and keep it.
   * @example const llmCache = kit.semanticCache({ threshold: 0.8 }); await llmCache.wrap(request, () => callLlm(request))
   */
  semanticCache(options?: SemanticCacheOptions): SemanticCache;
  /**
   * Resolves once the store is connected and answers; rejects on a set-up problem (e.g. a missing driver) or when
   * the server does not answer within the command timeout. Optional: features work without awaiting it.
   */
  ready(): Promise<void>;
  /**
   * A job queue on the kit's store: `add()` jobs, `process()` them here or in other processes. Each call returns
   * a new Queue object (with its own worker) over the same stored queue. Closed with the kit.
   */
  queue<T = unknown>(name: string, options?: QueueOptions): Queue<T>;
  /** Ends every connection and timer the kit opened. Safe to call twice. */
  close(): Promise<void>;
  /** Rate-limiting middleware (see docs/rate-limiting.md). @example app.use(kit.rateLimit({ limit: 100, window: '1 m' })) */
  rateLimit(options: RateLimitMiddlewareOptions): RateLimitMiddleware;
  /** A programmatic limiter: `limit(key, { cost })`, `peek(key)`, `reset(key)`. */
  rateLimiter(options: RateLimiterOptions): RateLimiter;
  /** A Store for express-rate-limit that keeps its counters in the kit's store. */
  rateLimitStore(options?: { prefix?: string }): KitRateLimitStore;
}

const KNOWN_OPTIONS = [
  'redis',
  'cluster',
  'sentinel',
  'upstash',
  'store',
  'memory',
  'prefix',
  'logger',
  'commandTimeout',
  'connectTimeout',
  'circuitBreaker',
  'health',
  'realtime',
  'env',
  'locks',
  'admin',
  'usage',
] as const;

interface KitConfig {
  spec: StoreSpec;
  prefix: string;
  logger: KitLogger;
  commandTimeoutMs: number;
  connectTimeoutMs: number;
  breaker: { failureThreshold: number; cooldownMs: number } | false;
  health: HealthOptions;
  memoryMaxKeys: number;
  locks: LocksConfig;
  admin: AdminConfig;
  usage: UsageConfig;
  realtime: RealtimeConfig;
}

function parseOptions(options: RedisKitOptions): KitConfig {
  assertPlainObject(options, 'createRedisKit');
  assertKnownKeys(options, KNOWN_OPTIONS, 'createRedisKit');
  if (options.logger !== undefined && options.logger !== false && !isLogger(options.logger)) {
    throw new ConfigError('logger: expected an object with info, warn and error methods (pino fits), or false');
  }
  const logger = new KitLogger(options.logger === false ? silentLogger : (options.logger ?? consoleLogger));

  const cb = options.circuitBreaker;
  if (cb !== undefined && cb !== false) {
    assertPlainObject(cb, 'circuitBreaker');
    assertKnownKeys(cb, ['failureThreshold', 'cooldown'], 'circuitBreaker');
  }
  const health = options.health ?? {};
  assertPlainObject(health, 'health');
  assertKnownKeys(health, ['timeout', 'warnLatency'], 'health');
  const memory = options.memory ?? {};
  assertPlainObject(memory, 'memory');
  assertKnownKeys(memory, ['maxKeys'], 'memory');

  return {
    spec: resolveStore(options, options.env ?? process.env),
    prefix: options.prefix ?? 'rk',
    logger,
    commandTimeoutMs: parseDuration(options.commandTimeout ?? '1 s', 'commandTimeout'),
    connectTimeoutMs: parseDuration(options.connectTimeout ?? '5 s', 'connectTimeout'),
    breaker:
      cb === false
        ? false
        : {
            failureThreshold: positiveInt(cb?.failureThreshold ?? 5, 'circuitBreaker.failureThreshold', 1000),
            cooldownMs: parseDuration(cb?.cooldown ?? '1 s', 'circuitBreaker.cooldown'),
          },
    health: {
      timeoutMs: parseDuration(health.timeout ?? '800 ms', 'health.timeout'),
      warnLatencyMs: parseDuration(health.warnLatency ?? '100 ms', 'health.warnLatency'),
    },
    memoryMaxKeys: positiveInt(memory.maxKeys ?? 1_000_000, 'memory.maxKeys'),
    locks: parseLocksOptions(options.locks),
    admin: parseAdminOptions(options.admin, options.env ?? process.env),
    usage: parseUsageOptions(options.usage),
    realtime: parseRealtimeOptions(options.realtime),
  };
}

function createStore(config: KitConfig): Store {
  const keys = new KeyBuilder(config.prefix);
  const { spec, logger } = config;
  if (spec.kind === 'memory') {
    if (spec.reason === 'default') {
      logger.info(
        'no Redis configured: using the embedded in-memory store (data stays in this process). ' +
          'Set REDIS_URL=redis://host:6379 (or UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN), ' +
          "or pass { redis: 'redis://…' } to createRedisKit().",
      );
    }
    return new MemoryStore(new MemoryEngine({ maxKeys: config.memoryMaxKeys, sweepIntervalMs: 1000 }), { keys });
  }
  return new RedisStore({
    mode: modeOf(spec),
    keys,
    logger,
    commandTimeoutMs: config.commandTimeoutMs,
    connectTimeoutMs: config.connectTimeoutMs,
    breaker: config.breaker,
    connect: () =>
      connect(spec, { commandTimeoutMs: config.commandTimeoutMs, connectTimeoutMs: config.connectTimeoutMs, logger }),
  });
}

/**
 * Creates the kit: resolves the store from `options` and the environment (embedded memory when nothing is
 * configured), and returns the object that features and routers hang off. Returns at once; the connection is made
 * in the background (await `kit.ready()` to wait for it).
 */
export function createRedisKit(options: RedisKitOptions = {}): RedisKit {
  const config = parseOptions(options);
  const store = createStore(config);
  let router: ExpressRouter | undefined;
  let locks: Locks | undefined;
  let closed: Promise<void> | undefined;
  const closers: Array<() => Promise<void> | void> = [];
  const context: FeatureContext = {
    store,
    logger: config.logger,
    commandTimeoutMs: config.commandTimeoutMs,
    onClose(fn) {
      // A feature built while or after close() runs (a request still in flight) is closed at once: its hook would
      // otherwise land in a list close() has already taken.
      if (closed) {
        void Promise.resolve()
          .then(fn)
          .catch((error: unknown) => config.logger.error({ err: error }, 'a feature failed to close cleanly'));
        return;
      }
      closers.push(fn);
    },
  };

  let sessionFeature: SessionFeature | undefined;
  let sessionManager: SessionManager | undefined;
  const sessions = (): SessionFeature => {
    sessionFeature ??= createSessionFeature(context);
    return sessionFeature;
  };
  const observability = createObservability(store, config.admin, config.logger);
  const usage = createUsageApi(context, config.usage, observability.registry);
  let realtime: RealtimeService | undefined;
  const realtimeService = (): RealtimeService => {
    if (!realtime) {
      const service = new RealtimeService(context, config.realtime);
      observability.features.realtime(service);
      context.onClose(() => service.close());
      realtime = service;
    }
    return realtime;
  };

  const kit: RedisKit = {
    store,
    metrics: observability.api,
    usage: usage.api,
    observe(options = {}) {
      assertPlainObject(options, 'kit.observe');
      assertKnownKeys(options, ['metrics', 'usage'], 'kit.observe');
      const http = options.metrics === false ? undefined : observability.httpHook(options.metrics);
      const counts = options.usage === false ? undefined : usage.hook(options.usage);
      return observeMiddleware(http, counts);
    },
    mode: store.mode,
    logger: config.logger,
    context,
    session: (sessionOptions) => createSessionMiddleware(sessions(), sessionOptions),
    get sessions() {
      sessionManager ??= createSessionManager(sessions());
      return sessionManager;
    },
    sessionStore: (storeOptions) => createSessionStore(sessions(), storeOptions),
    cache: observability.features.responseCache(createResponseCache(context)),
    get realtime() {
      return realtimeService();
    },
    get presence() {
      return realtimeService().presence;
    },
    router() {
      if (!router) {
        router = Router();
        router.use(healthRouter(store, config.health));
        router.use(observability.router());
        router.use(realtimeRouter(realtimeService()));
      }
      return router;
    },
    mount(app, mountOptions = {}) {
      if (!app || typeof (app as { use?: unknown }).use !== 'function') {
        throw new TypeError('kit.mount(app): expected an Express app or router as the first argument');
      }
      assertKnownKeys(mountOptions, ['basePath'], 'kit.mount');
      const basePath = mountOptions.basePath ?? '/api/v1';
      if (typeof basePath !== 'string' || !basePath.startsWith('/')) {
        throw new ConfigError(`kit.mount: basePath must start with '/', got ${JSON.stringify(basePath)}`);
      }
      (app as ExpressRouter).use(basePath, kit.router());
      return kit;
    },
    get locks() {
      locks ??= observability.features.locks(createLocks(context, config.locks));
      return locks;
    },
    semanticCache: (semanticOptions) =>
      observability.features.semanticCache(new SemanticCache(context, semanticOptions)),
    ready: () => store.ready(),
    rateLimit: (rateLimitOptions) =>
      observability.features.rateLimitMiddleware(createRateLimitMiddleware(context, rateLimitOptions)),
    rateLimiter: (limiterOptions) => observability.features.rateLimiter(rateLimiter(context, limiterOptions)),
    rateLimitStore: (storeOptions) => rateLimitStore(context, storeOptions),
    queue: (name, queueOptions) => observability.features.queue(new Queue(context, name, queueOptions)),
    close() {
      // Features first (they may flush to the store), then the store; later-registered features close first.
      closed ??= (async () => {
        for (const fn of closers.splice(0).reverse()) {
          try {
            await fn();
          } catch (error) {
            config.logger.error({ err: error }, 'a feature failed to close cleanly');
          }
        }
        await store.close();
      })();
      return closed;
    },
  };
  return kit;
}
