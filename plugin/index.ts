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
export { VERSION } from './version.js';
export type { AuthorizeInput, RealtimeAction, RealtimeOptions } from './realtime/options.js';
export type { Presence, PresenceHandle, PresenceMember } from './realtime/presence.js';
export type { PublishInput, Realtime, RealtimeEvent, RealtimeStats } from './realtime/service.js';
export { PresenceFullError, RealtimeInputError } from './realtime/errors.js';
