// Sessions on the embedded store: the same contract as the Lua scripts, in TypeScript. Each session is one engine
// entry holding a Map (the hash), so the engine's key cap bounds memory and its expiry sweeps idle sessions. A
// stored map is immutable: every change stores a new one, so a read hands out the stored map itself. Beside the
// map the entry keeps the two times every read checks (created, last seen) as numbers, parsed once when the map is
// stored instead of looked up and parsed from their fields on every read.

import type { MemoryEngine } from '../connection/memory.js';
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

/** Index size under which expired ids are simply left for the next prune (see indexAdd). */
const PRUNE_FLOOR = 16;
const prunedAt = new WeakMap<Map<string, number>, number>();

type Index = Map<string, number>;

/** What the engine holds for one session key. */
class Stored {
  constructor(
    readonly hash: RawSession,
    /** Epoch ms, as in the hash's created and last-seen fields (0 for a tombstone). */
    readonly created: number,
    readonly seen: number,
    /** An id that was destroyed lately: reads find nothing, and nothing may create it again meanwhile. */
    readonly tombstone = false,
  ) {}
}

export class MemorySessionBackend implements SessionBackend {
  constructor(private readonly engine: MemoryEngine) {}

  private stored(key: string): Stored | undefined {
    const value = this.engine.get(key);
    return value instanceof Stored ? value : undefined;
  }

  private hash(key: string): RawSession | undefined {
    return this.stored(key)?.hash;
  }

  async load(key: string, timeouts: Timeouts, touchMs: number): Promise<RawSession | null> {
    return this.loadNow(key, timeouts, touchMs);
  }

  loadNow(key: string, { idleMs, absoluteMs }: Timeouts, touchMs: number): RawSession | null {
    const stored = this.stored(key);
    if (!stored || stored.tombstone) return null;
    const { hash, created, seen } = stored;
    if (!created || !seen) return null;
    const now = this.engine.now();
    const left = created + absoluteMs - now;
    if (now - seen >= idleMs || left <= 0) {
      this.engine.delete(key);
      return null;
    }
    // The stored map is never changed once stored (a touch or a write stores a new one), so the caller gets it as
    // it was when read, as it would from Redis, without a copy per read.
    if (now - seen >= touchMs) {
      const touched = new Map(hash);
      touched.set(META.seen, String(now));
      this.engine.set(key, new Stored(touched, created, now), Math.ceil(Math.min(idleMs, left)));
    }
    return hash;
  }

  async write(key: string, op: WriteOp): Promise<0 | 1 | 2> {
    const now = this.engine.now();
    // The times come from the entry (the numbers its hash holds as strings), as in loadNow().
    const stored = this.stored(key);
    if (stored?.tombstone) return 0;
    let hash: RawSession;
    let created: number;
    let result: 0 | 1 | 2 = 1;
    if (op.mode === 'create') {
      if (this.engine.get(key) !== undefined) return 0;
      created = now;
      result = 2;
      hash = new Map();
    } else if (op.mode === 'update') {
      if (!stored) return 0;
      created = stored.created;
      if (now - stored.seen >= op.idleMs || created + op.absoluteMs <= now) {
        this.engine.delete(key);
        return 0;
      }
      // Copy on write: a map handed out by loadNow() stays as it was read.
      hash = new Map(stored.hash);
    } else {
      const previous = stored?.created;
      created = previous || now;
      if (created + op.absoluteMs <= now) created = now;
      if (!previous) result = 2;
      hash = new Map();
    }
    hash.set(META.created, String(created));
    hash.set(META.seen, String(now));
    for (let i = 0; i < op.set.length; i += 2) hash.set(op.set[i] as string, op.set[i + 1] as string);
    for (const field of op.del) hash.delete(field);
    const ttl = Math.ceil(Math.min(op.idleMs, created + op.absoluteMs - now));
    this.engine.set(key, new Stored(hash, created, now), ttl);
    return result;
  }

  async destroy(key: string, tombstoneMs: number): Promise<string | null> {
    const user = this.hash(key)?.get(META.user) ?? null;
    this.engine.delete(key);
    if (tombstoneMs > 0) this.engine.set(key, new Stored(new Map([[META.tombstone, '1']]), 0, 0, true), tombstoneMs);
    return user;
  }

  private index(key: string): Index | undefined {
    const value = this.engine.get(key);
    return value instanceof Map ? (value as Index) : undefined;
  }

  async indexAdd(key: string, id: string, absoluteMs: number): Promise<void> {
    const now = this.engine.now();
    let index = this.index(key);
    if (!index) {
      index = new Map();
      this.engine.set(key, index, absoluteMs);
    }
    // Expired ids are pruned when the index has doubled since the last prune, not on every add: the express-session
    // adapter keeps one index of every session, and a full scan per add made the n-th new session cost O(n).
    if (index.size >= 2 * (prunedAt.get(index) ?? PRUNE_FLOOR)) {
      for (const [member, deadline] of index) if (deadline <= now) index.delete(member);
      prunedAt.set(index, Math.max(PRUNE_FLOOR, index.size));
    }
    index.set(id, now + absoluteMs);
    if (this.engine.pttl(key) < absoluteMs) this.engine.expire(key, absoluteMs);
  }

  async indexRemove(key: string, ids: string[]): Promise<void> {
    const index = this.index(key);
    if (index) for (const id of ids) index.delete(id);
  }

  async indexForget(key: string, ids: string[], absoluteMs: number, graceMs: number): Promise<void> {
    const index = this.index(key);
    if (!index) return;
    const newest = this.engine.now() + absoluteMs - graceMs;
    for (const id of ids) {
      const deadline = index.get(id);
      if (deadline !== undefined && deadline <= newest) index.delete(id);
    }
  }

  async indexTake(key: string, keep: string[]): Promise<string[]> {
    const index = this.index(key);
    if (!index) return [];
    const taken: string[] = [];
    for (const id of [...index.keys()]) {
      if (keep.includes(id)) continue;
      index.delete(id);
      taken.push(id);
    }
    return taken;
  }

  async indexMembers(key: string): Promise<string[]> {
    const index = this.index(key);
    return index ? [...index.keys()] : [];
  }

  async meta(keys: string[]): Promise<Array<SessionMeta | null>> {
    return keys.map((key) => {
      const hash = this.hash(key);
      return hash ? metaFrom(META_FIELDS.map((f) => hash.get(f))) : null;
    });
  }

  async deleteKey(key: string): Promise<void> {
    this.engine.delete(key);
  }
}
