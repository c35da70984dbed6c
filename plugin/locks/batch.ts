// Sends the lock scripts that callers start within one turn of the event loop together. Under concurrency the
// callers of a turn are many (every reply of a socket read resumes its caller in the same turn).
// - The uncontended mutex steps (mutex_try, mutex_release), the hot path, go as mutex_batch.lua calls of up to
//   EARLY_STEPS steps (each sent as soon as it is full, the rest at the end of the turn), which run each step
//   exactly as its own script would: one command, one reply and one script invocation per group instead of one
//   per step. Client-side per-command work (command objects, promises, timers, parsing) was
//   most of the cost of an acquire + release, and Redis's per-call overhead is paid once per group too.
// - Other scripts of the turn go as one pipeline (one write, one command timeout).
// Each step stays atomic, and its reply (or error) goes to its own caller. Off on Cluster, where the keys of
// different locks live on different nodes.

import { isNoScript, normaliseError } from '../connection/errors.js';
import { runScript, withKeys } from '../connection/script.js';
import type { RedisStore } from '../connection/store.js';
import { type RedisArg, ReplyError, type Script } from '../connection/types.js';
import { mutexBatch, mutexRelease, mutexTry } from './scripts.generated.js';

/** Most steps in one mutex_batch.lua call: bounds how long one call keeps the server busy (~a few µs a step). */
const MAX_STEPS = 64;
/**
 * Mutex steps queued in one turn that are sent at once, without waiting for the end of the turn: the server then
 * works on the first ones while the process is still resuming callers and queueing the rest, and the callers fall
 * into groups that take turns instead of the whole crowd waiting on one call and then the process on one reply.
 * Measured with 50 callers (bench/suites/locks.ts): see docs/performance.md.
 */
export const EARLY_STEPS = 16;

interface Pending {
  script: Script;
  keys: readonly string[];
  args: readonly RedisArg[];
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

export class ScriptBatcher {
  private queue: Pending[] = [];
  /** Mutex steps in the queue. */
  private fastQueued = 0;
  private scheduled = false;
  /** SHA1s of the scripts known to be in the server's cache (a handful: one per lock script). */
  private readonly loaded = new Set<string>();

  constructor(
    private readonly store: RedisStore,
    /** False where a pipeline buys nothing (a Cluster splits it into single commands anyway). */
    private readonly enabled: boolean,
  ) {}

  run(script: Script, keys: readonly string[], args: readonly RedisArg[]): Promise<unknown> {
    if (!this.enabled) return this.store.script(script, keys, args);
    return new Promise((resolve, reject) => {
      this.queue.push({ script, keys, args, resolve, reject });
      if ((script === mutexTry || script === mutexRelease) && ++this.fastQueued >= EARLY_STEPS) {
        // A full group: send it now, and have the store write it now (not at the end of the turn).
        this.send();
        this.store.flushWrites();
        return;
      }
      if (!this.scheduled) {
        this.scheduled = true;
        // nextTick from inside a promise continuation runs once the microtask queue is drained: after every
        // caller resumed by the same socket read has had its turn to queue its script.
        process.nextTick(this.flush);
      }
    });
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    this.send();
  };

  private send(): void {
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    this.fastQueued = 0;
    // Only scripts this connection has already run go into a pipeline: the first call of each loads it (EVALSHA,
    // then EVAL on NOSCRIPT), which a pipeline cannot do in one step on every client (ioredis-mock fails the whole
    // pipeline on a NOSCRIPT entry, and then which entries ran is unknown).
    const entries: Pending[] = [];
    const fast: Pending[] = [];
    for (const p of batch) {
      if (p.script === mutexTry || p.script === mutexRelease) fast.push(p);
      else if (this.loaded.has(p.script.sha)) entries.push(p);
      else this.single(p);
    }
    if (fast.length > 0) {
      if (fast.length === 1) this.single(fast[0] as Pending);
      else for (let i = 0; i < fast.length; i += MAX_STEPS) this.steps(fast.slice(i, i + MAX_STEPS));
    }
    if (entries.length === 0) return;
    if (entries.length === 1) {
      this.single(entries[0] as Pending);
      return;
    }
    const commands = entries.map(
      (p) => ['EVALSHA', p.script.sha, p.keys.length, ...p.keys, ...p.args] as [string, ...RedisArg[]],
    );
    this.store.pipeline(commands).then(
      (replies) => {
        for (let i = 0; i < entries.length; i++) {
          const p = entries[i] as Pending;
          const reply = replies[i];
          if (!(reply instanceof Error)) p.resolve(reply);
          else if (isNoScript(reply)) {
            // The server lost its script cache (restart, failover, SCRIPT FLUSH): this entry did not run, so
            // running it again on its own (EVALSHA, then EVAL) is safe. Any other error is final: it may have
            // written.
            this.loaded.delete(p.script.sha);
            this.single(p);
          } else p.reject(normaliseError(reply, `script ${p.script.name}`));
        }
      },
      (error: unknown) => {
        for (const p of entries) p.reject(error);
      },
    );
  }

  /**
   * The uncontended mutex steps of a turn as one mutex_batch.lua call: one command and one reply for all of them,
   * where a pipeline still costs a command, a reply and a script call each.
   */
  private steps(steps: Pending[]): void {
    const keys: string[] = [];
    const args: RedisArg[] = [];
    for (const p of steps) {
      keys.push(p.keys[0] as string, p.keys[1] as string);
      args.push(p.script === mutexTry ? 'a' : 'r', p.args[0] as RedisArg, p.args[1] as RedisArg);
    }
    // Through the store's own script runner (EVALSHA, the text only on NOSCRIPT); the key count is the batch's.
    const script = withKeys(mutexBatch, keys.length);
    this.store
      .exec(`script ${mutexBatch.name}`, (client) => runScript(client, script, keys, args))
      .then(
        (replies) => {
          if (!Array.isArray(replies) || replies.length !== steps.length) {
            const error = new ReplyError(`ERR ${mutexBatch.name} answered ${JSON.stringify(replies)?.slice(0, 80)}`);
            for (const p of steps) p.reject(normaliseError(error, `script ${mutexBatch.name}`));
            return;
          }
          const list = replies as unknown[];
          for (let i = 0; i < steps.length; i++) {
            const p = steps[i] as Pending;
            const reply = list[i];
            if (typeof reply === 'string' && reply.startsWith('!')) {
              p.reject(normaliseError(new ReplyError(reply.slice(1)), `script ${p.script.name}`));
            } else p.resolve(reply);
          }
        },
        (error: unknown) => {
          for (const p of steps) p.reject(error);
        },
      );
  }

  private single(p: Pending): void {
    this.store.script(p.script, p.keys, p.args).then((reply) => {
      this.loaded.add(p.script.sha);
      p.resolve(reply);
    }, p.reject);
  }
}
