// Usage storage on Redis (standalone, Sentinel, Cluster, Upstash REST). A flush runs one script per workspace
// (apply_batch.lua: all of a workspace's keys share its hash tag, so each script is single-slot and Cluster-safe),
// all in one pipeline: one round trip, one HTTP request on Upstash. The script skips a batch its workspace already
// applied, which makes retrying a flush after a timeout safe. Unique users follow as PFADD, idempotent by nature.

import { isNoScript, normaliseError } from '../connection/errors.js';
import { withKeys } from '../connection/script.js';
import type { RedisStore } from '../connection/store.js';
import type { RedisArg, RedisCommand } from '../connection/types.js';
import { StoreCommandError, StoreUnavailableError } from '../core/errors.js';
import type { CounterGroup, UsageBackend, UsageBatch } from './backend.js';
import { applyBatch } from './scripts.generated.js';

/**
 * How long a workspace remembers the last batch number a tracker applied. Must outlast any retry of a batch: the
 * tracker gives up on a batch (counted as dropped) before this much time has passed since its first attempt.
 */
export const APPLIED_RETENTION_MS = 24 * 3_600_000;

export class RedisUsageBackend implements UsageBackend {
  constructor(
    private readonly store: RedisStore,
    /** Told when unique-user writes fail (the counts went through). */
    private readonly onUniqueFailure: (error: unknown) => void = () => undefined,
  ) {}

  async apply(batch: UsageBatch): Promise<void> {
    const calls = batch.groups.flatMap((g) => scriptCalls(g, batch.seq));
    const counters = calls.map(
      ({ keys, args }) => ['EVALSHA', applyBatch.sha, keys.length, ...keys, ...args] as RedisCommand,
    );
    const uniques: RedisCommand[] = [];
    if (this.hll) {
      for (const u of batch.uniques) {
        uniques.push(['PFADD', u.key, ...u.members]);
        uniques.push(['PEXPIREAT', u.key, u.expireAt]);
      }
    }
    if (counters.length > 0 && uniques.length > 0) {
      // Both in one pipeline: one round trip per flush, not two (a flush runs every 250 ms by default, and each
      // pipeline costs the app a fixed share of CPU whatever its size).
      let replies: unknown[] | undefined;
      try {
        replies = await this.store.pipeline([...counters, ...uniques]);
      } catch (error) {
        if (error instanceof StoreUnavailableError) throw error;
        // A client that fails a mixed pipeline as a whole (ioredis-mock does, over a missing script): the two
        // parts are sent on their own below.
      }
      if (replies !== undefined) {
        try {
          check(replies.slice(calls.length), 'usage flush (unique users)');
        } catch (error) {
          this.onUniqueError(error);
        }
        await this.settleCounters(calls, replies.slice(0, calls.length));
        return;
      }
    }
    if (counters.length > 0) {
      let replies: unknown[];
      try {
        replies = await this.store.pipeline(counters);
      } catch (error) {
        if (!isNoScript(error)) throw error;
        replies = calls.map(() => error);
      }
      await this.settleCounters(calls, replies);
    }
    if (uniques.length === 0) return;
    try {
      check(await this.store.pipeline(uniques), 'usage flush (unique users)');
    } catch (error) {
      this.onUniqueError(error);
    }
  }

  /** Reads the counters' replies: loads a missing script and runs its calls again; throws what is left failed. */
  private async settleCounters(calls: Array<{ keys: string[]; args: RedisArg[] }>, replies: unknown[]): Promise<void> {
    let refused: Error | undefined;
    let unavailable: StoreUnavailableError | undefined;
    const missing: number[] = [];
    replies.forEach((reply, i) => {
      if (!(reply instanceof Error)) {
        if (Array.isArray(reply) && Number(reply[1]) > 0) refused ??= new Error(`${reply[1]} increments refused`);
        return;
      }
      if (isNoScript(reply)) missing.push(i);
      else {
        const kitError = normaliseError(reply, 'usage flush');
        if (kitError instanceof StoreUnavailableError) unavailable ??= kitError;
        else refused ??= reply;
      }
    });
    await Promise.all(
      missing.map(async (i) => {
        const { keys, args } = calls[i] as { keys: string[]; args: RedisArg[] };
        try {
          const reply = await this.store.script(withKeys(applyBatch, keys.length), keys, args);
          if (Array.isArray(reply) && Number(reply[1]) > 0) refused ??= new Error(`${reply[1]} increments refused`);
        } catch (error) {
          if (error instanceof StoreUnavailableError) unavailable ??= error;
          else refused ??= error as Error;
        }
      }),
    );
    if (unavailable) throw unavailable;
    if (refused) throw new StoreCommandError(`usage flush: ${refused.message}`, refused);
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
      if (reply instanceof StoreUnavailableError) throw reply; // a timeout or an outage: 503, not a bad command
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

// Increments per script: a workspace with many users can have tens of thousands of fields in one flush, and one
// script blocks the server while it runs. Each field is four HINCRBYs (minute, hour, day, month); past this a
// workspace's share goes in several scripts.
const MAX_INCREMENTS = 8_000;
const MAX_FIELDS = MAX_INCREMENTS / 4;

/**
 * KEYS and ARGV of apply_batch.lua for one workspace's share of a batch, in chunks of at most MAX_FIELDS fields.
 * Chunk i of every batch records its batch number in its own key (`<applied key>:<i>`, same hash tag): the chunking
 * of a kept batch never changes, so each chunk is recognised on a retry like a whole batch.
 */
function scriptCalls(group: CounterGroup, seq: number): Array<{ keys: string[]; args: RedisArg[] }> {
  const calls: Array<{ keys: string[]; args: RedisArg[] }> = [];
  let call = { keys: [group.appliedKey], args: [seq, APPLIED_RETENTION_MS] as RedisArg[] };
  let fields = 0;
  calls.push(call);
  for (const c of group.counters) {
    let countAt = -1;
    let count = 0;
    for (const [field, n] of c.fields) {
      if (fields >= MAX_FIELDS) {
        call = { keys: [`${group.appliedKey}:${calls.length}`], args: [seq, APPLIED_RETENTION_MS] };
        calls.push(call);
        fields = 0;
        countAt = -1;
      }
      if (countAt < 0) {
        // This minute's four keys open a section of the chunk: expiries, then the field count (filled in below).
        call.keys.push(...c.keys);
        call.args.push(...c.expireAt, 0);
        countAt = call.args.length - 1;
        count = 0;
      }
      call.args.push(field, n);
      call.args[countAt] = ++count;
      fields++;
    }
  }
  return calls;
}

function check(replies: unknown[], what: string): void {
  const failed = replies.find((r) => r instanceof Error) as Error | undefined;
  // An error reply (e.g. WRONGTYPE on a key someone else wrote) will not heal by retrying: report, do not requeue.
  if (failed instanceof StoreUnavailableError) throw failed;
  if (failed) throw new StoreCommandError(`${what}: ${failed.message}`, failed);
}
