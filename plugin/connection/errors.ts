// Sorting driver errors into "the server answered no" and "the server could not be reached". Only the second
// kind trips the circuit breaker.

import { KitError, StoreCommandError, StoreUnavailableError } from '../core/errors.js';
import { ReplyError } from './types.js';

// Error replies that mean the server is there but cannot serve now: they count as unavailability.
const UNAVAILABLE_REPLIES =
  /^(LOADING|READONLY|CLUSTERDOWN|MASTERDOWN|TRYAGAIN|BUSY\b|NOREPLICAS|MISCONF)|max (daily )?requests? limit/i;

export function isNoScript(error: unknown): boolean {
  return error instanceof Error && /NOSCRIPT/.test(error.message);
}

/** A multi-key call refused because its keys live in different slots (a Cluster, or a sharding proxy). */
export function isCrossSlot(error: unknown): boolean {
  return error instanceof Error && error.message.includes('CROSSSLOT');
}

/** Maps anything a driver threw to a KitError; the cause is kept. */
export function normaliseError(error: unknown, what: string): KitError {
  if (error instanceof KitError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof ReplyError) {
    return UNAVAILABLE_REPLIES.test(message)
      ? new StoreUnavailableError(`${what}: ${message}`, error)
      : new StoreCommandError(`${what}: ${message}`, error);
  }
  // A bug in the calling code (wrong key count, bad argument) is not an outage: it must not open the circuit.
  if (error instanceof TypeError || error instanceof RangeError)
    return new StoreCommandError(`${what}: ${message}`, error);
  return new StoreUnavailableError(`${what}: ${message}`, error);
}
