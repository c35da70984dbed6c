// createRedisKit(): resolves the store once, builds features on first use, mounts the kit's routers, closes
// everything it opened.

import { Router, type Application, type Router as ExpressRouter } from 'express';
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
import { healthRouter, type HealthOptions } from './observability/health.js';
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
  /** Publish to channels that browsers follow over Server-Sent Events at `GET {base}/realtime/:channel`. */
  readonly realtime: Realtime;
  /** Who is in a channel: joins with heartbeats, leases on the store's clock, join/leave events on the channel. */
  readonly presence: Presence;
  /** An Express router with every route the kit serves (health today; features add theirs). */
  router(): ExpressRouter;
  /** Mounts `router()` on `app` under `basePath`. */
  mount(app: Application | ExpressRouter, options?: MountOptions): RedisKit;
  /** Resolves once the store is connected; rejects on a set-up problem (e.g. a missing driver). */
  ready(): Promise<void>;
  /** Ends every connection and timer the kit opened. Safe to call twice. */
  close(): Promise<void>;
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
  let closed: Promise<void> | undefined;
  const closers: Array<() => Promise<void> | void> = [];
  const context: FeatureContext = {
    store,
    logger: config.logger,
    commandTimeoutMs: config.commandTimeoutMs,
    onClose(fn) {
      closers.push(fn);
    },
  };

  let realtime: RealtimeService | undefined;
  const realtimeService = (): RealtimeService => {
    if (!realtime) {
      const service = new RealtimeService(context, config.realtime);
      context.onClose(() => service.close());
      // Built after close(): its close hook will not run, so stop its timers now (calls then fail as closed).
      if (closed) void service.close();
      realtime = service;
    }
    return realtime;
  };

  const kit: RedisKit = {
    store,
    mode: store.mode,
    logger: config.logger,
    context,
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
    ready: () => store.ready(),
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
