// The response cache's storage contract on the embedded engine, in TypeScript (values kept as objects, not
// encoded): the same behaviour as the Lua in lua/*.lua, checked by the same conformance suite.

import type { MemoryStore } from '../connection/store.js';
import type { CacheBackend, EntryKeys, LookupReply, StoreRequest, StoredResponse, TagKeys } from './backend.js';

/** A tag's members, or a primary key's variants: entry key -> when that entry is gone (engine time, ms). */
interface ExpiringIndex {
  members: Map<string, number>;
  /** Size at which expired members are next dropped. */
  pruneAt: number;
}

/** Sizes under which a tag index and a variant index are not pruned. */
const TAG_PRUNE_FLOOR = 64;
const VARIANT_PRUNE_FLOOR = 16;

/** Drops the members whose entries are gone once the index has doubled since the last pass (amortised O(1)). */
function pruneIfDue(index: ExpiringIndex, now: number, floor: number): void {
  if (index.members.size < index.pruneAt) return;
  for (const [key, until] of index.members) if (until <= now) index.members.delete(key);
  index.pruneAt = Math.max(floor, 2 * index.members.size);
}

interface MemEntry {
  freshUntil: number;
  staleUntil: number;
  response: StoredResponse;
  body: Buffer;
}

/** The same contract on the embedded engine, in TypeScript (values are kept as objects, not encoded). */
export class MemoryCacheBackend implements CacheBackend {
  private readonly engine;

  constructor(store: MemoryStore) {
    this.engine = store.engine;
  }

  async lookup(
    keys: EntryKeys,
    assumedSpec: string,
    token: string,
    leaseMs: number,
    wantLease: boolean,
  ): Promise<LookupReply> {
    const e = this.engine;
    const now = e.now();
    const stored = e.get<string>(keys.vary);
    const specKnown = stored !== undefined;
    const spec = stored ?? '';
    if (specKnown && spec !== assumedSpec)
      return { now, specKnown, spec, entry: null, state: 'mismatch', lease: false };
    const lease = (): { lease: boolean; notStorable: boolean } => {
      if (!wantLease) return { lease: false, notStorable: false };
      const holder = e.get<string>(keys.lease);
      if (holder === undefined) {
        e.set(keys.lease, token, leaseMs);
        return { lease: true, notStorable: false };
      }
      return { lease: holder === token, notStorable: holder === '!' };
    };
    const entry = e.get<MemEntry>(keys.entry);
    if (entry) {
      if (now < entry.freshUntil) return { now, specKnown, spec, entry, state: 'fresh', lease: false };
      const state = now < entry.staleUntil ? 'stale' : 'expired';
      return { now, specKnown, spec, entry, state, ...lease() };
    }
    return { now, specKnown, spec, entry: null, state: 'miss', ...lease() };
  }

  async store(keys: EntryKeys, r: StoreRequest): Promise<number> {
    const e = this.engine;
    const now = e.now();
    const freshUntil = now + r.freshMs;
    const entry: MemEntry = { freshUntil, staleUntil: freshUntil + r.swrMs, response: r.response, body: r.body };
    e.set(keys.entry, entry, r.keepMs);
    const keepLonger = (key: string, value: unknown) => {
      const left = e.pttl(key);
      e.set(key, value, Math.max(left, r.keepMs));
    };
    keepLonger(keys.vary, r.spec);
    // The variant index lives as long as its longest-lived variant; pruning it (as the tag indexes are) keeps a key
    // that stays cached from listing every variant it ever had.
    const variants = e.get<ExpiringIndex>(keys.variants) ?? {
      members: new Map<string, number>(),
      pruneAt: VARIANT_PRUNE_FLOOR,
    };
    variants.members.set(keys.entry, now + r.keepMs);
    pruneIfDue(variants, now, VARIANT_PRUNE_FLOOR);
    keepLonger(keys.variants, variants);
    if (r.token && e.get(keys.lease) === r.token) e.delete(keys.lease);
    return now;
  }

  async release(leaseKey: string, token: string, markerMs = 0): Promise<void> {
    if (this.engine.get(leaseKey) !== token) return;
    if (markerMs > 0) this.engine.set(leaseKey, '!', markerMs);
    else this.engine.delete(leaseKey);
  }

  async tagAdd(tag: TagKeys, entryKey: string, startedAt: number, keepMs: number, skewMs: number): Promise<boolean> {
    const e = this.engine;
    const invalidated = e.get<number>(tag.invalidated);
    if (invalidated !== undefined && invalidated >= startedAt - skewMs) return false;
    const index = e.get<ExpiringIndex>(tag.members) ?? { members: new Map<string, number>(), pruneAt: TAG_PRUNE_FLOOR };
    const now = e.now();
    pruneIfDue(index, now, TAG_PRUNE_FLOOR);
    const until = now + keepMs;
    if ((index.members.get(entryKey) ?? 0) < until) index.members.set(entryKey, until);
    e.set(tag.members, index, Math.max(e.pttl(tag.members), keepMs));
    return true;
  }

  async tagPurge(tag: TagKeys, rememberMs: number): Promise<string[]> {
    const e = this.engine;
    e.set(tag.invalidated, e.now(), rememberMs);
    const index = e.get<ExpiringIndex>(tag.members);
    e.delete(tag.members);
    return index ? [...index.members.keys()] : [];
  }

  async purgeKey(keys: Pick<EntryKeys, 'vary' | 'variants' | 'legacyVariants'>): Promise<number> {
    const e = this.engine;
    let n = 0;
    const index = e.get<ExpiringIndex>(keys.variants);
    for (const key of index?.members.keys() ?? []) if (e.get(key) !== undefined && e.delete(key)) n++;
    e.delete(keys.vary);
    e.delete(keys.variants);
    return n;
  }

  async deleteEntries(keys: string[]): Promise<number> {
    let n = 0;
    for (const key of keys) if (this.engine.get(key) !== undefined && this.engine.delete(key)) n++;
    return n;
  }
}
