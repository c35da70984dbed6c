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
    // Sent as EVALSHA in a pipeline, not through store.script: a reload after a lost script cache still has it,
    // since the generated scripts module records every shipped script when it is loaded.
    const counters = calls.map(
      ({ keys, args }) => ['EVALSHA', applyBatch.sha, keys.length, ...keys, ...args] as RedisCommand,
    );
    // Unique users are an estimate: a store without HyperLogLog, or a failure there, must never cost the counts, and
    // is not worth a retry. PFADD is idempotent, so the uniques of a retried batch may be sent again harmlessly (and
    // those of a batch whose counts the store refused are kept: an estimate of who came, not of what was counted).
    const uniques: RedisCommand[] = [];
    if (this.hll) {
      for (const u of batch.uniques) {
        uniques.push(['PFADD', u.key, ...u.members]);
        uniques.push(['PEXPIREAT', u.key, u.expireAt]);
      }
    }
    if (counters.length > 0 && uniques.length > 0) {
      // Both in one pipeline: one round trip per flush, not two (a flush runs every 250 ms by default, and each
      // pipeline costs the app a share of CPU of its own, whatever its size). A store answers each entry on its
      // own, so a refused PFADD leaves the counters' replies as they are.
      let replies: unknown[] | undefined;
      try {
        replies = await this.store.pipeline([...counters, ...uniques]);
      } catch (error) {
        // Unreachable or timed out: the batch is kept and sent again whole. A client that rejects the whole
        // pipeline instead (ioredis-mock does, over a missing script, and over PFADD in a pipeline) gets the two
        // parts sent on their own below.
        if (!(error instanceof StoreCommandError)) throw error;
      }
      if (replies !== undefined) {
        // The counts are settled first: a failure of the estimate is reported only once they went through.
        await this.settleCounters(calls, replies.slice(0, calls.length));
        this.settleUniques(replies.slice(calls.length));
        return;
      }
    }
    if (counters.length > 0) {
      let replies: unknown[];
      try {
        replies = await this.store.pipeline(counters);
      } catch (error) {
        // ioredis-mock rejects the whole pipeline on NOSCRIPT instead of answering per entry. Every entry is then
        // sent again with store.script: those that did run skip the batch.
        if (!isNoScript(error)) throw error;
        replies = calls.map(() => error);
      }
      await this.settleCounters(calls, replies);
    }
    if (uniques.length === 0) return;
    let replies: unknown[];
    try {
      replies = await this.store.pipeline(uniques);
    } catch (error) {
      this.onUniqueError(error);
      return;
    }
    this.settleUniques(replies);
  }

  private settleUniques(replies: unknown[]): void {
    try {
      check(replies, 'usage flush (unique users)');
    } catch (error) {
      this.onUniqueError(error);
    }
  }

  /**
   * Reads the counters' replies. A script the server no longer has is loaded and its calls run again (those that
   * did run skip the batch); throws StoreUnavailableError when a call may not have run (the batch is kept and sent
   * again), StoreCommandError when the store refused increments (not retried: a refusal does not heal).
   */
  private async settleCounters(calls: ScriptCall[], replies: unknown[]): Promise<void> {
    let refused: Error | undefined;
    let unavailable: StoreUnavailableError | undefined;
    const missing: number[] = [];
    const counted = (reply: unknown): void => {
      if (Array.isArray(reply) && Number(reply[1]) > 0) refused ??= new Error(`${reply[1]} increments refused`);
    };
    replies.forEach((reply, i) => {
      if (!(reply instanceof Error)) {
        counted(reply);
        return;
      }
      // A pipeline does not fall back to EVAL by itself: after a restart, failover or SCRIPT FLUSH the server no
      // longer knows the script, and those entries are sent again one by one (store.script loads it).
      if (isNoScript(reply)) missing.push(i);
      else {
        const kitError = normaliseError(reply, 'usage flush');
        if (kitError instanceof StoreUnavailableError) unavailable ??= kitError;
        else refused ??= reply;
      }
    });
    await Promise.all(
      missing.map(async (i) => {
        const { keys, args } = calls[i] as ScriptCall;
        try {
          counted(await this.store.script(withKeys(applyBatch, keys.length), keys, args));
        } catch (error) {
          if (error instanceof StoreUnavailableError) unavailable ??= error;
          else refused ??= error as Error;
        }
      }),
    );
    // A workspace the server could not serve now (LOADING, BUSY, a timeout on a re-sent entry) makes the whole batch
    // go again: the workspaces that did apply it will skip it.
    if (unavailable) throw unavailable;
    // An error reply (e.g. WRONGTYPE on a key someone else wrote) will not heal by retrying: report, do not requeue.
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

/** KEYS and ARGV of one apply_batch.lua call. */
interface ScriptCall {
  keys: string[];
  args: RedisArg[];
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
function scriptCalls(group: CounterGroup, seq: number): ScriptCall[] {
  const calls: ScriptCall[] = [];
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
