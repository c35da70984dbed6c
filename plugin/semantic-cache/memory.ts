// The semantic cache's storage on the embedded store: the same contract as the Lua scripts, kept as one object
// per namespace inside the MemoryEngine (so the engine's key cap and close() apply to it too).

import type { MemoryStore } from '../connection/store.js';
import {
  type ChangeBatch,
  type HitEntry,
  LOG_MAX,
  PURGE_BUDGET,
  type PutArgs,
  type SemanticBackend,
} from './backend.js';

interface MemEntry {
  payload: string;
  expiresAt: number;
  partition: string;
  tags: string[];
  record: string;
}

interface MemNamespace {
  entries: Map<string, MemEntry>;
  tags: Map<string, Set<string>>;
  log: Array<{ seq: number; item: string }>;
  seq: number;
}

const SCAN_PAGE = 1000;

export class MemorySemanticBackend implements SemanticBackend {
  private readonly key: (id: string, ...parts: string[]) => string;
  private readonly snapshots = new Map<string, { ids: string[]; offset: number }>();
  private scanCounter = 0;

  constructor(private readonly store: MemoryStore) {
    this.key = store.keys.forFeature('semcache');
  }

  private now(): number {
    return this.store.engine.now();
  }

  private space(ns: string, create: true): MemNamespace;
  private space(ns: string, create: false): MemNamespace | undefined;
  private space(ns: string, create: boolean): MemNamespace | undefined {
    const key = this.key(ns);
    let space = this.store.engine.get<MemNamespace>(key);
    if (!space && create) {
      space = { entries: new Map(), tags: new Map(), log: [], seq: 0 };
      this.store.engine.set(key, space);
    }
    return space;
  }

  private log(space: MemNamespace, op: string, partition: string, id: string): void {
    space.seq++;
    space.log.push({ seq: space.seq, item: `${space.seq}|${op}|${partition}|${id}` });
    if (space.log.length > LOG_MAX + 1000) space.log.splice(0, space.log.length - LOG_MAX);
  }

  private drop(space: MemNamespace, id: string): boolean {
    const entry = space.entries.get(id);
    if (!entry) return false;
    space.entries.delete(id);
    for (const tag of entry.tags) {
      const set = space.tags.get(tag);
      set?.delete(id);
      if (set?.size === 0) space.tags.delete(tag);
    }
    this.log(space, 'd', entry.partition, id);
    return true;
  }

  async put(ns: string, args: PutArgs): Promise<{ seq: number; expiresAt: number; evicted: number }> {
    const space = this.space(ns, true);
    const now = this.now();
    let purged = 0;
    // Map order is insertion order: expired entries are found among the oldest without a sorted set.
    for (const [id, e] of space.entries) {
      if (purged >= PURGE_BUDGET || e.expiresAt > now) break;
      if (id !== args.id && this.drop(space, id)) purged++;
    }
    let evicted = 0;
    if (space.entries.has(args.id)) this.drop(space, args.id);
    else {
      while (space.entries.size >= args.cap) {
        let victim: string | undefined;
        let soonest = Number.POSITIVE_INFINITY;
        let looked = 0;
        // The soonest-expiring among the oldest few: with one TTL that is the oldest entry.
        for (const [id, e] of space.entries) {
          if (e.expiresAt < soonest) {
            soonest = e.expiresAt;
            victim = id;
          }
          if (++looked >= 16) break;
        }
        if (victim === undefined) break;
        this.drop(space, victim);
        evicted++;
      }
    }
    const expiresAt = Math.round(now + args.ttlMs);
    space.entries.set(args.id, {
      payload: args.payload,
      expiresAt,
      partition: args.partition,
      tags: args.tags,
      record: `${expiresAt}|${args.record}`,
    });
    for (const tag of args.tags) {
      let set = space.tags.get(tag);
      if (!set) {
        set = new Set();
        space.tags.set(tag, set);
      }
      set.add(args.id);
    }
    this.log(space, 'a', args.partition, args.id);
    return { seq: space.seq, expiresAt, evicted };
  }

  async hit(ns: string, ids: string[], slideMs: number): Promise<HitEntry | null> {
    const space = this.space(ns, false);
    const now = this.now();
    for (const id of ids) {
      const entry = space?.entries.get(id);
      if (!entry || entry.expiresAt <= now) continue;
      if (slideMs > 0 && now + slideMs > entry.expiresAt) entry.expiresAt = Math.round(now + slideMs);
      return { id, payload: entry.payload, expiresAt: entry.expiresAt };
    }
    return null;
  }

  async remove(ns: string, ids: string[]): Promise<number> {
    const space = this.space(ns, false);
    if (!space) return 0;
    let n = 0;
    for (const id of ids) if (this.drop(space, id)) n++;
    return n;
  }

  async tagged(ns: string, tag: string): Promise<string[]> {
    return [...(this.space(ns, false)?.tags.get(tag) ?? [])];
  }

  async clear(ns: string): Promise<number> {
    const space = this.space(ns, false);
    if (!space) return 0;
    const n = space.entries.size;
    space.entries.clear();
    space.tags.clear();
    space.log.length = 0;
    this.log(space, 'r', '', '');
    return n;
  }

  async seq(ns: string): Promise<number> {
    return this.space(ns, false)?.seq ?? 0;
  }

  async scan(
    ns: string,
    partition: string,
    cursor: string,
  ): Promise<{ cursor: string; records: Array<[string, string]> }> {
    // Pages of 1,000 over a snapshot of the partition's ids taken at cursor '0' (like HSCAN, entries added or
    // removed meanwhile may or may not be seen; the change log covers them), so a large load never blocks the loop.
    let ids: string[];
    let offset: number;
    if (cursor === '0') {
      ids = [];
      for (const [id, e] of this.space(ns, false)?.entries ?? []) if (e.partition === partition) ids.push(id);
      offset = 0;
    } else {
      const snapshot = this.snapshots.get(cursor);
      if (!snapshot) return { cursor: '0', records: [] };
      this.snapshots.delete(cursor);
      ({ ids, offset } = snapshot);
    }
    const space = this.space(ns, false);
    const records: Array<[string, string]> = [];
    const end = Math.min(ids.length, offset + SCAN_PAGE);
    for (let i = offset; i < end; i++) {
      const e = space?.entries.get(ids[i] as string);
      if (e) records.push([ids[i] as string, e.record]);
    }
    if (end >= ids.length) return { cursor: '0', records };
    const next = String(++this.scanCounter);
    // Abandoned scans (a cache closed mid-load) must not pile up.
    if (this.snapshots.size >= 64) this.snapshots.delete(this.snapshots.keys().next().value as string);
    this.snapshots.set(next, { ids, offset: end });
    return { cursor: next, records };
  }

  async changes(ns: string, since: number, limit: number): Promise<ChangeBatch> {
    const space = this.space(ns, false);
    if (!space) return { seq: 0, oldest: 1, changes: [] };
    const out: ChangeBatch = { seq: space.seq, oldest: space.log[0]?.seq ?? space.seq + 1, changes: [] };
    for (const { seq, item } of space.log) {
      if (seq <= since) continue;
      if (out.changes.length >= limit) break;
      const [, op, partition = '', id = ''] = item.split('|');
      const record = op === 'a' ? space.entries.get(id)?.record : undefined;
      out.changes.push({ seq, op: op as 'a' | 'd' | 'r', partition, id, record });
    }
    return out;
  }
}
