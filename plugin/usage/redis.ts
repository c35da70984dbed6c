// Usage storage on Redis (standalone, Sentinel, Cluster, Upstash REST): a flush is one pipeline of HINCRBY, PFADD
// and PEXPIREAT. Plain commands rather than a script: each is atomic on its own, a pipeline of them costs one round
// trip (one HTTP request on Upstash), and on a Cluster the adapter routes each to its node.

import type { RedisStore } from '../connection/store.js';
import type { RedisCommand } from '../connection/types.js';
import { StoreCommandError } from '../core/errors.js';
import type { CounterWrite, UniqueWrite, UsageBackend } from './backend.js';

export class RedisUsageBackend implements UsageBackend {
  constructor(private readonly store: RedisStore) {}

  async apply(counters: CounterWrite[], uniques: UniqueWrite[]): Promise<void> {
    const commands: RedisCommand[] = [];
    for (const c of counters) {
      for (const [field, n] of c.fields) commands.push(['HINCRBY', c.key, field, n]);
      commands.push(['PEXPIREAT', c.key, c.expireAt]);
    }
    for (const u of uniques) {
      commands.push(['PFADD', u.key, ...u.members]);
      commands.push(['PEXPIREAT', u.key, u.expireAt]);
    }
    if (commands.length === 0) return;
    const replies = await this.store.pipeline(commands);
    const failed = replies.find((r) => r instanceof Error) as Error | undefined;
    // An error reply (e.g. WRONGTYPE on a key someone else wrote) will not heal by retrying: report, do not requeue.
    if (failed) throw new StoreCommandError(`usage flush: ${failed.message}`, failed);
  }

  async read(keys: string[]): Promise<Array<Record<string, number>>> {
    if (keys.length === 0) return [];
    const replies = await this.store.pipeline(keys.map((k) => ['HGETALL', k] as const));
    return replies.map((reply) => {
      if (reply instanceof Error) throw new StoreCommandError(`usage query: ${reply.message}`, reply);
      const out: Record<string, number> = {};
      // ioredis gives an object, @upstash/redis an object or a flat array depending on its parsing.
      if (Array.isArray(reply)) {
        for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = Number(reply[i + 1]);
      } else if (reply && typeof reply === 'object') {
        for (const [k, v] of Object.entries(reply)) out[k] = Number(v);
      }
      return out;
    });
  }

  async countUnique(keys: string[]): Promise<number> {
    if (keys.length === 0) return 0;
    return Number(await this.store.command('PFCOUNT', ...keys));
  }
}
