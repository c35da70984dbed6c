// Adapter for ioredis (standalone, Sentinel, Cluster) and for objects shaped like it (ioredis-mock).

// The timers module's own setImmediate, not the global one: test runners' fake timers replace the global, and a
// batch uncorked by a fake timer would never be written (every command would hang until the clock is advanced).
import { setImmediate as uncorkSoon } from 'node:timers';
import {
  ReplyError,
  type CommandClient,
  type MessageHandler,
  type RedisArg,
  type RedisCommand,
  type RedisMode,
} from './types.js';

/** The socket part of a connection that write batching uses (a net.Socket or tls.TLSSocket). */
interface Corkable {
  cork(): void;
  uncork(): void;
  writable?: boolean;
}

/** The part of an ioredis Redis or Cluster instance the adapter uses. */
export interface IORedisLike {
  status?: string;
  isCluster?: boolean;
  /** A Redis instance's socket (absent before the first connect). */
  stream?: Corkable;
  /** A Cluster's node connections. */
  nodes?: (role?: 'all' | 'master' | 'slave') => IORedisLike[];
  /** A Cluster's slot table: for each slot, the `host:port` of its master first, then its replicas. */
  slots?: Array<string[] | undefined>;
  /** A node connection's address. */
  options?: { host?: string; port?: number };
  call?: (command: string, ...args: RedisArg[]) => Promise<unknown>;
  evalsha(sha: string, numKeys: number, ...args: RedisArg[]): Promise<unknown>;
  eval(source: string, numKeys: number, ...args: RedisArg[]): Promise<unknown>;
  pipeline(commands?: unknown[][]): { exec(): Promise<Array<[Error | null, unknown]> | null> };
  duplicate(): IORedisLike;
  subscribe(...channels: string[]): Promise<unknown>;
  unsubscribe(...channels: string[]): Promise<unknown>;
  on(event: string, listener: (...args: any[]) => void): unknown;
  removeListener?(event: string, listener: (...args: any[]) => void): unknown;
  quit(): Promise<unknown>;
  disconnect(): void;
}

export function isIORedisLike(value: unknown): value is IORedisLike {
  if (!value || typeof value !== 'object') return false;
  const v = value as Record<string, unknown>;
  return typeof v.evalsha === 'function' && typeof v.pipeline === 'function' && typeof v.duplicate === 'function';
}

// ioredis reports server error replies with an error named ReplyError (from redis-errors); ioredis-mock throws
// plain Errors whose text starts like a Redis error reply. Everything else is a transport problem.
const REPLY_TEXT =
  /^(ERR|NOSCRIPT|WRONGTYPE|EXECABORT|BUSY|LOADING|READONLY|CLUSTERDOWN|MASTERDOWN|TRYAGAIN|NOREPLICAS|MISCONF|NOPERM|NOAUTH|OOM|CROSSSLOT|Error trying to loading|[A-Z]+ )/;

function classify(error: unknown, mock: boolean): unknown {
  if (!(error instanceof Error)) return error;
  if (error.name === 'ReplyError' || mock || REPLY_TEXT.test(error.message)) {
    const reply = new ReplyError(error.message);
    reply.cause = error;
    return reply;
  }
  return error;
}

/**
 * Write batching: the first command of an event-loop turn corks the connection's socket and the rest of the turn's
 * commands queue behind it; a setImmediate uncorks it, so everything the turn sent leaves in one write. Under HTTP
 * load, the requests libuv read in one poll phase then cost one write system call to Redis instead of one each, and
 * Redis reads, runs and answers them together (one read, one write on its side too). Unlike ioredis's
 * auto-pipelining, nothing waits for an earlier batch's replies, and each command keeps its own promise, timeout
 * and error, so callers that await one command at a time lose only the rest of the current turn.
 *
 * A batch is written as soon as it holds MAX_BATCH commands, and the next one corked: Redis starts on the first
 * commands of a busy turn while the process is still producing the rest, instead of the two taking turns (one
 * whole batch each way). Measured with 50 lock callers: see docs/performance.md (locks).
 */
export const MAX_BATCH = 16;

class WriteBatcher {
  private corked: Corkable[] = [];
  /** Commands in the corked batch. */
  private held = 0;
  private scheduled = false;
  private readonly flush = (): void => {
    this.scheduled = false;
    this.release();
  };

