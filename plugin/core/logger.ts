// A pino-compatible logger interface, a console default, and coded warnings that are logged once.

/** The subset of pino's interface the kit uses. pino, bunyan-style and console-like objects fit. */
export interface Logger {
  debug?(obj: unknown, msg?: string): void;
  info(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
  error(obj: unknown, msg?: string): void;
}

const TAG = '[express-redis-kit]';

function format(obj: unknown, msg?: string): string {
  if (typeof obj === 'string') return `${TAG} ${obj}`;
  const fields = obj && typeof obj === 'object' ? JSON.stringify(obj, errorReplacer) : String(obj);
  return msg ? `${TAG} ${msg} ${fields}` : `${TAG} ${fields}`;
}

function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error)
    return { name: value.name, message: value.message, code: (value as { code?: unknown }).code };
  return value;
}

/** Logs to the console with a tag. Debug lines are dropped unless REDIS_KIT_DEBUG is set. */
export const consoleLogger: Logger = {
  debug(obj, msg) {
    if (process.env.REDIS_KIT_DEBUG) console.debug(format(obj, msg));
  },
  info(obj, msg) {
    console.info(format(obj, msg));
  },
  warn(obj, msg) {
    console.warn(format(obj, msg));
  },
  error(obj, msg) {
    console.error(format(obj, msg));
  },
};

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

// Commands whose arguments are credentials. ioredis attaches the failed command to its errors (`err.command.args`)
// and loggers such as pino serialise every enumerable field of an error: a WRONGPASS reply would log the password.
const SECRET_COMMANDS = /^(auth|hello|migrate|config)$/i;

function redactError(error: Error): Error {
  const command = (error as { command?: { name?: unknown; args?: unknown } }).command;
  if (!command || typeof command.name !== 'string' || !SECRET_COMMANDS.test(command.name)) return error;
  const copy = new Error(error.message);
  copy.name = error.name;
  copy.stack = error.stack;
  return Object.assign(copy, error, { command: { name: command.name, args: ['***'] } });
}

/** The logged object with credentials taken out of any error in it (at the top level or one field down). */
function redact(obj: unknown): unknown {
  if (obj instanceof Error) return redactError(obj);
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return obj;
  let out: Record<string, unknown> | undefined;
  for (const [key, value] of Object.entries(obj)) {
    if (!(value instanceof Error)) continue;
    const clean = redactError(value);
    if (clean !== value) {
      out ??= { ...(obj as Record<string, unknown>) };
      out[key] = clean;
    }
  }
  return out ?? obj;
}

/** Wraps a logger with `warnOnce(code, …)`: a soft problem is reported the first time only, never as a crash. */
export class KitLogger implements Logger {
  private readonly seen = new Set<string>();

  constructor(private readonly target: Logger) {}

  debug(obj: unknown, msg?: string): void {
    this.target.debug?.(redact(obj), msg);
  }
  info(obj: unknown, msg?: string): void {
    this.target.info(redact(obj), msg);
  }
  warn(obj: unknown, msg?: string): void {
    this.target.warn(redact(obj), msg);
  }
  error(obj: unknown, msg?: string): void {
    this.target.error(redact(obj), msg);
  }

  /** Logs a coded warning, with the troubleshooting entry that explains it. */
  warnCoded(code: string, message: string, fields: Record<string, unknown> = {}): void {
    this.target.warn(redact({ code, docs: `docs/troubleshooting.md#${code.toLowerCase()}`, ...fields }), message);
  }

  /** Logs a coded warning once per code (per kit). Returns whether it was logged now. */
  warnOnce(code: string, message: string, fields: Record<string, unknown> = {}): boolean {
    if (this.seen.has(code)) return false;
    this.seen.add(code);
    this.warnCoded(code, message, fields);
    return true;
  }

  /** Forget a code so that it can be logged again (used when a condition clears, e.g. the store recovers). */
  reset(code: string): void {
    this.seen.delete(code);
  }
}

export function isLogger(value: unknown): value is Logger {
  if (!value || typeof value !== 'object') return false;
  const v = value as Record<string, unknown>;
  return typeof v.info === 'function' && typeof v.warn === 'function' && typeof v.error === 'function';
}

/**
 * A coded warning for a condition that repeats while it lasts (the store away): logged at most once per `intervalMs`
 * per kit, with the count of the ones left out since the last line (`suppressed`). An outage is then logged when it
 * starts and every `intervalMs` while it lasts, and a store that fails now and then does not log a line per failure.
 */
export function throttledWarning(
  logger: KitLogger,
  code: string,
  intervalMs = 10_000,
  now: () => number = Date.now,
): (message: string, fields?: Record<string, unknown>) => void {
  let last = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  return (message, fields = {}) => {
    const t = now();
    if (t - last < intervalMs) {
      suppressed++;
      return;
    }
    logger.warnCoded(code, suppressed ? `${message} (${suppressed} more since the last warning)` : message, {
      ...fields,
      suppressed,
    });
    last = t;
    suppressed = 0;
  };
}
