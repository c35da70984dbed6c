// Adapter for Upstash's REST API through @upstash/redis. REST has no subscriptions and no blocking commands;
// features read `canSubscribe` and poll instead.

import { ReplyError, type CommandClient, type RedisArg, type RedisCommand } from './types.js';

/** The part of an @upstash/redis instance the adapter uses. */
export interface UpstashLike {
  exec?: (args: unknown[]) => Promise<unknown>;
  evalsha(sha: string, keys: string[], args: unknown[]): Promise<unknown>;
  eval(source: string, keys: string[], args: unknown[]): Promise<unknown>;
  pipeline(): unknown;
}

export function isUpstashLike(value: unknown): value is UpstashLike {
  if (!value || typeof value !== 'object') return false;
  const v = value as Record<string, unknown>;
  return typeof v.evalsha === 'function' && typeof v.pipeline === 'function' && typeof v.duplicate !== 'function';
}

interface RequesterLike {
  request(req: { path?: string[]; body: unknown }): Promise<unknown>;
}

function stringify(arg: RedisArg): string {
  return typeof arg === 'string' ? arg : Buffer.isBuffer(arg) ? arg.toString('utf8') : String(arg);
}

// @upstash/redis throws UpstashError for an error reply (the server answered with {"error": ...}); fetch failures
// come through as TypeError or AbortError.
function classify(error: unknown): unknown {
  if (error instanceof Error && error.name === 'UpstashError') {
    const text = error.message.replace(/, command was: .*$/s, '');
    // @upstash/redis throws UpstashError for every non-2xx answer. Only a Redis-style error reply means the command
    // was wrong; an auth failure or a gateway error means the store cannot serve us.
    if (!/^[A-Z]{3,}\b/.test(text)) return new Error(text);
    const reply = new ReplyError(text);
    reply.cause = error;
    return reply;
  }
  return error;
}

export class UpstashAdapter implements CommandClient {
  readonly mode = 'upstash' as const;
  readonly canSubscribe = false;
  private readonly requester: RequesterLike | undefined;

  constructor(private readonly client: UpstashLike) {
    // @upstash/redis's command methods JSON-parse replies unless the instance was made with
    // automaticDeserialization: false, which a user's instance may not be. Its HTTP client returns replies as the
    // server sent them (base64-decoded), so the adapter talks through that when it can.
    const inner = (client as unknown as { client?: RequesterLike }).client;
    this.requester = inner && typeof inner.request === 'function' ? inner : undefined;
  }

  async command(name: string, args: readonly RedisArg[]): Promise<unknown> {
    return this.single([name, ...args.map(stringify)]);
  }

  async evalsha(sha: string, keys: readonly string[], args: readonly RedisArg[]): Promise<unknown> {
    return this.single(['EVALSHA', sha, String(keys.length), ...keys, ...args.map(stringify)]);
  }

  async eval(source: string, keys: readonly string[], args: readonly RedisArg[]): Promise<unknown> {
    return this.single(['EVAL', source, String(keys.length), ...keys, ...args.map(stringify)]);
  }

  private async single(body: string[]): Promise<unknown> {
    try {
      if (this.requester) return unwrap(await this.requester.request({ body }));
      if (this.client.exec) return await this.client.exec(body);
    } catch (error) {
      throw classify(error);
    }
    throw new Error('this @upstash/redis version exposes neither its HTTP client nor exec()');
  }

  async pipeline(commands: readonly RedisCommand[]): Promise<unknown[]> {
    if (commands.length === 0) return [];
    if (!this.requester) {
      return Promise.all(commands.map(([name, ...args]) => this.command(name, args).catch((error: unknown) => error)));
    }
    let replies: unknown;
    try {
      replies = await this.requester.request({
        path: ['pipeline'],
        body: commands.map(([name, ...args]) => [name, ...args.map(stringify)]),
      });
    } catch (error) {
      throw classify(error);
    }
    if (!Array.isArray(replies)) throw new Error('Upstash pipeline answered with something other than a list');
    return replies.map((reply: { result?: unknown; error?: string }) =>
      reply.error ? new ReplyError(reply.error) : reply.result,
    );
  }

  async subscribe(): Promise<void> {
    throw new Error('Upstash REST cannot hold a subscription');
  }

  async unsubscribe(): Promise<void> {}

  async close(): Promise<void> {
    // HTTP: nothing to end.
  }
}

function unwrap(body: unknown): unknown {
  const { result, error } = body as { result?: unknown; error?: string };
  if (error) throw new ReplyError(error);
  return result;
}
