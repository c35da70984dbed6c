// Typed errors of the semantic cache: bad requests are 4xx with a stable code, never a 500.

import { KitError } from '../core/errors.js';

/** The request given to the cache (or to its Express helper) is malformed: fix the caller. */
export class SemanticCacheInputError extends KitError {
  constructor(message: string, status = 400) {
    super('ERR_KIT_SEMANTIC_INPUT', message, { status });
  }
}

/** The embedder failed or did not answer within `embedTimeout`. Lookups turn this into a miss. */
export class EmbedderError extends KitError {
  constructor(message: string, cause?: unknown) {
    super('ERR_KIT_EMBEDDER', message, { status: 502, cause });
  }
}
