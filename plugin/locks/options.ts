// Options of the lock feature: the kit-wide defaults (parsed once in createRedisKit) and per-call overrides.

import { type Duration, parseDuration } from '../core/duration.js';
import { ConfigError } from '../core/errors.js';
import { assertKnownKeys, assertPlainObject } from '../core/options.js';
import { LockInputError } from './errors.js';

export interface LocksOptions {
  /** Lease length: how long a holder that stops extending (crashed, paused) keeps others out. @default '10 s' */
  ttl?: Duration;
  /** Longest `acquire()` waits for the lock before failing with LockTimeoutError; 0 tries once. @default '10 s' */
  waitTimeout?: Duration;
  /**
   * Waiters are woken by the release itself (pub/sub); this is the fallback poll in case a notification is lost,
   * and the longest pause between attempts when the store cannot subscribe (Upstash REST). @default '500 ms'
   */
  pollInterval?: Duration;
  /** First pause between attempts when polling (Upstash REST); it doubles up to `pollInterval`. @default '10 ms' */
  minPollInterval?: Duration;
  /** Grant the lock to the longest-waiting caller first (FIFO) rather than to whoever asks first. @default false */
  fair?: boolean;
}

export interface AcquireOptions {
  /** Lease length for this lock. @default the kit's `locks.ttl` ('10 s') */
  ttl?: Duration;
  /** Longest to wait for the lock; 0 tries once. @default the kit's `locks.waitTimeout` ('10 s') */
  waitTimeout?: Duration;
  /** Gives up waiting when aborted (rejects with the signal's reason). */
  signal?: AbortSignal;
  /** FIFO order among waiters. @default the kit's `locks.fair` (false) */
  fair?: boolean;
}

export interface LocksConfig {
  ttlMs: number;
  waitTimeoutMs: number;
  pollIntervalMs: number;
  minPollIntervalMs: number;
  fair: boolean;
}

/** Shortest lease accepted: anything shorter is gone before a round trip to a remote store has finished. */
export const MIN_TTL_MS = 10;
/** Longest lock name accepted (names are hashed into keys, but a megabyte of name is a bug upstream). */
export const MAX_NAME_LENGTH = 1024;
export const MAX_SEMAPHORE_LIMIT = 1_000_000;

const KNOWN = ['ttl', 'waitTimeout', 'pollInterval', 'minPollInterval', 'fair'] as const;
const KNOWN_ACQUIRE = ['ttl', 'waitTimeout', 'signal', 'fair'] as const;

export function parseLocksOptions(options: LocksOptions | undefined): LocksConfig {
  const o = options ?? {};
  assertPlainObject(o, 'locks');
  assertKnownKeys(o, KNOWN, 'locks');
  if (o.fair !== undefined && typeof o.fair !== 'boolean') throw new ConfigError('locks.fair: expected a boolean');
  const ttlMs = parseDuration(o.ttl ?? '10 s', 'locks.ttl');
  if (ttlMs < MIN_TTL_MS) throw new ConfigError(`locks.ttl: at least ${MIN_TTL_MS} ms, got ${ttlMs}`);
  return {
    ttlMs,
    waitTimeoutMs: parseDuration(o.waitTimeout ?? '10 s', 'locks.waitTimeout', { allowZero: true }),
    pollIntervalMs: parseDuration(o.pollInterval ?? '500 ms', 'locks.pollInterval'),
    minPollIntervalMs: parseDuration(o.minPollInterval ?? '10 ms', 'locks.minPollInterval'),
    fair: o.fair ?? false,
  };
}

/** Per-call input comes from application code at run time: report it as LockInputError (400), never a crash. */
function asInput<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof ConfigError) throw new LockInputError(error.message);
    throw error;
  }
}

export interface ResolvedAcquire {
  ttlMs: number;
  waitTimeoutMs: number;
  signal: AbortSignal | undefined;
  fair: boolean;
}

export function resolveAcquire(options: AcquireOptions | undefined, config: LocksConfig): ResolvedAcquire {
  if (options === undefined) {
    return { ttlMs: config.ttlMs, waitTimeoutMs: config.waitTimeoutMs, signal: undefined, fair: config.fair };
  }
  if (options === null || typeof options !== 'object') {
    throw new LockInputError(`lock options: expected an object, got ${options === null ? 'null' : typeof options}`);
  }
  asInput(() => assertKnownKeys(options, KNOWN_ACQUIRE, 'lock options'));
  const ttlMs = options.ttl === undefined ? config.ttlMs : asInput(() => parseDuration(options.ttl as Duration, 'ttl'));
  if (ttlMs < MIN_TTL_MS) throw new LockInputError(`ttl: at least ${MIN_TTL_MS} ms, got ${ttlMs}`);
  const waitTimeoutMs =
    options.waitTimeout === undefined
      ? config.waitTimeoutMs
      : asInput(() => parseDuration(options.waitTimeout as Duration, 'waitTimeout', { allowZero: true }));
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new LockInputError('signal: expected an AbortSignal');
  }
  if (options.fair !== undefined && typeof options.fair !== 'boolean') {
    throw new LockInputError('fair: expected a boolean');
  }
  return { ttlMs, waitTimeoutMs, signal: options.signal, fair: options.fair ?? config.fair };
}

// With the u flag a proper surrogate pair is one code point, so this matches only unpaired halves.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

export function validateName(name: unknown): string {
  if (typeof name !== 'string') throw new LockInputError(`lock name: expected a string, got ${typeof name}`);
  if (name.length === 0) throw new LockInputError('lock name: must not be empty');
  if (name.length > MAX_NAME_LENGTH) {
    throw new LockInputError(`lock name: at most ${MAX_NAME_LENGTH} characters, got ${name.length}`);
  }
  // A lone surrogate cannot be encoded as UTF-8: two different names would hash to the same key.
  if (LONE_SURROGATE.test(name)) throw new LockInputError('lock name: contains a lone UTF-16 surrogate');
  return name;
}

export function validateLimit(limit: unknown): number {
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_SEMAPHORE_LIMIT) {
    throw new LockInputError(
      `semaphore limit: expected a whole number from 1 to ${MAX_SEMAPHORE_LIMIT}, got ${String(limit)}`,
    );
  }
  return limit;
}
