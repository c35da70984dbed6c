// The Store every feature is handed: one per kit, resolved once. It is either the embedded MemoryStore or a
// RedisStore in front of one CommandClient, and both offer the same small set of generic operations (the store
// conformance suite runs them unchanged on every kind). Every Redis call goes through `exec`, which applies the
// circuit breaker and the command timeout, so no request ever waits on a dead server.

import { ClosedError, KitError, StoreCommandError, StoreTimeoutError, StoreUnavailableError } from '../core/errors.js';
import type { KeyBuilder } from '../core/keys.js';
import type { KitLogger } from '../core/logger.js';
import { CircuitBreaker, type CircuitState } from './breaker.js';
import { Deadlines } from './deadlines.js';
import { normaliseError } from './errors.js';
import type { MemoryEngine } from './memory.js';
import { runScript } from './script.js';
import { incrTtl, serverTime } from './scripts.generated.js';
import {
  type CommandClient,
  type MessageHandler,
  type RedisArg,
  type RedisCommand,
  type RedisMode,
  ReplyError,
  type Script,
  type StoreMode,
} from './types.js';

/** Errors raised before the operation left the process (open circuit): the store never saw it. */
const unsent = new WeakSet<object>();

/**
 * Whether `error` says the operation never reached the store (the circuit was open, or the store closed), so that
 * it certainly had no effect there. False means it may have run: a timeout or a reset can lose the reply only.
 */
export function neverSent(error: unknown): boolean {
  return error instanceof ClosedError || (typeof error === 'object' && error !== null && unsent.has(error));
}
export interface StoreInfo {
  mode: StoreMode;
  /** Server version, or `embedded` for the memory store. */
  version: string;
  /** Raw INFO fields where the store has them. */
  details: Record<string, string>;
}

export interface CounterResult {
  value: number;
  /** Remaining time to live in ms, -1 when the key has none. */
  ttlMs: number;
}

interface StoreBase {
  readonly mode: StoreMode;
  readonly keys: KeyBuilder;
  /** Whether `subscribe` delivers pushed messages (false on Upstash REST). */
  readonly canSubscribe: boolean;
  readonly circuitState: CircuitState;
  get(key: string): Promise<string | null>;
  /** Sets a string value, with a time to live when `ttlMs` > 0. */
  set(key: string, value: string, ttlMs?: number): Promise<void>;
  del(...keys: string[]): Promise<number>;
  /** Atomically adds `by` and gives the key `ttlMs` when it has no expiry yet. */
  incrBy(key: string, by: number, ttlMs: number): Promise<CounterResult>;
  pttl(key: string): Promise<number>;
  /** The store's clock in epoch ms (the server's, for Redis). */
  time(): Promise<number>;
  /** Round-trip latency in ms. */
  /**
   * Round trip of a PING in ms. With `everyNode`, a Cluster's masters are all asked and all must answer (health);
   * without, one node answers (readiness of the connection, the circuit's probe).
   */
  ping(options?: { timeoutMs?: number; everyNode?: boolean }): Promise<number>;
  info(options?: { timeoutMs?: number }): Promise<StoreInfo>;
  publish(channel: string, message: string): Promise<number>;
  /** Subscribes a handler; resolves to the function that removes it. */
  subscribe(channel: string, handler: MessageHandler): Promise<() => Promise<void>>;
  /**
   * Resolves when the store is connected and answering (immediately for memory); rejects on a set-up problem
   * (e.g. a missing driver) or when the server does not answer within the command timeout.
   */
  ready(): Promise<void>;
  close(): Promise<void>;
}

export interface StoreOptions {
  keys: KeyBuilder;
  logger: KitLogger;
  commandTimeoutMs: number;
}

export class MemoryStore implements StoreBase {
  readonly mode = 'memory' as const;
  readonly canSubscribe = true;
  readonly circuitState: CircuitState = 'closed';
  readonly keys: KeyBuilder;
  private closed = false;

  constructor(
    readonly engine: MemoryEngine,
    options: Pick<StoreOptions, 'keys'>,
  ) {
    this.keys = options.keys;
  }

  private check(): void {
    if (this.closed) throw new ClosedError('the store');
  }

  async get(key: string): Promise<string | null> {
    this.check();
    const value = this.engine.get(key);
    return typeof value === 'string' ? value : value === undefined ? null : String(value);
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    this.check();
    this.engine.set(key, value, ttlMs);
  }

  async del(...keys: string[]): Promise<number> {
    this.check();
    let n = 0;
    for (const key of keys) if (this.engine.get(key) !== undefined && this.engine.delete(key)) n++;
    return n;
  }

