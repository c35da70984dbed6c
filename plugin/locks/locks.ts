// kit.locks: leases with fencing tokens on every store, waiting woken by the release itself, automatic extension
// for work done under a lock, semaphores and read/write locks. The storage steps are in redis.ts (Lua) and
// memory.ts (TypeScript); this file is the client side: waiting, local lease tracking, extension, clean-up.

import { randomUUID } from 'node:crypto';
import type { FeatureContext } from '../core/context.js';
import type { Duration } from '../core/duration.js';
import { StoreTimeoutError, StoreUnavailableError } from '../core/errors.js';
import type { KitLogger } from '../core/logger.js';
import { WAIT_BUCKETS } from '../observability/names.js';
import type { AcquireRequest, AcquireResult, LockBackend, LockKind } from './backend.js';
import { LockExtendError, LockInputError, LockLostError, LockNotHeldError, LockTimeoutError } from './errors.js';
import { MemoryLockBackend } from './memory.js';
import { type AcquireOptions, type LocksConfig, resolveAcquire, validateLimit, validateName } from './options.js';
import { RedisLockBackend } from './redis.js';
import { sleep, type WaitTicket, WaitHub } from './wait-hub.js';

/** A held lease. Its `signal` aborts when the lease is, or may be, lost. */
export interface Lock {
  readonly name: string;
  /** Random secret identifying this holder to the store: only it can extend or release the lease. */
  readonly token: string;
  /**
   * Strictly greater than the fencing token of every earlier grant of this lock. Send it along with each write
   * to the protected resource, which rejects a token lower than the highest it has seen.
   */
  readonly fencingToken: number;
  /** Aborts (with LockLostError or LockExtendError as its reason) once the lease cannot be counted on. */
  readonly signal: AbortSignal;
  /** Milliseconds the lease certainly still runs, by this process's clock (0 once lost or released). */
  readonly remainingMs: number;
  /** Restarts the lease at `ttl` from now (default: the lease it was acquired with). */
  extend(ttl?: Duration): Promise<void>;
  /**
   * Ends the lease. Rejects with LockNotHeldError when it had already ended, and with the store's error when the
   * store did not answer (call it again, or let the lease run out). A call after a successful one does nothing.
   */
  release(): Promise<void>;
}

/** What `withLock` hands the function it runs. */
export interface LockScope {
  /** Aborts when the lease is lost or an automatic extension fails: stop working and do not write. */
  signal: AbortSignal;
  fencingToken: number;
  lock: Lock;
}

export interface Semaphore {
  readonly name: string;
  readonly limit: number;
  /** Takes one of `limit` permits. */
  acquire(options?: AcquireOptions): Promise<Lock>;
  /** Takes a permit, runs `fn` with it (extended automatically), and gives it back. */
  withPermit<T>(fn: (scope: LockScope) => Promise<T> | T, options?: AcquireOptions): Promise<T>;
}

export interface ReadWriteLock {
  readonly name: string;
  /** A shared lease: readers run together, never alongside a writer. */
  read(options?: AcquireOptions): Promise<Lock>;
  /** An exclusive lease. A waiting writer keeps new readers out so it cannot be starved. */
  write(options?: AcquireOptions): Promise<Lock>;
  withRead<T>(fn: (scope: LockScope) => Promise<T> | T, options?: AcquireOptions): Promise<T>;
  withWrite<T>(fn: (scope: LockScope) => Promise<T> | T, options?: AcquireOptions): Promise<T>;
}

/** Waiting times of one outcome, in the buckets of WAIT_BUCKETS (seconds; one more entry for everything above). */
export interface LockWaitHistogram {
  counts: number[];
  sumSeconds: number;
  count: number;
}

/** This process's lock figures since start, read at scrape time by kit.metrics. */
export interface LockStats {
  /** Acquisitions that got the lock (at once or after waiting). */
  acquired: number;
  /** Acquisitions whose first attempt found the lock taken. */
  contended: number;
  /** Acquisitions that gave up (wait timeout, or no wait allowed). */
  timeouts: number;
  /** Leases that ran out or were taken over while their holder still believed it held them. */
  leasesLost: number;
  wait: { acquired: LockWaitHistogram; timeout: LockWaitHistogram };
}

export interface Locks {
  /** Counters and waiting-time histograms of this process (for metrics). */
  stats(): LockStats;
  /** Acquires the mutex `name`, waiting up to `waitTimeout` (woken by the release, not by polling). */
  acquire(name: string, options?: AcquireOptions): Promise<Lock>;
  /**
   * Runs `fn` holding the mutex `name`: the lease is extended every third of its TTL while `fn` runs, `signal`
   * aborts if an extension fails, and the lock is released however `fn` ends. Rejects with LockLostError when the
   * lease turned out to be lost, even if `fn` itself finished.
   */
  withLock<T>(name: string, fn: (scope: LockScope) => Promise<T> | T, options?: AcquireOptions): Promise<T>;
  /** A counting semaphore: at most `limit` holders of `name` at once. */
  semaphore(name: string, limit: number): Semaphore;
  /** A read/write lock. */
  rwlock(name: string): ReadWriteLock;
}

