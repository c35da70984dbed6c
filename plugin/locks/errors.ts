// The lock feature's typed errors: each failure a caller must handle differently has its own class and code.

import { KitError } from '../core/errors.js';

/** The lock (or permit) could not be acquired within `waitTimeout`. Nothing is held. */
export class LockTimeoutError extends KitError {
  constructor(
    readonly lockName: string,
    waitedMs: number,
  ) {
    super('ERR_KIT_LOCK_TIMEOUT', `could not acquire lock ${JSON.stringify(lockName)} within ${waitedMs} ms`, {
      status: 409,
    });
  }
}

/**
 * The lease ended while the caller still thought it held the lock: it expired, or another holder now has it. Work
 * done after this point is not protected; a fenced resource will reject it.
 */
export class LockLostError extends KitError {
  constructor(
    readonly lockName: string,
    detail = 'the lease expired or was taken over',
  ) {
    super('ERR_KIT_LOCK_LOST', `lock ${JSON.stringify(lockName)} lost: ${detail}`, { status: 409 });
  }
}

/**
 * An extension could not be confirmed (the store did not answer in time or is unreachable). The lease may still
 * run until its last known expiry, but nobody can promise it beyond that.
 */
export class LockExtendError extends KitError {
  constructor(
    readonly lockName: string,
    cause: unknown,
  ) {
    super(
      'ERR_KIT_LOCK_EXTEND_FAILED',
      `could not extend lock ${JSON.stringify(lockName)}: ${cause instanceof Error ? cause.message : String(cause)}`,
      { status: 503, cause },
    );
  }
}

/** release() or extend() by a caller that does not hold the lock (any more): its lease had already ended. */
export class LockNotHeldError extends KitError {
  constructor(readonly lockName: string) {
    super('ERR_KIT_LOCK_NOT_HOLDER', `lock ${JSON.stringify(lockName)} is not held by this caller`, {
      status: 409,
    });
  }
}

/** A lock was asked for with a bad name, lease, limit or wait: a programming error, reported before any I/O. */
export class LockInputError extends KitError {
  constructor(message: string) {
    super('ERR_KIT_LOCK_INPUT', message, { status: 400 });
  }
}

/**
 * Quorum mode: fewer than a majority of the independent servers answered (they are down, unreachable or too
 * slow), so no lock could be granted or confirmed. Nothing is held; `errors` has one entry per failed server.
 */
export class LockQuorumError extends KitError {
  constructor(
    readonly lockName: string,
    readonly answered: number,
    readonly quorum: number,
    readonly errors: unknown[],
  ) {
    super(
      'ERR_KIT_LOCK_QUORUM',
      `lock ${JSON.stringify(lockName)}: only ${answered} server(s) answered, a quorum is ${quorum}` +
        (errors[0] instanceof Error ? ` (${errors[0].message})` : ''),
      { status: 503, cause: errors[0] },
    );
  }
}
