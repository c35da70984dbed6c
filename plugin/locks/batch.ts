// Sends the lock scripts that callers start within one turn of the event loop together, over the locks' own
// connections. Under concurrency the callers of a turn are many (every reply of a socket read resumes its caller
// in the same turn).
// - The uncontended mutex steps (mutex_try, mutex_release), the hot path, go as ONE script call, mutex_batch.lua,
//   which runs each step exactly as its own script would: one command, one reply and one script invocation for
//   the turn instead of one each. Client-side per-command work (command objects, promises, timers, parsing) was
//   most of the cost of an acquire + release, and Redis's per-call overhead is paid once per turn too.
// - Other scripts of the turn go as one pipeline (one write, one command timeout).
// - Lanes: a few connections of their own (CommandClient.dedicated: no write batching, so a lone acquire leaves at
//   once instead of at the next setImmediate). Every step of one lock goes over the same lane, chosen by the lock's
//   name, so a lock's steps reach Redis in the order they were sent, as over one connection (a woken waiter's
//   attempt is not overtaken by the releaser's next one sent after it). With one connection, every caller's next
//   step came back in the same socket read and went out in the same batch: the process and Redis took turns, each
//   idle while the other worked (throughput = 1 / (client CPU + Redis CPU) per operation). Replies on different
//   sockets arrive as different reads, so callers of different lanes fall into groups that stay apart: one group's
//   replies are processed here while Redis runs another group's scripts.
// Each step stays atomic, and its reply (or error) goes to its own caller. Batching is off on Cluster, where the
// keys of different locks live on different nodes.

import { isNoScript, normaliseError } from '../connection/errors.js';
import { runScript } from '../connection/script.js';
import type { RedisStore } from '../connection/store.js';
import { type CommandClient, type RedisArg, ReplyError, type Script } from '../connection/types.js';
import { mutexBatch, mutexRelease, mutexTry } from './scripts.generated.js';

/** Most steps in one mutex_batch.lua call: bounds how long one call keeps the server busy (~a few µs a step). */
const MAX_STEPS = 64;

interface Pending {
  script: Script;
  keys: readonly string[];
  args: readonly RedisArg[];
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/** One of the batcher's own connections. */
interface Lane {
  client: CommandClient;
}

export class ScriptBatcher {
  private queue: Pending[] = [];
  private scheduled = false;
  /** SHA1s of the scripts known to be in the server's cache (a handful: one per lock script). */
  private readonly loaded = new Set<string>();
  private lanes: Lane[] = [];
  private opening: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly store: RedisStore,
    /** False where a pipeline buys nothing (a Cluster splits it into single commands anyway). */
    private readonly enabled: boolean,
    /** How many connections of its own to open on first use (0: the store's shared connection only). */
    private readonly laneCount = 0,
  ) {}