/** What a held lease needs from whoever granted it: the steps on the store(s), and the defaults to parse with. */
export interface LeaseOwner {
  readonly backend: Pick<LockBackend, 'extend' | 'release'>;
  readonly config: LocksConfig;
  /** Where a lease lost by its holder is counted (metrics). */
  readonly counters: Pick<LockStats, 'leasesLost'>;
}

export class HeldLock implements Lock {
  // The controller and its expiry timer are made on first use of `signal`: a plain acquire/release pair that
  // never looks at it pays for neither (the uncontended hot path).
  private controller: AbortController | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private extendTimer: NodeJS.Timeout | undefined;
  /** performance.now() by which the lease certainly still runs: measured from when the request was *sent*. */
  private deadline: number;
  private lost: Error | undefined;
  private done = false;

  constructor(
    private readonly manager: LeaseOwner,
    private readonly kind: LockKind,
    readonly name: string,
    readonly token: string,
    readonly fencingToken: number,
    private readonly ttlMs: number,
    sentAt: number,
    /** Taken off every lease this process counts on: the clock drift allowance of quorum mode (0 otherwise). */
    private readonly driftMs = 0,
  ) {
    this.deadline = sentAt + ttlMs - driftMs;
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.checkLost()) this.controller.abort(this.lost);
      else if (!this.done) this.armExpiry();
    }
    return this.controller.signal;
  }

  get remainingMs(): number {
    return this.done || this.checkLost() ? 0 : Math.max(0, this.deadline - performance.now());
  }

  /** Whether the lease is known or presumed lost (its local deadline passed without an extension). */
  private checkLost(): boolean {
    if (!this.lost && !this.done && performance.now() >= this.deadline) {
      this.lose(new LockLostError(this.name, 'the lease ran out before it was extended'));
    }
    return this.lost !== undefined;
  }

  private armExpiry(): void {
    if (!this.controller) return;
    clearTimeout(this.expiryTimer);
    // A timer can fire a little before performance.now() reaches the deadline (libuv measures from its cached loop
    // time, which lags on a busy process): if the lease is not yet past it, arm again rather than never firing.
    this.expiryTimer = setTimeout(
      () => {
        if (!this.checkLost() && !this.done) this.armExpiry();
      },
      Math.max(0, this.deadline - performance.now()) + 1,
    );
    this.expiryTimer.unref();
  }

  lose(reason: Error): void {
    clearTimeout(this.expiryTimer);
    this.stopAutoExtend();
    if (this.lost) return;
    this.lost = reason;
    this.manager.counters.leasesLost++;
    this.controller?.abort(reason);
  }

  async extend(ttl?: Duration): Promise<void> {
    if (this.done) throw new LockNotHeldError(this.name);
    if (this.checkLost()) throw this.lost;
    const ms = ttl === undefined ? this.ttlMs : resolveAcquire({ ttl }, this.manager.config).ttlMs;
    const sentAt = performance.now();
    let extended: boolean;
    try {
      extended = await this.manager.backend.extend(this.kind, this.name, this.token, ms);
    } catch (error) {
      throw new LockExtendError(this.name, error);
    }
    if (!extended) {
      // Released meanwhile by this holder: the release can reach the server first (it may go out in the same turn,
      // or over another of the locks' connections). That is no lost lease.
      if (this.done) throw new LockNotHeldError(this.name);
      const lost = new LockLostError(this.name, 'it was no longer held when extending');
      this.lose(lost);
      throw lost;
    }
    if (this.done || this.lost) return;
    this.deadline = sentAt + ms - this.driftMs;
    this.armExpiry();
  }

  /** Extends every third of the lease while work runs; the first failure aborts the signal. */
  startAutoExtend(): void {
    const every = Math.max(1, Math.floor(this.ttlMs / 3));
    const tick = () => {
      if (this.done) return;
      this.extend().then(
        () => {
          if (this.done || this.lost) return;
          this.extendTimer = setTimeout(tick, every);
          this.extendTimer.unref();
        },
        (error: unknown) => {
          if (!this.done) this.lose(error as Error);
        },
      );
    };
    this.extendTimer = setTimeout(tick, every);
    this.extendTimer.unref();
  }

  stopAutoExtend(): void {
    clearTimeout(this.extendTimer);
    this.extendTimer = undefined;
  }

  async release(): Promise<void> {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.expiryTimer);
    this.stopAutoExtend();
    let released: boolean;
    try {
      released = await this.manager.backend.release(this.kind, this.name, this.token);
    } catch (error) {
      // The store did not answer: the lease may still be held, so let the caller try again.
      this.done = false;
      this.armExpiry();
      throw error;
    }
    if (!released) {
      if (!this.lost) this.manager.counters.leasesLost++;
      throw new LockNotHeldError(this.name);
    }
  }
}

