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
