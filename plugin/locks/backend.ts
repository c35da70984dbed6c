// The storage contract of the lock feature: acquire, extend and release a lease of a named lock of some kind, each
// one atomic step on the store's clock. Implemented in Lua for every Redis-protocol store (redis.ts) and in
// TypeScript for the embedded store (memory.ts); the conformance suite runs both.

export type LockKind = 'mutex' | 'semaphore' | 'read' | 'write';

export interface AcquireRequest {
  kind: LockKind;
  name: string;
  token: string;
  ttlMs: number;
  /** Set when the caller will wait: it is registered as a waiter in the same step as a failed check. */
  waiterId: string;
  /** How long a waiter registration lasts unless renewed by the next attempt. */
  waiterLeaseMs: number;
  fair: boolean;
  /** Most holders at once (1 for a mutex and a writer). */
  limit: number;
}

export type AcquireResult = { ok: true; fence: number } | { ok: false; waitMs: number };

export interface LockBackend {
  acquire(request: AcquireRequest): Promise<AcquireResult>;
  /** True when extended, false when the token no longer holds a lease. */
  extend(kind: LockKind, name: string, token: string, ttlMs: number): Promise<boolean>;
  /** True when released, false when the token held no live lease. */
  release(kind: LockKind, name: string, token: string): Promise<boolean>;
  /**
   * Raises the mutex's last fencing token to at least `floor`, only while `token` holds it (quorum mode: every
   * server of a majority learns the token handed out, see quorum.ts). True when held.
   */
  raiseFence(name: string, token: string, floor: number, ttlMs: number): Promise<boolean>;
  /** Drops a waiter registration (the caller gave up). */
  leave(kind: LockKind, name: string, waiterId: string): Promise<void>;
  /** The pub/sub channel a release of this lock is announced on. */
  channel(kind: LockKind, name: string): string;
}

/** Readers and writers of one read/write lock share keys and a channel. */
export function family(kind: LockKind): 'mutex' | 'semaphore' | 'rw' {
  return kind === 'read' || kind === 'write' ? 'rw' : kind;
}