  constructor(private readonly client: IORedisLike) {}

  /** Writes the held batch now (the next command opens a new one). */
  release(): void {
    const corked = this.corked;
    this.corked = [];
    this.held = 0;
    for (const stream of corked) stream.uncork();
  }

  /** Called before each command: corks the sockets the command may be written to, once per batch. */
  hold(): void {
    if (this.corked.length > 0) {
      if (++this.held <= MAX_BATCH) return;
      // A full batch leaves now; this command opens the next one.
      this.release();
    }
    const client = this.client;
    if (client.isCluster) {
      // Which node a command goes to is ioredis's choice: hold every connected node for this batch.
      for (const node of client.nodes?.('all') ?? []) this.cork(node);
    } else this.cork(client);
    if (this.corked.length === 0) return;
    this.held = 1;
    if (!this.scheduled) {
      this.scheduled = true;
      uncorkSoon(this.flush);
    }
  }

  private cork(client: IORedisLike): void {
    const stream = client.stream;
    // Only a ready connection writes at once; commands sent while connecting sit in ioredis's offline queue.
    if (client.status !== 'ready' || !stream || stream.writable === false || typeof stream.cork !== 'function') return;
    stream.cork();
    this.corked.push(stream);
  }
}

export class IORedisAdapter implements CommandClient {
  readonly canSubscribe = true;
  private readonly batcher: WriteBatcher | undefined;
  private subscriber?: IORedisLike;
  private subscriberReady?: Promise<IORedisLike>;
  private readonly handlers = new Map<string, MessageHandler>();
  private readonly isMock: boolean;

  constructor(
    private readonly client: IORedisLike,
    readonly mode: RedisMode,
    /** Whether the kit created the client (and so must end it). */
    private readonly owned: boolean,
    private readonly onError: (error: Error, where: string) => void,
    /** Batch each event-loop turn's commands into one write (see WriteBatcher). @default true */
    batch = true,
  ) {
    this.isMock = typeof client.call !== 'function';
    this.batcher = batch && !this.isMock ? new WriteBatcher(client) : undefined;
    if (owned) client.on('error', (error: Error) => onError(error, 'connection'));
  }

  async command(name: string, args: readonly RedisArg[]): Promise<unknown> {
    this.batcher?.hold();
    try {
      if (this.client.call) return await this.client.call(name, ...args);
      // ioredis-mock has no generic call: use its method of the same name.
      const method = (this.client as unknown as Record<string, unknown>)[name.toLowerCase()];
      if (typeof method !== 'function') throw new ReplyError(`ERR unknown command '${name}'`);
      return await (method as (...a: RedisArg[]) => Promise<unknown>).apply(this.client, [...args]);
    } catch (error) {
      throw classify(error, this.isMock);
    }
  }

  async evalsha(sha: string, keys: readonly string[], args: readonly RedisArg[]): Promise<unknown> {
    this.batcher?.hold();
    try {
      return await this.client.evalsha(sha, keys.length, ...keys, ...args);
    } catch (error) {
      throw classify(error, this.isMock);
    }
  }

  async eval(source: string, keys: readonly string[], args: readonly RedisArg[]): Promise<unknown> {
    this.batcher?.hold();
    try {
      return await this.client.eval(source, keys.length, ...keys, ...args);
    } catch (error) {
      throw classify(error, this.isMock);
    }
  }

  async pipeline(commands: readonly RedisCommand[]): Promise<unknown[]> {
    if (commands.length === 0) return [];
    // A Cluster pipeline must keep every key in one slot; separate commands let ioredis route (and, with
    // auto-pipelining, batch) them per node instead.
    if (this.mode === 'cluster') {
      return Promise.all(commands.map(([name, ...args]) => this.command(name, args).catch((error: unknown) => error)));
    }
    // ioredis looks pipeline entries up as its own lower-case method names ('HINCRBY' would throw a TypeError inside
    // it); a name it has no method for (ioredis-mock lacks some) is an unknown command, i.e. an error reply.
    const client = this.client as unknown as Record<string, unknown>;
    const entries = commands.map(([name, ...args]) => {
      const method = name.toLowerCase();
      if (typeof client[method] !== 'function') throw new ReplyError(`ERR unknown command '${name}' in a pipeline`);
      return [method, ...args];
    });
    this.batcher?.hold();
    const replies = await this.client.pipeline(entries).exec();
    if (!replies) throw new Error('pipeline was discarded');
    return replies.map(([error, value]) => (error ? classify(error, this.isMock) : value));
  }