  run(script: Script, keys: readonly string[], args: readonly RedisArg[]): Promise<unknown> {
    if (!this.enabled) return this.store.script(script, keys, args);
    if (this.opening === undefined && this.laneCount > 0) this.open();
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

  /** Closes the lanes; calls made afterwards go over the store's shared connection (and fail once it is closed). */
  async close(): Promise<void> {
    this.closed = true;
    await this.opening;
    const lanes = this.lanes;
    this.lanes = [];
    await Promise.all(lanes.map((lane) => lane.client.close()));
  }

  private open(): void {
    // Until the lanes are there (and where there are none: Cluster, Upstash, ioredis-mock), the shared connection.
    this.opening = Promise.all(Array.from({ length: this.laneCount }, () => this.store.dedicated())).then(
      async (clients) => {
        const lanes = clients.filter((c): c is CommandClient => c !== undefined).map((client) => ({ client }));
        if (this.closed) await Promise.all(lanes.map((lane) => lane.client.close()));
        else this.lanes = lanes;
      },
      () => undefined,
    );
  }

  /**
   * The lane of the lock a step belongs to: a hash of the `{name}` hash tag every key of one lock shares (undefined:
   * the shared connection).
   */
  private laneOf(p: Pending): Lane | undefined {
    const lanes = this.lanes;
    if (lanes.length < 2) return lanes[0];
    const key = p.keys[0] ?? '';
    const open = key.indexOf('{');
    const close = open < 0 ? -1 : key.indexOf('}', open + 1);
    const to = close < 0 ? key.length : close;
    let h = 0;
    for (let i = open + 1; i < to; i++) h = (Math.imul(h, 31) + key.charCodeAt(i)) | 0;
    return lanes[(h >>> 0) % lanes.length];
  }

  /** Runs `op` through the store (circuit breaker, timeout, error mapping) on `lane`, or on the shared connection. */
  private send<T>(what: string, lane: Lane | undefined, op: (client: CommandClient) => Promise<T>): Promise<T> {
    return lane ? this.store.exec(what, () => op(lane.client)) : this.store.exec(what, op);
  }

  private readonly flush = (): void => {
    const batch = this.queue;
    this.queue = [];
    this.scheduled = false;
    const lanes = this.lanes;
    if (lanes.length < 2) {
      this.dispatch(lanes[0], batch);
      return;
    }
    const byLane = new Map<Lane | undefined, Pending[]>();
    for (const p of batch) {
      const lane = this.laneOf(p);
      const list = byLane.get(lane);
      if (list) list.push(p);
      else byLane.set(lane, [p]);
    }
    for (const [lane, list] of byLane) this.dispatch(lane, list);
  };

  /** One lane's share of a turn: the uncontended mutex steps as mutex_batch calls, other scripts as one pipeline. */
  private dispatch(lane: Lane | undefined, batch: Pending[]): void {
    // Only scripts the server has already run go into a pipeline: the first call of each loads it (EVALSHA, then
    // EVAL on NOSCRIPT), which a pipeline cannot do in one step on every client (ioredis-mock fails the whole
    // pipeline on a NOSCRIPT entry, and then which entries ran is unknown).
    const entries: Pending[] = [];
    const fast: Pending[] = [];
    for (const p of batch) {
      if (p.script === mutexTry || p.script === mutexRelease) fast.push(p);
      else if (this.loaded.has(p.script.sha)) entries.push(p);
      else this.single(lane, p);
    }
    if (fast.length === 1) this.single(lane, fast[0] as Pending);
    else for (let i = 0; i < fast.length; i += MAX_STEPS) this.steps(lane, fast.slice(i, i + MAX_STEPS));
    if (entries.length === 1) this.single(lane, entries[0] as Pending);
    else if (entries.length > 1) this.pipeline(lane, entries);
  }

  private pipeline(lane: Lane | undefined, entries: Pending[]): void {
    const commands = entries.map(
      (p) => ['EVALSHA', p.script.sha, p.keys.length, ...p.keys, ...p.args] as [string, ...RedisArg[]],
    );
    const replies = lane
      ? this.send('pipeline', lane, (client) => client.pipeline(commands)).then((r) => this.store.pipelineReplies(r))
      : this.store.pipeline(commands);
    replies.then(
      (list) => {
        for (let i = 0; i < entries.length; i++) {
          const p = entries[i] as Pending;
          const reply = list[i];
          if (!(reply instanceof Error)) p.resolve(reply);
          else if (isNoScript(reply)) {
            // The server lost its script cache (restart, failover, SCRIPT FLUSH): this entry did not run, so
            // running it again on its own (EVALSHA, then EVAL) is safe. Any other error is final: it may have
            // written.
            this.loaded.delete(p.script.sha);
            this.single(lane, p);
          } else p.reject(normaliseError(reply, `script ${p.script.name}`));
        }
      },
      (error: unknown) => {
        for (const p of entries) p.reject(error);
      },
    );
  }

  /**
   * Uncontended mutex steps as one mutex_batch.lua call: one command and one reply for all of them, where a
   * pipeline still costs a command, a reply and a script call each.
   */
  private steps(lane: Lane | undefined, steps: Pending[]): void {
    const keys: string[] = [];
    const args: RedisArg[] = [];
    for (const p of steps) {
      keys.push(p.keys[0] as string, p.keys[1] as string);
      args.push(p.script === mutexTry ? 'a' : 'r', p.args[0] as RedisArg, p.args[1] as RedisArg);
    }
    // As runScript, for a script whose key count varies: EVALSHA, and the text only on NOSCRIPT (then nothing ran).
    const call = async (client: CommandClient): Promise<unknown> => {
      try {
        return await client.evalsha(mutexBatch.sha, keys, args);
      } catch (error) {
        if (!isNoScript(error)) throw error;
        return client.eval(mutexBatch.source, keys, args);
      }
    };
    this.send(`script ${mutexBatch.name}`, lane, call).then(
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

  private single(lane: Lane | undefined, p: Pending): void {
    const reply = lane
      ? this.send(this.store.scriptLabel(p.script), lane, (client) => runScript(client, p.script, p.keys, p.args))
      : this.store.script(p.script, p.keys, p.args);
    reply.then((value) => {
      this.loaded.add(p.script.sha);
      p.resolve(value);
    }, p.reject);
  }
}
