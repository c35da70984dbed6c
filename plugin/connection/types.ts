// The narrow command interface every Redis-protocol store is reached through. Features never import a driver:
// they get a Store, and the Store talks to one of these adapters.

export type StoreMode = 'memory' | 'standalone' | 'sentinel' | 'cluster' | 'upstash';
export type RedisMode = Exclude<StoreMode, 'memory'>;
export type RedisArg = string | number | Buffer;
export type RedisCommand = readonly [name: string, ...args: RedisArg[]];

/** A Lua script as shipped in the package: text and SHA1 computed at build time. */
export interface Script {
  readonly name: string;
  readonly source: string;
  readonly sha: string;
  /** How many KEYS the script expects (from its header comment). */
  readonly keys: number;
}

/** What the store's pub/sub delivers to a handler. */
export type MessageHandler = (message: string, channel: string) => void;

export interface CommandClient {
  readonly mode: RedisMode;
  /** Whether this client can hold a subscription (TCP yes, REST no). */
  readonly canSubscribe: boolean;
  command(name: string, args: readonly RedisArg[]): Promise<unknown>;
  evalsha(sha: string, keys: readonly string[], args: readonly RedisArg[]): Promise<unknown>;
  eval(source: string, keys: readonly string[], args: readonly RedisArg[]): Promise<unknown>;
  /**
   * Several commands in as few round trips as the client allows. Not atomic. Each slot holds the reply or the
   * Error for that command.
   */
  pipeline(commands: readonly RedisCommand[]): Promise<unknown[]>;
  /** Subscribe on a dedicated connection; resolves once the server confirmed. Only when canSubscribe. */
  subscribe(channel: string, handler: MessageHandler): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  /** Ends every connection this adapter opened. An instance the user passed in is left open. */
  close(): Promise<void>;
  /**
   * A new connection to the same server without auto-pipelining, owned by the caller, for a feature whose hot
   * path awaits one call at a time (auto-pipelining defers each write to the next event-loop turn). Undefined
   * where there is no such thing (REST, Cluster, ioredis-mock).
   */
  dedicated?(): CommandClient | undefined;
  /**
   * Writes the commands held for the current batch now instead of at the end of the event-loop turn (see
   * WriteBatcher in ioredis.ts). For a caller that has just sent a full batch of its own and wants the server
   * working on it while the turn goes on. Undefined where writes are not held.
   */
  flushWrites?(): void;
  /**
   * PING every master of a Cluster (resolves to how many answered, rejects when one did not): a PING without a
   * key reaches one node, which says nothing about the others. Undefined where there is one server.
   */
  pingMasters?(timeoutMs?: number): Promise<number>;
}

/** Raised by adapters for an error *reply*: the server is reachable, the command itself failed. */
export class ReplyError extends Error {
  override name = 'ReplyError';
}
