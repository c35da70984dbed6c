// The public entry point of express-redis-kit.

export { createRedisKit } from './kit.js';
export type { MountOptions, RedisKit, RedisKitOptions } from './kit.js';
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
export { VERSION } from './version.js';