const waitHistogram = (): LockWaitHistogram => ({
  counts: new Array<number>(WAIT_BUCKETS.length + 1).fill(0),
  sumSeconds: 0,
  count: 0,
});

function observeWait(h: LockWaitHistogram, seconds: number): void {
  let i = 0;
  while (i < WAIT_BUCKETS.length && seconds > (WAIT_BUCKETS[i] as number)) i++;
  h.counts[i] = (h.counts[i] as number) + 1;
  h.sumSeconds += seconds;
  h.count++;
}

class LockManager implements Locks {
  readonly backend: LockBackend;
  readonly counters: LockStats = {
    acquired: 0,
    contended: 0,
    timeouts: 0,
    leasesLost: 0,
    wait: { acquired: waitHistogram(), timeout: waitHistogram() },
  };
  private readonly hub: WaitHub;
  private readonly logger: KitLogger;
  private readonly waiterLeaseMs: number;

  constructor(
    private readonly ctx: FeatureContext,
    readonly config: LocksConfig,
  ) {
    const { store } = ctx;
    this.backend = store.mode === 'memory' ? new MemoryLockBackend(store) : new RedisLockBackend(store);
    this.hub = new WaitHub(store, ctx.logger);
    this.logger = ctx.logger;
    // A registration must outlive the longest pause between two attempts, or a release would not notify.
    this.waiterLeaseMs = Math.ceil(config.pollIntervalMs * 1.5) + ctx.commandTimeoutMs;
  }

  acquire(name: string, options?: AcquireOptions): Promise<Lock> {
    return this.take('mutex', name, 1, options);
  }

  stats(): LockStats {
    return this.counters;
  }

  async withLock<T>(name: string, fn: (scope: LockScope) => Promise<T> | T, options?: AcquireOptions): Promise<T> {
    if (typeof fn !== 'function') throw new LockInputError('withLock(name, fn): fn must be a function');
    return runHeld(this.logger, await this.take('mutex', name, 1, options), fn);
  }

  semaphore(name: string, limit: number): Semaphore {
    const n = validateName(name);
    const l = validateLimit(limit);
    return {
      name: n,
      limit: l,
      acquire: (options) => this.take('semaphore', n, l, options),
      withPermit: async (fn, options) => runHeld(this.logger, await this.take('semaphore', n, l, options), fn),
    };
  }

  rwlock(name: string): ReadWriteLock {
    const n = validateName(name);
    return {
      name: n,
      read: (options) => this.take('read', n, 1, options),
      write: (options) => this.take('write', n, 1, options),
      withRead: async (fn, options) => runHeld(this.logger, await this.take('read', n, 1, options), fn),
      withWrite: async (fn, options) => runHeld(this.logger, await this.take('write', n, 1, options), fn),
    };
  }

  private async take(kind: LockKind, rawName: string, limit: number, options?: AcquireOptions): Promise<HeldLock> {
    const name = validateName(rawName);
    const o = resolveAcquire(options, this.config);
    o.signal?.throwIfAborted();
    const token = randomUUID();
    const request = {
      kind,
      name,
      token,
      ttlMs: o.ttlMs,
      // A writer that will wait registers at once: its registration is what holds new readers back, and it
      // must not wait for the subscription below. (Others try first without one: the mutex fast path.)
      waiterId: kind === 'write' && o.waitTimeoutMs > 0 ? token : '',
      waiterLeaseMs: this.waiterLeaseMs,
      fair: o.fair,
      limit,
    };
    const started = performance.now();
    let sentAt = started;
    let result: AcquireResult = await this.acquireOnce(request);
    if (!result.ok) this.counters.contended++;
    if (!result.ok && o.waitTimeoutMs > 0) {
      request.waiterId = token;
      const deadline = started + o.waitTimeoutMs;
      const store = this.ctx.store;
      // Read locks and fair queues: a release may let several (or a specific) waiter in, so wake them all.
      const ticket: WaitTicket | undefined = store.canSubscribe
        ? await this.hub.join(this.backend.channel(kind, name), kind === 'read' || kind === 'write' || o.fair)
        : undefined;
      let backoff = this.config.minPollIntervalMs;
      try {
        for (;;) {
          sentAt = performance.now();
          result = await this.acquireOnce(request);
          if (result.ok) break;
          const left = deadline - performance.now();
          if (left <= 0) break;
          let pause: number;
          if (ticket) {
            // Only a safety net: the release wakes us. Jitter keeps many processes from polling in step.
            pause = this.config.pollIntervalMs * (0.5 + Math.random() / 2);
          } else {
            pause = backoff * (0.5 + Math.random() / 2);
            backoff = Math.min(backoff * 2, this.config.pollIntervalMs);
          }
          // A lease that ends without a release (crashed holder) publishes nothing: wake when it runs out.
          if (result.waitMs >= 0) pause = Math.min(pause, result.waitMs + 1 + Math.random() * 4);
          pause = Math.min(pause, left);
          if (ticket) await ticket.wait(pause, o.signal);
          else await sleep(pause, o.signal);
        }
      } catch (error) {
        this.leave(kind, name, token);
        throw error;
      } finally {
        ticket?.leave();
      }
      if (!result.ok) this.leave(kind, name, token);
    }
    const waited = (performance.now() - started) / 1000;
    if (!result.ok) {
      this.counters.timeouts++;
      observeWait(this.counters.wait.timeout, waited);
      throw new LockTimeoutError(name, o.waitTimeoutMs);
    }
    this.counters.acquired++;
    observeWait(this.counters.wait.acquired, waited);
    return new HeldLock(this, kind, name, token, result.fence, o.ttlMs, sentAt);
  }