  async subscribe(channel: string, handler: MessageHandler): Promise<void> {
    const subscriber = await this.subscriberConnection();
    this.handlers.set(channel, handler);
    try {
      await subscriber.subscribe(channel);
    } catch (error) {
      this.handlers.delete(channel);
      throw classify(error, this.isMock);
    }
  }

  async unsubscribe(channel: string): Promise<void> {
    this.handlers.delete(channel);
    if (this.subscriber) await this.subscriber.unsubscribe(channel).catch(() => undefined);
  }

  async pingMasters(timeoutMs = 1000): Promise<number> {
    const masters = this.mode === 'cluster' ? (this.client.nodes?.('master') ?? []) : [];
    if (masters.length === 0) {
      await this.command('PING', []);
      return 1;
    }
    // Each node within 80 % of the budget: a master that hangs (paused, partitioned) must count as one node
    // down, not run into the caller's deadline, which is an outage for the circuit breaker.
    const replies = await Promise.allSettled(
      masters.map((node) => {
        const ping = node.call ? node.call('PING') : (node as unknown as { ping(): Promise<unknown> }).ping();
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('PING timed out')), Math.max(1, Math.floor(timeoutMs * 0.8)));
        });
        return Promise.race([ping, late]).finally(() => clearTimeout(timer));
      }),
    );
    const failed = replies.findIndex((r) => r.status === 'rejected');
    // Nobody answered: an outage like any other (the circuit breaker counts it).
    if (failed >= 0 && replies.every((r) => r.status === 'rejected')) {
      throw classify((replies[failed] as PromiseRejectedResult).reason, this.isMock);
    }
    // Part of the cluster is down: a reply-class error (not CLUSTERDOWN, which the kit treats as an outage), so
    // the circuit breaker, which serves the reachable slots, does not count it.
    if (failed >= 0) {
      const node = masters[failed] as IORedisLike;
      throw new ReplyError(`NODEDOWN master ${node.options?.host}:${node.options?.port} did not answer`);
    }
    // A master that stopped answering leaves ioredis's pool (until the next slot refresh puts it back); the slot
    // table still names it.
    const connected = new Set(masters.map((n) => `${n.options?.host}:${n.options?.port}`));
    for (const owners of this.client.slots ?? []) {
      const master = owners?.[0];
      if (master && !connected.has(master)) throw new ReplyError(`NODEDOWN master ${master} is not connected`);
    }
    return masters.length;
  }

  flushWrites(): void {
    this.batcher?.release();
  }

  dedicated(): CommandClient | undefined {
    if (this.mode === 'cluster' || this.isMock) return undefined;
    const copy = (this.client.duplicate as (override?: object) => IORedisLike)({ enableAutoPipelining: false });
    // Its caller awaits one command at a time: nothing to batch, so no turn's wait either.
    return new IORedisAdapter(copy, this.mode, true, this.onError, false);
  }

  private subscriberConnection(): Promise<IORedisLike> {
    // One extra connection per kit for every subscription, created on first use. ioredis re-subscribes on its own
    // after a reconnect.
    this.subscriberReady ??= Promise.resolve().then(() => {
      const subscriber = this.client.duplicate();
      subscriber.on('error', (error: Error) => this.onError(error, 'subscriber'));
      subscriber.on('message', (channel: string, message: string) => {
        this.handlers.get(channel)?.(message, channel);
      });
      this.subscriber = subscriber;
      return subscriber;
    });
    return this.subscriberReady;
  }

  async close(): Promise<void> {
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    this.handlers.clear();
    if (subscriber) await quietQuit(subscriber);
    if (this.owned) await quietQuit(this.client);
  }
}

async function quietQuit(client: IORedisLike): Promise<void> {
  // QUIT waits for the server; when the server is gone it would wait for a reconnect, so bound it.
  if (client.status === 'end') return;
  // Not connected (yet): there is nothing to say goodbye to, and QUIT on a connecting Cluster leaves a retry timer.
  if (client.status !== undefined && client.status !== 'ready') {
    client.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const quit = client.quit().catch(() => undefined);
  const bounded = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, 200);
  });
  await Promise.race([quit, bounded]);
  clearTimeout(timer);
  client.disconnect();
}
