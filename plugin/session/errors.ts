// Typed errors of the session feature.

import { KitError } from '../core/errors.js';

/** A session could not be created because its id was revoked meanwhile (log-out-everywhere won the race). */
export class SessionRevokedError extends KitError {
  constructor() {
    super('ERR_KIT_SESSION_REVOKED', 'the session was revoked while it was being created', { status: 401 });
  }
}

/** The session holds more data than `maxBytes` allows; nothing was written. */
export class SessionTooLargeError extends KitError {
  constructor(bytes: number, max: number) {
    super('ERR_KIT_SESSION_TOO_LARGE', `session data is ${bytes} bytes, over the maxBytes limit of ${max}`, {
      status: 500,
    });
  }
}

/** reload() found no live session in the store (it expired or was revoked). */
export class SessionGoneError extends KitError {
  constructor() {
    super('ERR_KIT_SESSION_GONE', 'the session no longer exists in the store', { status: 401 });
  }
}
