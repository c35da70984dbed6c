// Sessions on every Redis-protocol store (ioredis standalone and Cluster, Upstash REST): each operation is one
// script or one command on one key, so it runs on a Cluster; work over several sessions is one call per session.
// A read is a plain HGETALL (about a tenth of the server time of a script; the reads of one turn share one
// load_many.lua call, see read()): the key's own expiry, which every write and touch sets to min(idle, time left
// until the absolute end), is what ends sessions on the server.

import { isCrossSlot, normaliseError } from '../connection/errors.js';
import { withKeys } from '../connection/script.js';
import type { RedisStore } from '../connection/store.js';
import { TurnQueue } from '../connection/turn-queue.js';
import { ReplyError } from '../connection/types.js';
import {
  META,
  META_FIELDS,
  metaFrom,
  type RawSession,
  type SessionBackend,
  type SessionMeta,
  type Timeouts,
  type WriteOp,
} from './backend.js';
import { destroy, indexAdd, indexForget, indexTake, loadMany, save, touch } from './scripts.generated.js';

const MODE = { create: 'c', update: 'u', replace: 'r' } as const;

/** How often the offset between our clock and the server's is measured again. */
const CLOCK_REFRESH_MS = 60_000;
/** Most session reads in one call: a turn's reads are sent as soon as this many are queued. */
export const LOAD_BATCH = 16;

interface QueuedLoad {
  key: string;
  resolve(reply: unknown): void;
  reject(error: unknown): void;
}

export class RedisSessionBackend implements SessionBackend {
  /** Server clock minus ours, in ms: decides when a touch is due without asking the server for the time. */
  private offset = 0;
  /** Sessions whose touch is on its way (bounded by the requests in flight). */
  private readonly touching = new Set<string>();
  private readonly timer: NodeJS.Timeout;
  // The reads started in one turn of the event loop (the requests whose sockets were read in one poll phase) go
  // as one load_many.lua call: client work per command (command object, promise, deadline, reply parsing) and the
  // server's per-command overhead are paid once for all of them. A read alone in its turn is a plain HGETALL at
  // the end of the turn. Off on a Cluster, where different sessions live on different nodes.
  private batching: boolean;
  // Each group is this turn's write: out now, not one more turn later with the store's own write batching.
  private readonly queue = new TurnQueue<QueuedLoad>(
    LOAD_BATCH,
    (group) => this.sendGroup(group),
    () => this.store.flushWrites(),
  );

  constructor(
    private readonly store: RedisStore,
    private readonly onError: (error: unknown, outcome: string) => void,
  ) {
    this.batching = store.mode !== 'cluster';
    void this.measureClock();
    this.timer = setInterval(() => void this.measureClock(), CLOCK_REFRESH_MS);
    this.timer.unref();
  }

  private async measureClock(): Promise<void> {
    try {
      const before = Date.now();
      const server = await this.store.time();
      this.offset = server - (before + Date.now()) / 2;
    } catch {
      // Keep the last offset; the store's own failures are reported by the requests that meet them.
    }
  }

  close(): void {
    clearInterval(this.timer);
    // Reads started in the turn that closes the kit go out before the store closes.
    this.queue.send();
  }

  private sendGroup(batch: QueuedLoad[]): void {
    if (batch.length === 1) {
      const q = batch[0] as QueuedLoad;
      this.store.command('HGETALL', q.key).then(q.resolve, q.reject);
    } else {
      const k = batch.length;
      const keys = batch.map((q) => q.key);
      this.store.script(withKeys(loadMany, k), keys, []).then(
        (reply) => {
          // Per key: the length of its HGETALL reply, then the reply; or -1 and the error of that key alone.
          const list = Array.isArray(reply) ? (reply as unknown[]) : [];
          let at = 0;
          const replies: (unknown[] | Error)[] = [];
          for (let i = 0; i < k && at < list.length; i++) {
            const length = Number(list[at]);
            if (length === -1 && at + 2 <= list.length) {
              replies.push(normaliseError(new ReplyError(String(list[at + 1])), 'HGETALL'));
              at += 2;
              continue;
            }
            if (!Number.isInteger(length) || length < 0 || at + 1 + length > list.length) break;
            replies.push(list.slice(at + 1, at + 1 + length));
            at += 1 + length;
          }
          if (replies.length !== k || at !== list.length) {
            const error = normaliseError(
              new ReplyError(`ERR ${loadMany.name} answered ${JSON.stringify(reply)?.slice(0, 80)} for ${k} keys`),
              `script ${loadMany.name}`,
            );
            for (const q of batch) q.reject(error);
            return;
          }
          for (let i = 0; i < k; i++) {
            const one = replies[i];
            const q = batch[i] as QueuedLoad;
            if (one instanceof Error) q.reject(one);
            else q.resolve(one);
          }
        },
        (error: unknown) => {
          const message = error instanceof Error ? error.message : '';
          if (isCrossSlot(error) || message.includes('read one by one')) {
            // A sharding proxy that looks like one server (CROSSSLOT): read one by one from now on. A batch too
            // large for an engine without struct: these reads one by one.
            if (isCrossSlot(error)) this.batching = false;
            for (const q of batch) this.store.command('HGETALL', q.key).then(q.resolve, q.reject);
            return;
          }
          for (const q of batch) q.reject(error);
        },
      );
    }
  }