  async incrBy(key: string, by: number, ttlMs: number): Promise<CounterResult> {
    this.check();
    const current = this.engine.get(key);
    const base = current === undefined ? 0 : Number(current);
    if (!Number.isInteger(base)) throw new StoreCommandError(`incrBy: value at ${key} is not an integer`);
    const value = base + by;
    if (current === undefined) this.engine.set(key, String(value), 0);
    else this.engine.update(key, String(value));
    let remaining = this.engine.pttl(key);
    if (ttlMs > 0 && remaining < 0) {
      this.engine.expire(key, ttlMs);
      remaining = ttlMs;
    }
    return { value, ttlMs: remaining };
  }

  async pttl(key: string): Promise<number> {
    this.check();
    return this.engine.pttl(key);
  }

  async time(): Promise<number> {
    return this.engine.now();
  }

  async ping(): Promise<number> {
    this.check();
    return 0;
  }

  async info(): Promise<StoreInfo> {
    this.check();
    return {
      mode: 'memory',
      version: 'embedded',
      details: {
        keys: String(this.engine.size),
        max_keys: String(this.engine.options.maxKeys),
        evicted_keys: String(this.engine.evictions),
      },
    };
  }

  async publish(channel: string, message: string): Promise<number> {
    this.check();
    return this.engine.publish(channel, message);
  }

  async subscribe(channel: string, handler: MessageHandler): Promise<() => Promise<void>> {
    this.check();
    this.engine.subscribe(channel, handler);
    return async () => this.engine.unsubscribe(channel, handler);
  }

  async ready(): Promise<void> {}

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.engine.close();
  }
}

export interface RedisStoreOptions extends StoreOptions {
  mode: RedisMode;
  /** Bound on the first PING of ready(), which includes connecting. @default commandTimeoutMs */
  connectTimeoutMs?: number;
  /** Creates the adapter; called once, at construction (may load an optional peer dependency). */
  connect: () => Promise<CommandClient>;
  breaker: { failureThreshold: number; cooldownMs: number } | false;
}

export class RedisStore implements StoreBase {
  readonly mode: RedisMode;
  readonly keys: KeyBuilder;
  readonly breaker: CircuitBreaker | null;
  private client: CommandClient | undefined;
  private readonly connecting: Promise<CommandClient>;
  private readonly logger: KitLogger;
  readonly commandTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private closed = false;
  private probeTimer: NodeJS.Timeout | undefined;
  private readonly subscriptions = new Map<string, { handlers: Set<MessageHandler>; confirmed: Promise<void> }>();
  private readonly deadlines: Deadlines;
  private readonly otherDeadlines = new Map<number, Deadlines>();
  private readonly scriptLabels = new WeakMap<Script, string>();
  /** Commands that failed for lack of a store (timeouts, connection errors, open circuit). */
  failures = 0;
  /**
   * Told of every command that reached the client: what it was (`GET`, `script name`, `pipeline`), how long it
   * took in ms, and whether it failed. The metrics registry sets it; unset, exec does not read the clock.
   */
  observer: ((what: string, ms: number, failed: boolean) => void) | undefined;

  constructor(options: RedisStoreOptions) {
    this.mode = options.mode;
    this.keys = options.keys;
    this.logger = options.logger;
    this.commandTimeoutMs = options.commandTimeoutMs;
    this.connectTimeoutMs = options.connectTimeoutMs ?? options.commandTimeoutMs;
    this.deadlines = new Deadlines(options.commandTimeoutMs);
    this.breaker = options.breaker
      ? new CircuitBreaker({ ...options.breaker, onChange: (state, previous) => this.onCircuitChange(state, previous) })
      : null;
    this.connecting = options.connect().then(
      (client) => {
        this.client = client;
        if (this.closed) void client.close();
        return client;
      },
      (error: unknown) => {
        this.logger.error({ err: error }, 'the store could not be set up');
        throw error;
      },
    );
    // A failed set-up is reported by ready() and by every command; do not leave an unhandled rejection.
    this.connecting.catch(() => undefined);
  }

  get canSubscribe(): boolean {
    return this.mode !== 'upstash';
  }

  get circuitState(): CircuitState {
    return this.breaker?.state ?? 'closed';
  }

