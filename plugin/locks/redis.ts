// The lock contract on every Redis-protocol store (standalone, Sentinel, Cluster, Upstash REST): one script per
// operation. Every key of one lock shares the `{name}` hash tag, so the scripts stay legal on a Cluster.

import type { RedisStore } from '../connection/store.js';
import { ScriptBatcher } from './batch.js';
import { type AcquireRequest, type AcquireResult, family, type LockBackend, type LockKind } from './backend.js';
import {
  mutexAcquire,
  mutexExtend,
  mutexRaiseFence,
  mutexRelease,
  mutexTry,
  rwAcquire,
  semAcquire,
  semExtend,
  semRelease,
  waiterLeave,
} from './scripts.generated.js';

// Key parts per family: owner/holders, fencing counter, waiters by arrival, waiters by expiry (+ rw extras).
const PARTS = {
  mutex: { holders: 'o', fence: 'f', queue: 'q', queueExp: 'qx' },
  semaphore: { holders: 's', fence: 'sf', queue: 'sq', queueExp: 'sqx' },
  rw: { holders: 'rr', fence: 'rf', queue: 'rq', queueExp: 'rqx' },
} as const;

export class RedisLockBackend implements LockBackend {
  private readonly key: (id: string, ...parts: string[]) => string;
  private readonly batch: ScriptBatcher;

  constructor(private readonly store: RedisStore) {
    this.key = store.keys.forFeature('locks');
    this.batch = new ScriptBatcher(store, store.mode !== 'cluster');
  }

  channel(kind: LockKind, name: string): string {
    return this.store.keys.channel('locks', `${family(kind)}.${name}`);
  }

  async acquire(r: AcquireRequest): Promise<AcquireResult> {
    const f = family(r.kind);
    const p = PARTS[f];
    // The id is escaped (or hashed) once per call, not once per key.
    const base = this.key(r.name);
    let reply: unknown;
    if (f === 'mutex' && !r.waiterId && !r.fair) {
      reply = await this.batch.run(mutexTry, [`${base}:${p.holders}`, `${base}:${p.fence}`], [r.token, r.ttlMs]);
    } else {
      const common = [r.token, r.ttlMs, r.waiterId, r.waiterLeaseMs, r.fair ? '1' : '0'];
      const keys = [`${base}:${p.holders}`, `${base}:${p.fence}`, `${base}:${p.queue}`, `${base}:${p.queueExp}`];
      if (f === 'mutex') {
        reply = await this.batch.run(mutexAcquire, keys, common);
      } else if (f === 'semaphore') {
        reply = await this.batch.run(semAcquire, keys, [...common, r.limit]);
      } else {
        // rw_acquire takes the writer key second and the writer-waiting flag last.
        keys.splice(1, 0, `${base}:rw`);
        keys.push(`${base}:rww`);
        reply = await this.batch.run(rwAcquire, keys, [...common, r.kind === 'write' ? 'w' : 'r']);
      }
    }
    return parseAcquireReply(reply);
  }

  async extend(kind: LockKind, name: string, token: string, ttlMs: number): Promise<boolean> {
    const reply =
      kind === 'mutex' || kind === 'write'
        ? await this.batch.run(mutexExtend, [this.ownerKey(kind, name)], [token, ttlMs])
        : await this.batch.run(semExtend, [this.ownerKey(kind, name)], [token, ttlMs]);
    return Number(reply) === 1;
  }

  async release(kind: LockKind, name: string, token: string): Promise<boolean> {
    const base = this.key(name);
    const f = family(kind);
    const owner = kind === 'write' ? `${base}:rw` : `${base}:${PARTS[f].holders}`;
    const script = kind === 'mutex' || kind === 'write' ? mutexRelease : semRelease;
    const reply = await this.batch.run(
      script,
      [owner, `${base}:${PARTS[f].queueExp}`],
      [token, this.channel(kind, name)],
    );
    return Number(reply) === 1;
  }

  async raiseFence(name: string, token: string, floor: number, ttlMs: number): Promise<boolean> {
    const base = this.key(name);
    const reply = await this.batch.run(
      mutexRaiseFence,
      [`${base}:${PARTS.mutex.holders}`, `${base}:${PARTS.mutex.fence}`],
      [token, String(floor), ttlMs],
    );
    return Number(reply) === 1;
  }

  async leave(kind: LockKind, name: string, waiterId: string): Promise<void> {
    const p = PARTS[family(kind)];
    const base = this.key(name);
    await this.batch.run(waiterLeave, [`${base}:${p.queue}`, `${base}:${p.queueExp}`], [waiterId]);
  }

  private ownerKey(kind: LockKind, name: string): string {
    return kind === 'write' ? this.key(name, 'rw') : this.key(name, PARTS[family(kind)].holders);
  }
}

/**
 * The acquire scripts answer with one value, the shortest reply to parse: the fencing token as a string when
 * granted (a bulk reply keeps all 53 bits on every client), the wait in ms as an integer when not.
 */
export function parseAcquireReply(reply: unknown): AcquireResult {
  if (typeof reply === 'string' || Buffer.isBuffer(reply)) return { ok: true, fence: Number(String(reply)) };
  return { ok: false, waitMs: Number(reply) };
}
