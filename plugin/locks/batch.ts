// Sends the lock scripts that callers start within one turn of the event loop as one pipeline: one socket write
// (one HTTP request on Upstash) and one command timeout for all of them instead of one each. Under concurrency the
// callers of a turn are many (every reply of a socket read resumes its caller in the same turn), and the write
// system call per command was the largest client cost of an acquire + release. Each script stays atomic on its
// own; a pipeline is not a transaction and none is needed.

import { isNoScript, normaliseError } from '../connection/errors.js';
import type { RedisStore } from '../connection/store.js';
import type { RedisArg, Script } from '../connection/types.js';

interface Pending {
  script: Script;
  keys: readonly string[];
  args: readonly RedisArg[];
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

export class ScriptBatcher {
  private queue: Pending[] = [];
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
      if (!this.scheduled) {
        this.scheduled = true;
        // nextTick from inside a promise continuation runs once the microtask queue is drained: after every
        // caller resumed by the same socket read has had its turn to queue its script.
        process.nextTick(this.flush);
      }
    });
  }

  private readonly flush = (): void => {
    const batch = this.queue;
    this.queue = [];
    this.scheduled = false;
    // Only scripts this connection has already run go into a pipeline: the first call of each loads it (EVALSHA,
    // then EVAL on NOSCRIPT), which a pipeline cannot do in one step on every client (ioredis-mock fails the whole
    // pipeline on a NOSCRIPT entry, and then which entries ran is unknown).
    const entries: Pending[] = [];
    for (const p of batch) {
      if (this.loaded.has(p.script.sha)) entries.push(p);
      else this.single(p);
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
  };

  private single(p: Pending): void {
    this.store.script(p.script, p.keys, p.args).then((reply) => {
      this.loaded.add(p.script.sha);
      p.resolve(reply);
    }, p.reject);
  }
}
