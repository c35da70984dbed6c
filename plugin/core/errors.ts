// Typed, named errors for the whole kit. Every error has a stable `code`; those that map to a response carry
// the HTTP status the middleware answers with.

export class KitError extends Error {
  /** Stable machine-readable code, e.g. `ERR_KIT_CONFIG`. */
  readonly code: string;
  /** HTTP status a middleware answers with when this error ends a request. */
  readonly status: number;

  constructor(code: string, message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = options.status ?? 500;
  }
}

/** The kit was configured wrongly. Thrown at construction, never inside a request. */
export class ConfigError extends KitError {
  constructor(message: string) {
    super('ERR_KIT_CONFIG', message);
  }
}

/** The store could not be reached: the circuit is open, the connection is down, or the server refused. */
export class StoreUnavailableError extends KitError {
  constructor(message: string, cause?: unknown) {
    super('ERR_KIT_STORE_UNAVAILABLE', message, { status: 503, cause });
  }
}

/** A store command did not answer within the command timeout. */
export class StoreTimeoutError extends StoreUnavailableError {
  override readonly code = 'ERR_KIT_STORE_TIMEOUT';
  constructor(what: string, timeoutMs: number) {
    super(`${what} did not answer within ${timeoutMs} ms`);
  }
}

/** The kit (or a feature) was used after close(). */
export class ClosedError extends KitError {
  constructor(what = 'the kit') {
    super('ERR_KIT_CLOSED', `${what} has been closed`, { status: 503 });
  }
}

/** The store answered with an error reply (wrong type, script error): the server is up, the command is wrong. */
export class StoreCommandError extends KitError {
  constructor(message: string, cause?: unknown) {
    super('ERR_KIT_STORE_COMMAND', message, { status: 500, cause });
  }
}