  /**
   * One acquire attempt. One that failed for lack of a store may still reach the server later (a reply lost with
   * its connection, or a command the driver re-sends once reconnected): the lease would then be held by nobody
   * until its TTL, keeping every other caller out. So the attempt's token (its own: nobody else's lease is touched)
   * is released in the background until the store answers. Not after a refusal by the open circuit: that attempt
   * never left the process.
   */
  private async acquireOnce(request: AcquireRequest): Promise<AcquireResult> {
    try {
      return await this.backend.acquire(request);
    } catch (error) {
      if (error instanceof StoreTimeoutError || (error instanceof StoreUnavailableError && error.cause !== undefined)) {
        this.abandon(request.kind, request.name, request.token, request.ttlMs);
      }
      throw error;
    }
  }

  private abandoning = 0;

  private abandon(kind: LockKind, name: string, token: string, ttlMs: number): void {
    // Bounded: past this many at once the leases are left to run out (as before this safeguard).
    if (this.abandoning >= 1000) return;
    this.abandoning++;
    // The driver may hold the attempt for as long as it reconnects: keep trying well past the TTL.
    const until = Date.now() + ttlMs + 30_000;
    let delay = 50;
    const attempt = (): void => {
      this.backend.release(kind, name, token).then(
        () => {
          this.abandoning--;
        },
        (error: unknown) => {
          delay = Math.min(delay * 2, 1000);
          // Only an unreachable store is worth another try (not a closed kit).
          if (error instanceof StoreUnavailableError && Date.now() + delay < until) setTimeout(attempt, delay).unref();
          else this.abandoning--;
        },
      );
    };
    setTimeout(attempt, delay).unref();
  }

  private leave(kind: LockKind, name: string, waiterId: string): void {
    // Best effort: an unrenewed registration lapses by itself within waiterLeaseMs.
    this.backend.leave(kind, name, waiterId).catch(() => undefined);
  }

  async close(): Promise<void> {
    // Held leases run out on the store by themselves; their timers are unref'd and stop at the next failed step.
    await this.hub.close();
  }
}

/**
 * Runs `fn` under a held lease: extends it every third of its TTL, aborts `fn`'s signal if that fails, releases it
 * however `fn` ends, and rejects with LockLostError when the lease turned out to be lost.
 */
export async function runHeld<T>(
  logger: KitLogger,
  lock: HeldLock,
  fn: (scope: LockScope) => Promise<T> | T,
): Promise<T> {
  const releaseFailed = (error: unknown): void => {
    if (error instanceof LockNotHeldError) return;
    logger.warn(
      { code: 'ERR_KIT_LOCK_RELEASE', lock: lock.name, err: error },
      'could not release a lock: it will expire at the end of its lease',
    );
  };
  lock.startAutoExtend();
  let result: T;
  try {
    result = await fn({ signal: lock.signal, fencingToken: lock.fencingToken, lock });
  } catch (error) {
    lock.stopAutoExtend();
    await lock.release().catch(releaseFailed);
    throw error;
  }
  lock.stopAutoExtend();
  if (lock.signal.aborted) {
    await lock.release().catch(() => undefined);
    throw lock.signal.reason;
  }
  try {
    await lock.release();
  } catch (error) {
    if (error instanceof LockNotHeldError) {
      throw new LockLostError(lock.name, 'the lease had ended before the work finished');
    }
    releaseFailed(error);
  }
  return result;
}

export function createLocks(ctx: FeatureContext, config: LocksConfig): Locks {
  const manager = new LockManager(ctx, config);
  ctx.onClose(() => manager.close());
  return manager;
}
