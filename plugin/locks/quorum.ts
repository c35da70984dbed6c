// Quorum mode: one mutex over several independent Redis servers (no replication between them), granted when a
// majority grants it within the lease minus the time the round took and a clock-drift allowance (the Redlock
// scheme). It keeps a lock available while a minority of the servers is down; it does not make a lease safe by
// itself (pauses, clock jumps, a server restarted without its data), which is what the fencing token is for:
// docs/locks.md, "Quorum mode".
//
// The fencing token is the highest of the majority's per-server tokens, written back to that majority (while the
// lease holds there) before the caller gets the lock. Any later grant's majority shares at least one server with
// it, whose counter is then already at least that token, so the later token is higher.

import { randomUUID } from 'node:crypto';
import type { Duration } from '../core/duration.js';
import { parseDuration } from '../core/duration.js';
import { ConfigError } from '../core/errors.js';
import { assertKnownKeys, assertPlainObject } from '../core/options.js';
import type { RedisKit } from '../kit.js';
import type { AcquireResult, LockBackend, LockKind } from './backend.js';
import { LockInputError, LockQuorumError, LockTimeoutError } from './errors.js';
import { HeldLock, type Lock, type LockScope, runHeld } from './locks.js';
import { MemoryLockBackend } from './memory.js';
import { type AcquireOptions, type LocksConfig, MIN_TTL_MS, resolveAcquire, validateName } from './options.js';
import { RedisLockBackend } from './redis.js';
import { sleep } from './wait-hub.js';

export interface QuorumLocksOptions {
  /**
   * One kit per independent Redis server (not replicas of one another). At least 3; an odd number, since a
   * majority of 2k + 1 servers survives k failures as well as 2k + 2 do.
   * @example [createRedisKit({ redis: 'redis://a:6379' }), createRedisKit({ redis: 'redis://b:6379' }), ...]
   */
  kits: RedisKit[];
  /** Lease length. @default '10 s' */
  ttl?: Duration;
  /** Longest acquire() retries before failing; 0 tries once. @default '10 s' */
  waitTimeout?: Duration;
  /** Pause between two attempts (jittered by ±50 %, so competing processes fall out of step). @default '50 ms' */
  retryDelay?: Duration;
  /**
   * Share of the lease allowed for the servers' clocks running at different rates; 2 ms more are allowed for
   * timer granularity. The lease this process counts on is ttl − time taken − drift. @default 0.01
   */
  clockDrift?: number;
}

export interface QuorumLocks {
  /** How many servers, and how many of them make a majority. */
  readonly servers: number;
  readonly quorum: number;
  /**
   * Acquires `name` on a majority of the servers. Rejects with LockTimeoutError when the lock stayed taken for
   * `waitTimeout`, and with LockQuorumError when fewer than a majority of the servers answered.
   */
  acquire(name: string, options?: Omit<AcquireOptions, 'fair'>): Promise<Lock>;
  /** As kit.locks.withLock: extended on a majority every third of the lease, released on every server. */
  withLock<T>(
    name: string,
    fn: (scope: LockScope) => Promise<T> | T,
    options?: Omit<AcquireOptions, 'fair'>,
  ): Promise<T>;
}

const KNOWN = ['kits', 'ttl', 'waitTimeout', 'retryDelay', 'clockDrift'] as const;

/** The extend and release steps over every server, counted against the majority. */
class QuorumBackend implements Pick<LockBackend, 'extend' | 'release'> {
  constructor(
    readonly servers: LockBackend[],
    readonly quorum: number,
  ) {}

  /** Extended when a majority extended it; lost when a majority says it is not held; else the store failed. */
  async extend(_kind: LockKind, name: string, token: string, ttlMs: number): Promise<boolean> {
    const settled = await Promise.allSettled(this.servers.map((s) => s.extend('mutex', name, token, ttlMs)));
    const extended = settled.filter((r) => r.status === 'fulfilled' && r.value).length;
    if (extended >= this.quorum) return true;
    const answered = settled.filter((r) => r.status === 'fulfilled').length;
    if (answered - extended >= this.quorum || answered === this.servers.length) return false;
    throw new LockQuorumError(name, answered, this.quorum, rejections(settled));
  }

  /** Released on every server that answers; true when any of them still held it. */
  async release(_kind: LockKind, name: string, token: string): Promise<boolean> {
    const settled = await Promise.allSettled(this.servers.map((s) => s.release('mutex', name, token)));
    if (settled.some((r) => r.status === 'fulfilled' && r.value)) return true;
    const answered = settled.filter((r) => r.status === 'fulfilled').length;
    // Nobody confirmed and too few answered to say it was not held: the caller may retry, or let it expire.
    if (answered < this.quorum) throw new LockQuorumError(name, answered, this.quorum, rejections(settled));
    return false;
  }
}

function rejections(settled: PromiseSettledResult<unknown>[]): unknown[] {
  return settled.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason);
}

class QuorumLockManager implements QuorumLocks {
  readonly backend: QuorumBackend;
  readonly config: LocksConfig;
  /** Leases lost by their holders (quorum locks are not in the kit's lock metrics; kept for the lease logic). */
  readonly counters = { leasesLost: 0 };
  readonly servers: number;
  readonly quorum: number;
  private readonly retryDelayMs: number;
  private readonly drift: number;

