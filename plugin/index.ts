// The public entry point of express-redis-kit.

export { createRedisKit } from './kit.js';
export type { MountOptions, RedisKit, RedisKitOptions } from './kit.js';
export { createServer, type ExpressApp, type ServerClasses, serverClasses } from './server.js';
export {
  ClosedError,
  ConfigError,
  KitError,
  StoreCommandError,
  StoreTimeoutError,
  StoreUnavailableError,
} from './core/errors.js';
export type { Duration } from './core/duration.js';
export type { Logger } from './core/logger.js';
export type { CircuitState } from './connection/breaker.js';
export type { CounterResult, MemoryStore, RedisStore, Store, StoreInfo } from './connection/store.js';
export type { FeatureContext } from './core/context.js';
export type { StoreMode } from './connection/types.js';
export type { HealthCheck, HealthReport, HealthStatus } from './observability/health.js';
export {
  KitSessionStore,
  Session,
  SessionGoneError,
  SessionRevokedError,
  SessionTooLargeError,
} from './session/index.js';
export type {
  SessionCookieOptions,
  SessionInfo,
  SessionManager,
  SessionOptions,
  SessionStoreOptions,
  WorkspaceSource,
} from './session/index.js';
export type { Lock, Locks, LockScope, ReadWriteLock, Semaphore } from './locks/locks.js';
export type { AcquireOptions, LocksOptions } from './locks/options.js';
export { type QuorumLocks, type QuorumLocksOptions, quorumLocks } from './locks/quorum.js';
export {
  LockExtendError,
  LockInputError,
  LockLostError,
  LockNotHeldError,
  LockQuorumError,
  LockTimeoutError,
} from './locks/errors.js';
export { SemanticCache } from './semantic-cache/cache.js';
export type {
  CacheResult,
  CacheStatus,
  InvalidateTarget as SemanticInvalidateTarget,
  SemanticCacheStats,
  StoreOptions as SemanticStoreOptions,
  StoreResult as SemanticStoreResult,
} from './semantic-cache/cache.js';
export type { SemanticCacheOptions } from './semantic-cache/options.js';
export type { LlmMessage, LlmRequest } from './semantic-cache/request.js';
export type { Embedder } from './semantic-cache/embedders/types.js';
export { OfflineEmbedder } from './semantic-cache/embedders/offline.js';
export { HttpEmbedder, functionEmbedder } from './semantic-cache/embedders/http.js';
export { EmbedderError, SemanticCacheInputError } from './semantic-cache/errors.js';
export { semanticCacheHandler } from './semantic-cache/middleware.js';
export type { SemanticCacheHandlerOptions } from './semantic-cache/middleware.js';
export type { ResponseCacheOptions } from './response-cache/options.js';
export type {
  InvalidateTarget as ResponseCacheInvalidateTarget,
  ResponseCache,
  ResponseCacheStats,
} from './response-cache/middleware.js';
export { Queue, QueueInputError } from './queue/index.js';
export type {
  BackoffOptions,
  HistogramSnapshot,
  Job,
  JobHandler,
  JobInfo,
  JobOptions,
  JobState,
  ProcessOptions,
  QueueCounts,
  QueueEvents,
  QueueOptions,
  QueueStats,
  RetentionOptions,
} from './queue/index.js';
export type { AdminOptions } from './observability/admin.js';
export type { HttpMetricsOptions } from './observability/http.js';
export type { CollectorSpec, HistogramSample, MetricSnapshot, Sample, ValueSample } from './observability/metrics.js';
export { KIT_METRICS, RESERVED_METRICS } from './observability/names.js';
export type { MetricsApi } from './observability/setup.js';
export type { UsageApi } from './usage/middleware.js';
export type { UsageMiddlewareOptions, UsageOptions } from './usage/options.js';
export type { UsageEvent, UsageQuery, UsageReport } from './usage/usage.js';
export { UsageQueryError } from './usage/usage.js';
export { VERSION } from './version.js';
export { KitRateLimitStore } from './rate-limit/index.js';
export type * from './rate-limit/index.js';
export type { AuthorizeInput, RealtimeAction, RealtimeOptions } from './realtime/options.js';
export type { Presence, PresenceHandle, PresenceMember } from './realtime/presence.js';
export type { PublishInput, Realtime, RealtimeEvent, RealtimeStats } from './realtime/service.js';
export { PresenceFullError, RealtimeInputError } from './realtime/errors.js';
