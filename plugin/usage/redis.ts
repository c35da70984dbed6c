// Usage storage on Redis (standalone, Sentinel, Cluster, Upstash REST): a flush is one pipeline of HINCRBY, PFADD
// and PEXPIREAT. Plain commands rather than a script: each is atomic on its own, a pipeline of them costs one round
// trip (one HTTP request on Upstash), and on a Cluster the adapter routes each to its node.

import type { RedisStore } from '../connection/store.js';
import type { RedisCommand } from '../connection/types.js';
import { StoreCommandError } from '../core/errors.js';
import type { CounterWrite, UniqueWrite, UsageBackend } from './backend.js';

export class RedisUsageBackend implements UsageBackend {
  constructor(
    private readonly store: RedisStore,
    /** Told when unique-user writes fail (the counts went through). */
    private readonly onUniqueFailure: (error: unknown) => void = () => undefined,
  ) {}

  async apply(counters: CounterWrite[], uniques: UniqueWrite[]): Promise<void> {
    const commands: RedisCommand[] = [];
    for (const c of counters) {
      for (const [field, n] of c.fields) commands.push(['HINCRBY', c.key, field, n]);
      commands.push(['PEXPIREAT', c.key, c.expireAt]);
    }
    if (commands.length > 0) check(await this.store.pipeline(commands), 'usage flush');
    // Unique users go in a second pipeline, after the counts: a store without HyperLogLog (ioredis-mock has none)
    // or a failure there must not cost the counts, and an estimate is not worth a retry.
    if (uniques.length === 0 || !this.hll) return;
    const pf: RedisCommand[] = [];
    for (const u of uniques) {
      pf.push(['PFADD', u.key, ...u.members]);
      pf.push(['PEXPIREAT', u.key, u.expireAt]);
    }
    try {
      check(await this.store.pipeline(pf), 'usage flush (unique users)');
    } catch (error) {
      this.onUniqueError(error);
    }
  }

  /** Unique-user estimates are off once the store has refused HyperLogLog commands. */
  private hll = true;

  private onUniqueError(error: unknown): void {
    if (error instanceof StoreCommandError) {
      this.hll = false;
    }
    this.onUniqueFailure(error);
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

  async countUnique(keys: string[]): Promise<number | null> {
    if (keys.length === 0) return 0;
    if (!this.hll) return null;
    try {
      return Number(await this.store.command('PFCOUNT', ...keys));
    } catch (error) {
      if (error instanceof StoreCommandError) {
        this.hll = false;
        return null;
      }
      throw error;
    }
  }
}

function check(replies: unknown[], what: string): void {
  const failed = replies.find((r) => r instanceof Error) as Error | undefined;
  // An error reply (e.g. WRONGTYPE on a key someone else wrote) will not heal by retrying: report, do not requeue.
  if (failed) throw new StoreCommandError(`${what}: ${failed.message}`, failed);
}
