// Typed errors of realtime channels and presence: each maps to the HTTP status the routes answer with.

import { KitError } from '../core/errors.js';

/** A channel name, member id, event type or body that the kit does not accept. */
export class RealtimeInputError extends KitError {
  constructor(message: string, status = 400) {
    super('ERR_KIT_REALTIME_INPUT', message, { status });
  }
}

/** A channel's presence set is full (`realtime.presence.maxMembers`). */
export class PresenceFullError extends KitError {
  constructor(channel: string, max: number) {
    super('ERR_KIT_PRESENCE_FULL', `channel ${JSON.stringify(channel)} already holds ${max} members`, {
      status: 409,
    });
  }
}
