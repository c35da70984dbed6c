// Every metric name the kit exposes or reserves, in one table, so features wired in later use the names the
// dashboard, the docs (docs/observability.md) and users' alert rules already expect.

export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface MetricSpec {
  type: MetricType;
  help: string;
  labelNames: readonly string[];
  /** Histogram bucket upper bounds (seconds unless the name says otherwise). */
  buckets?: readonly number[];
}

/** Latency buckets in seconds, from 0.5 ms to 5 s: the range of a request or a store round trip. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] as const;
/** Waiting times in seconds (locks, queued jobs), from 1 ms to 5 minutes. */
export const WAIT_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300] as const;
/** Similarity scores from 0 to 1. */
export const SCORE_BUCKETS = [0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.99, 1] as const;

/** Measured by the kit itself (foundation, HTTP middleware, usage). */
export const KIT_METRICS = {
  rediskit_http_requests_total: {
    type: 'counter',
    help: 'HTTP requests answered, by method, route template (never the raw path) and status code.',
    labelNames: ['method', 'route', 'status'],
  },
  rediskit_http_request_duration_seconds: {
    type: 'histogram',
    help: 'Time from the request entering the metrics middleware to the response being sent, by route template.',
    labelNames: ['method', 'route'],
    buckets: LATENCY_BUCKETS,
  },
  rediskit_store_command_duration_seconds: {
    type: 'histogram',
    help: 'Round trip of one store operation (command, script, pipeline) as the kit sees it, timeouts included.',
    labelNames: ['command', 'outcome'],
    buckets: LATENCY_BUCKETS,
  },
  rediskit_store_circuit_state: {
    type: 'gauge',
    help: 'Circuit breaker in front of the store: 1 on the current state (closed, open, half-open), 0 on the others.',
    labelNames: ['state'],
  },
  rediskit_store_circuit_opens_total: {
    type: 'counter',
    help: 'Times the circuit breaker opened since the process started.',
    labelNames: [],
  },
  rediskit_store_unavailable_total: {
    type: 'counter',
    help: 'Store operations that failed for lack of a store (timeout, connection error, open circuit).',
    labelNames: [],
  },
  rediskit_usage_events_total: {
    type: 'counter',
    help: 'Usage events recorded in the in-process buffer (requests seen by kit.usage() and kit.usage.record calls).',
    labelNames: [],
  },
  rediskit_usage_flushes_total: {
    type: 'counter',
    help: 'Usage buffer flushes to the store, by outcome (ok, error).',
    labelNames: ['outcome'],
  },
  rediskit_usage_flush_duration_seconds: {
    type: 'histogram',
    help: 'Time one usage flush (one pipeline) took.',
    labelNames: [],
    buckets: LATENCY_BUCKETS,
  },
  rediskit_usage_buffered_series: {
    type: 'gauge',
    help: 'Distinct usage counters waiting in the buffer for the next flush.',
    labelNames: [],
  },
  rediskit_usage_dropped_total: {
    type: 'counter',
    help: 'Usage increments dropped because the store stayed unreachable and the buffer reached its cap.',
    labelNames: [],
  },
} as const satisfies Record<string, MetricSpec>;

/**
 * Reserved for the features built alongside (rate limit, response cache, semantic cache, locks, queue, sessions,
 * realtime). The integrator feeds them from each feature's stats getter with `kit.metrics.collect({ name, collect })`;
 * type, help and labels come from this table. Nothing is exposed under these names until a collector is registered.
 */
export const RESERVED_METRICS = {
  rediskit_ratelimit_decisions_total: {
    type: 'counter',
    help: 'Rate-limit decisions, by policy name and decision (allowed, blocked).',
    labelNames: ['policy', 'decision'],
  },
  rediskit_ratelimit_store_failures_total: {
    type: 'counter',
    help: 'Rate-limit calls answered without the store, by policy and the failure mode applied (open, closed, local).',
    labelNames: ['policy', 'mode'],
  },
  rediskit_cache_requests_total: {
    type: 'counter',
    help: 'Response-cache lookups, by result (hit, miss, stale, coalesced, bypass).',
    labelNames: ['result'],
  },
  rediskit_cache_invalidations_total: {
    type: 'counter',
    help: 'Response-cache entries purged (by tag, pattern or key).',
    labelNames: [],
  },
  rediskit_semantic_cache_requests_total: {
    type: 'counter',
    help: 'Semantic-cache lookups, by result (hit, miss, bypass).',
    labelNames: ['result'],
  },
  rediskit_semantic_cache_score: {
    type: 'histogram',
    help: 'Similarity score of the best candidate of each semantic-cache lookup (0 to 1, higher is closer).',
    labelNames: [],
    buckets: SCORE_BUCKETS,
  },
  rediskit_lock_wait_seconds: {
    type: 'histogram',
    help: 'Time callers waited to acquire a lock, by outcome (acquired, timeout).',
    labelNames: ['outcome'],
    buckets: WAIT_BUCKETS,
  },
  rediskit_lock_acquisitions_total: {
    type: 'counter',
    help: 'Lock acquisition attempts, by outcome (acquired, contended, timeout).',
    labelNames: ['outcome'],
  },
  rediskit_lock_leases_lost_total: {
    type: 'counter',
    help: 'Leases that expired or were taken over while their holder still believed it held the lock.',
    labelNames: [],
  },
  rediskit_queue_jobs: {
    type: 'gauge',
    help: 'Jobs in each queue, by state (waiting, active, delayed, failed).',
    labelNames: ['queue', 'state'],
  },
  rediskit_queue_jobs_total: {
    type: 'counter',
    help: 'Jobs that finished, by queue and outcome (completed, failed, retried).',
    labelNames: ['queue', 'outcome'],
  },
  rediskit_queue_wait_seconds: {
    type: 'histogram',
    help: 'Time a job waited between being ready and being picked up, by queue.',
    labelNames: ['queue'],
    buckets: WAIT_BUCKETS,
  },
  rediskit_queue_processing_seconds: {
    type: 'histogram',
    help: 'Time a worker spent on a job, by queue.',
    labelNames: ['queue'],
    buckets: WAIT_BUCKETS,
  },
  rediskit_session_operations_total: {
    type: 'counter',
    help: 'Session store operations, by operation (load, save, destroy, regenerate) and outcome (ok, miss, error).',
    labelNames: ['operation', 'outcome'],
  },
  rediskit_realtime_connections: {
    type: 'gauge',
    help: 'Open realtime connections (SSE or WebSocket) held by this process.',
    labelNames: [],
  },
  rediskit_realtime_messages_total: {
    type: 'counter',
    help: 'Realtime messages, by direction (published, delivered, dropped).',
    labelNames: ['direction'],
  },
} as const satisfies Record<string, MetricSpec>;

export type KitMetricName = keyof typeof KIT_METRICS;
export type ReservedMetricName = keyof typeof RESERVED_METRICS;