  /**
   * Runs one operation against the client: fails fast when the circuit is open, bounds the wait by the command
   * timeout, and maps driver errors to KitErrors. Only transport failures count against the circuit.
   * One promise per call, and no timer of its own at the common timeout (see Deadlines): this is every feature's
   * hot path.
   */
  exec<T>(what: string, op: (client: CommandClient) => Promise<T>, timeoutMs = this.commandTimeoutMs): Promise<T> {
    if (this.closed) return Promise.reject(new ClosedError('the store'));
    const breaker = this.breaker;
    if (breaker && !breaker.allow()) {
      this.failures++;
      const error = new StoreUnavailableError(
        `${what}: the store's circuit is open (retrying in ${breaker.retryInMs()} ms)`,
      );
      unsent.add(error);
      return Promise.reject(error);
    }
    const observer = this.observer;
    const started = observer ? performance.now() : 0;
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const fail = (error: unknown): void => {
        observer?.(what, performance.now() - started, true);
        // ioredis's own commandTimeout (same length as ours) may fire first: report it as the timeout it is.
        const kitError =
          error instanceof Error && error.message === 'Command timed out'
            ? new StoreTimeoutError(what, timeoutMs)
            : normaliseError(error, what);
        if (kitError instanceof StoreUnavailableError) {
          this.failures++;
          breaker?.failure();
        } else {
          breaker?.success();
        }
        reject(kitError);
      };
      const deadlines = this.deadlinesFor(timeoutMs);
      const deadline = deadlines.add(() => {
        if (settled) return;
        settled = true;
        fail(new StoreTimeoutError(what, timeoutMs));
      });
      let pending: Promise<T>;
      try {
        const client = this.client;
        pending = client ? op(client) : this.connecting.then(op);
      } catch (error) {
        pending = Promise.reject(error);
      }
      pending.then(
        (result) => {
          if (settled) return;
          settled = true;
          deadlines.settle(deadline);
          breaker?.success();
          observer?.(what, performance.now() - started, false);
          resolve(result);
        },
        (error: unknown) => {
          if (settled) return;
          settled = true;
          deadlines.settle(deadline);
          fail(error);
        },
      );
    });
  }

  /** One deadline queue per distinct timeout (the command timeout, and the few a caller asks for). */
  private deadlinesFor(timeoutMs: number): Deadlines {
    if (timeoutMs === this.deadlines.timeoutMs) return this.deadlines;
    let queue = this.otherDeadlines.get(timeoutMs);
    if (!queue) {
      queue = new Deadlines(timeoutMs);
      // Bounded: a caller inventing a new timeout per call gets a queue (and timer) of its own each time.
      if (this.otherDeadlines.size < 16) this.otherDeadlines.set(timeoutMs, queue);
    }
    return queue;
  }

  command(name: string, ...args: RedisArg[]): Promise<unknown> {
    return this.exec(name, (c) => c.command(name, args));
  }

  script(script: Script, keys: readonly string[], args: readonly RedisArg[]): Promise<unknown> {
    // One label string per script, not one per call: the metrics observer looks it up in a Map, and a string
    // built per call would be hashed per call.
    let what = this.scriptLabels.get(script);
    if (what === undefined) {
      what = `script ${script.name}`;
      this.scriptLabels.set(script, what);
    }
    return this.exec(what, (c) => runScript(c, script, keys, args));
  }

  async pipeline(commands: readonly RedisCommand[]): Promise<unknown[]> {
    const replies = await this.exec('pipeline', (c) => c.pipeline(commands));
    // One reply can be a transport failure of that command alone (ioredis's commandTimeout, a Cluster node that is
    // down): give it the typed error a single command would get, so a caller that rethrows it answers 503, not 500.
    return replies.map((reply) =>
      reply instanceof Error && !(reply instanceof ReplyError) && !(reply instanceof KitError)
        ? reply.message === 'Command timed out'
          ? new StoreTimeoutError('pipeline', this.commandTimeoutMs)
          : normaliseError(reply, 'pipeline')
        : reply,
    );
  }

  async get(key: string): Promise<string | null> {
    return (await this.command('GET', key)) as string | null;
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    if (ttlMs && ttlMs > 0) await this.command('SET', key, value, 'PX', ttlMs);
    else await this.command('SET', key, value);
  }

  async del(...keys: string[]): Promise<number> {
    if (keys.length === 0) return 0;
    // One DEL per key: keys of different ids live in different Cluster slots.
    if (this.mode === 'cluster' && keys.length > 1) {
      const replies = await this.pipeline(keys.map((k) => ['DEL', k] as const));
      // A node that failed must not pass for "nothing to delete" (a revocation or invalidation would look done).
      const failed = replies.find((r) => r instanceof Error);
      if (failed) throw normaliseError(failed, 'DEL');
      return replies.reduce<number>((sum, r) => sum + (typeof r === 'number' ? r : 0), 0);
    }
    return Number(await this.command('DEL', ...keys));
  }

  async incrBy(key: string, by: number, ttlMs: number): Promise<CounterResult> {
    const [value, ttl] = (await this.script(incrTtl, [key], [by, ttlMs])) as [number, number];
    return { value: Number(value), ttlMs: Number(ttl) };
  }

  async pttl(key: string): Promise<number> {
    return Number(await this.command('PTTL', key));
  }

  async time(): Promise<number> {
    return Number(await this.script(serverTime, [], []));
  }

  async ping(options: { timeoutMs?: number; everyNode?: boolean } = {}): Promise<number> {
    const started = performance.now();
    // On a Cluster a keyless PING reaches one node only: health asks every master.
    await this.exec(
      'PING',
      (c) =>
        options.everyNode && c.pingMasters
          ? c.pingMasters(options.timeoutMs ?? this.commandTimeoutMs)
          : c.command('PING', []),
      options.timeoutMs,
    );
    return performance.now() - started;
  }

  async info(options: { timeoutMs?: number } = {}): Promise<StoreInfo> {
    const text = String(await this.exec('INFO', (c) => c.command('INFO', ['server']), options.timeoutMs));
    const details: Record<string, string> = {};
    for (const line of text.split(/\r?\n/)) {
      const i = line.indexOf(':');
      if (i > 0 && !line.startsWith('#')) details[line.slice(0, i)] = line.slice(i + 1);
    }
    return { mode: this.mode, version: details.redis_version ?? 'unknown', details };
  }

  async publish(channel: string, message: string): Promise<number> {
    return Number(await this.command('PUBLISH', channel, message));
  }

  async subscribe(channel: string, handler: MessageHandler): Promise<() => Promise<void>> {
    if (!this.canSubscribe) {
      throw new StoreUnavailableError('this store cannot hold subscriptions (Upstash REST): poll instead');
    }
    // One server subscription per channel, shared by every handler of this kit. A second caller for a channel
    // whose SUBSCRIBE is still in flight waits for the same confirmation, so neither misses early messages.
    let subscription = this.subscriptions.get(channel);
    if (!subscription) {
      const handlers = new Set<MessageHandler>();
      const confirmed = this.exec('SUBSCRIBE', (c) =>
        c.subscribe(channel, (message, ch) => {
          for (const h of handlers) h(message, ch);
        }),
      );
      subscription = { handlers, confirmed };
      this.subscriptions.set(channel, subscription);
      confirmed.catch(() => {
        if (this.subscriptions.get(channel) === subscription) this.subscriptions.delete(channel);
      });
    }
    await subscription.confirmed;
    // The last other handler may have left (and UNSUBSCRIBEd) while this one awaited the confirmation.
    if (this.subscriptions.get(channel) !== subscription) return this.subscribe(channel, handler);
    subscription.handlers.add(handler);
    const current = subscription;
    return async () => {
      current.handlers.delete(handler);
      if (current.handlers.size === 0 && this.subscriptions.get(channel) === current) {
        this.subscriptions.delete(channel);
        // Through exec, so a silent server cannot hang close() on it.
        await this.exec('UNSUBSCRIBE', (c) => c.unsubscribe(channel)).catch(() => undefined);
      }
    };
  }

  /**
   * Resolves once the driver is loaded and the server answered a PING. The first PING includes setting up the
   * connection, so it is bounded by the connect timeout when that is the longer of the two.
   */
  async ready(): Promise<void> {
    await this.connecting;
    await this.ping({ timeoutMs: Math.max(this.commandTimeoutMs, this.connectTimeoutMs) });
  }

  /** Writes the commands held for this turn's batch now (see CommandClient.flushWrites); a no-op elsewhere. */
  flushWrites(): void {
    this.client?.flushWrites?.();
  }

  /**
   * A second connection without auto-pipelining for one feature's hot path (see CommandClient.dedicated), owned
   * by the caller, who closes it. Run commands on it through `exec` so the breaker and timeout still apply.
   * Undefined on Upstash REST, Cluster and ioredis-mock.
   */
  async dedicated(): Promise<CommandClient | undefined> {
    if (this.closed) throw new ClosedError('the store');
    const client = this.client ?? (await this.connecting);
    return client.dedicated?.();
  }

  private onCircuitChange(state: CircuitState, previous: CircuitState): void {
    if (state === 'open') {
      this.logger.warn(
        { code: 'ERR_KIT_CIRCUIT_OPEN', mode: this.mode, previous },
        'store unreachable: circuit opened; requests fail fast until a probe succeeds',
      );
      this.scheduleProbe();
    } else if (state === 'closed') {
      this.logger.info({ mode: this.mode }, 'store reachable again: circuit closed');
    }
  }

  // While the circuit is open, probe in the background so it closes again even when no traffic arrives.
  private scheduleProbe(): void {
    if (this.closed || !this.breaker) return;
    clearTimeout(this.probeTimer);
    this.probeTimer = setTimeout(() => {
      if (this.closed || this.breaker?.state === 'closed') return;
      this.ping().catch(() => {
        if (this.breaker?.state !== 'closed') this.scheduleProbe();
      });
    }, this.breaker.retryInMs() + 10);
    this.probeTimer.unref();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.probeTimer);
    this.subscriptions.clear();
    const client = this.client ?? (await this.connecting.catch(() => undefined));
    await client?.close();
  }
}

export type Store = MemoryStore | RedisStore;