  private read(key: string): Promise<unknown> {
    if (!this.batching) return this.store.command('HGETALL', key);
    return new Promise((resolve, reject) => this.queue.push({ key, resolve, reject }));
  }

  async load(key: string, { idleMs, absoluteMs }: Timeouts, touchMs: number): Promise<RawSession | null> {
    const reply = await this.read(key);
    const out: RawSession = new Map();
    if (Array.isArray(reply)) {
      for (let i = 0; i < reply.length; i += 2) out.set(String(reply[i]), String(reply[i + 1]));
    } else if (reply && typeof reply === 'object') {
      // ioredis-mock answers HGETALL with an object.
      for (const [field, value] of Object.entries(reply)) out.set(field, String(value));
    }
    if (out.size === 0 || out.has(META.tombstone)) return null;
    const seen = Number(out.get(META.seen));
    if (!seen || !out.has(META.created)) return null;
    // The touch is not waited for: the request already has what it needs, and a touch that loses a race with a
    // write or a destroy changes nothing (touch.lua never brings a session back).
    if (Date.now() + this.offset - seen >= touchMs && !this.touching.has(key)) {
      // Concurrent reads of one session in this process send one touch between them.
      this.touching.add(key);
      this.store
        .script(touch, [key], [idleMs, absoluteMs])
        .catch((error: unknown) => this.onError(error, 'idle deadline not moved'))
        .finally(() => this.touching.delete(key));
    }
    return out;
  }

  async write(key: string, op: WriteOp): Promise<0 | 1 | 2> {
    const args: string[] = [MODE[op.mode], String(op.idleMs), String(op.absoluteMs), String(op.set.length / 2)];
    for (const s of op.set) args.push(s);
    for (const d of op.del) args.push(d);
    return Number(await this.store.script(save, [key], args)) as 0 | 1 | 2;
  }

  async destroy(key: string, tombstoneMs: number): Promise<string | null> {
    const user = await this.store.script(destroy, [key], [tombstoneMs]);
    return typeof user === 'string' ? user : null;
  }

  async indexAdd(index: string, id: string, absoluteMs: number): Promise<void> {
    await this.store.script(indexAdd, [index], [id, absoluteMs]);
  }

  async indexRemove(index: string, ids: string[]): Promise<void> {
    if (ids.length > 0) await this.store.command('ZREM', index, ...ids);
  }

  async indexForget(index: string, ids: string[], absoluteMs: number, graceMs: number): Promise<void> {
    if (ids.length > 0) await this.store.script(indexForget, [index], [absoluteMs, graceMs, ...ids]);
  }

  async indexTake(index: string, keep: string[]): Promise<string[]> {
    const taken = await this.store.script(indexTake, [index], keep);
    return Array.isArray(taken) ? taken.map(String) : [];
  }

  async indexMembers(index: string): Promise<string[]> {
    const ids = await this.store.command('ZRANGE', index, 0, -1);
    return Array.isArray(ids) ? ids.map(String) : [];
  }

  async meta(keys: string[]): Promise<Array<SessionMeta | null>> {
    if (keys.length === 0) return [];
    const replies = await this.store.pipeline(keys.map((k) => ['hmget', k, ...META_FIELDS] as const));
    return replies.map((reply) => {
      if (reply instanceof Error) throw reply;
      return Array.isArray(reply) ? metaFrom(reply as Array<string | null>) : null;
    });
  }

  async deleteKey(key: string): Promise<void> {
    await this.store.del(key);
  }
}
