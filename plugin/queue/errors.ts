// The queue's typed errors: bad input to add() is the caller's mistake (400); a job that keeps failing is not an
// error of the queue at all (it goes to the dead-letter set), so it has no class here.

import { KitError } from '../core/errors.js';

/** A job or its options were rejected before reaching the store (bad id, delay, priority, data too large...). */
export class QueueInputError extends KitError {
  constructor(message: string) {
    super('ERR_KIT_QUEUE_INPUT', message, { status: 400 });
  }
}