  constructor(
    private readonly kits: RedisKit[],
    options: QuorumLocksOptions,
  ) {
    const servers = kits.map((kit) => {
      const store = kit.context.store;
      return store.mode === 'memory' ? new MemoryLockBackend(store) : new RedisLockBackend(store);
    });
    this.servers = servers.length;
    this.quorum = Math.floor(servers.length / 2) + 1;
    this.backend = new QuorumBackend(servers, this.quorum);
    const ttlMs = parseDuration(options.ttl ?? '10 s', 'quorumLocks.ttl');
    if (ttlMs < MIN_TTL_MS) throw new ConfigError(`quorumLocks.ttl: at least ${MIN_TTL_MS} ms, got ${ttlMs}`);
    this.config = {
      ttlMs,
      waitTimeoutMs: parseDuration(options.waitTimeout ?? '10 s', 'quorumLocks.waitTimeout', { allowZero: true }),
      pollIntervalMs: 0,
      minPollIntervalMs: 0,
      fair: false,
    };
    this.retryDelayMs = parseDuration(options.retryDelay ?? '50 ms', 'quorumLocks.retryDelay');
    this.drift = options.clockDrift ?? 0.01;
  }

  private driftMs(ttlMs: number): number {
    return Math.ceil(ttlMs * this.drift) + 2;
  }

  async acquire(rawName: string, options?: Omit<AcquireOptions, 'fair'>): Promise<Lock> {
    return this.take(rawName, options);
  }

  async withLock<T>(
    name: string,
    fn: (scope: LockScope) => Promise<T> | T,
    options?: Omit<AcquireOptions, 'fair'>,
  ): Promise<T> {
    if (typeof fn !== 'function') throw new LockInputError('withLock(name, fn): fn must be a function');
    return runHeld((this.kits[0] as RedisKit).logger, await this.take(name, options), fn);
  }

  private async take(rawName: string, options?: Omit<AcquireOptions, 'fair'>): Promise<HeldLock> {
    const name = validateName(rawName);
    if (options && typeof options === 'object' && 'fair' in options) {
      throw new LockInputError('lock options: quorum locks have no FIFO fairness (fair)');
    }
    const o = resolveAcquire(options, this.config);
    o.signal?.throwIfAborted();
    const drift = this.driftMs(o.ttlMs);
    if (o.ttlMs <= drift) throw new LockInputError(`ttl: ${o.ttlMs} ms leaves nothing after the drift allowance`);
    const { servers } = this.backend;
    const deadline = performance.now() + o.waitTimeoutMs;
    for (;;) {
      const token = randomUUID();
      const sentAt = performance.now();
      const request = {
        kind: 'mutex' as const,
        name,
        token,
        ttlMs: o.ttlMs,
        waiterId: '',
        waiterLeaseMs: 0,
        fair: false,
        limit: 1,
      };
      const settled = await Promise.allSettled(servers.map((s) => s.acquire(request)));
      const granted: number[] = [];
      let fence = 0;
      settled.forEach((r, i) => {
        if (r.status === 'fulfilled' && r.value.ok) {
          granted.push(i);
          fence = Math.max(fence, (r.value as Extract<AcquireResult, { ok: true }>).fence);
        }
      });
      let answered = settled.filter((r) => r.status === 'fulfilled').length;
      let confirmed = 0;
      if (granted.length >= this.quorum) {
        // Every server of the majority learns the token before the caller uses it (see the file's header).
        const raised = await Promise.allSettled(
          granted.map((i) => (servers[i] as LockBackend).raiseFence(name, token, fence, o.ttlMs)),
        );
        confirmed = raised.filter((r) => r.status === 'fulfilled' && r.value).length;
        answered -= raised.filter((r) => r.status === 'rejected').length;
        // The lease this process can count on ends ttl − drift after the first request was sent.
        if (confirmed >= this.quorum && performance.now() - sentAt < o.ttlMs - drift) {
          return new HeldLock(this, 'mutex', name, token, fence, o.ttlMs, sentAt, drift);
        }
      }
      // No majority in time: give back what was granted so the next attempt (ours or another's) is not blocked.
      if (granted.length > 0) {
        await Promise.allSettled(granted.map((i) => (servers[i] as LockBackend).release('mutex', name, token)));
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        if (answered < this.quorum) throw new LockQuorumError(name, answered, this.quorum, rejections(settled));
        throw new LockTimeoutError(name, o.waitTimeoutMs);
      }
      await sleep(Math.min(left, this.retryDelayMs * (0.5 + Math.random())), o.signal);
    }
  }
}

/**
 * A mutex over several independent Redis servers, granted by a majority (see docs/locks.md, "Quorum mode", for
 * what it protects against and what only fencing does). The kits stay yours: close them yourself.
 */
export function quorumLocks(options: QuorumLocksOptions): QuorumLocks {
  assertPlainObject(options, 'quorumLocks');
  assertKnownKeys(options, KNOWN, 'quorumLocks');
  const { kits } = options;
  if (!Array.isArray(kits) || kits.length < 3) {
    throw new ConfigError(
      'quorumLocks.kits: expected at least 3 kits, one per independent Redis server (with fewer, use kit.locks)',
    );
  }
  for (const kit of kits) {
    if (!kit || typeof kit !== 'object' || !kit.context?.store) {
      throw new ConfigError('quorumLocks.kits: expected kits made by createRedisKit()');
    }
  }
  if (new Set(kits).size !== kits.length) throw new ConfigError('quorumLocks.kits: the same kit is listed twice');
  const drift = options.clockDrift;
  if (drift !== undefined && (typeof drift !== 'number' || !(drift >= 0 && drift < 0.5))) {
    throw new ConfigError(`quorumLocks.clockDrift: expected a number from 0 to 0.5, got ${String(drift)}`);
  }
  return new QuorumLockManager(kits, options);
}
