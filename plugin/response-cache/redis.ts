// The response cache's storage contract on every Redis-protocol store (standalone, Sentinel, Cluster, Upstash
// REST): each step is one script, and every script touches keys of one primary key or of one tag only, so each
// stays in one Cluster slot.

import type { RedisStore } from '../connection/store.js';
import {
  type CacheBackend,
  type CachedEntry,
  decodeEntry,
  type EntryKeys,
  encodeResponse,
  type LookupReply,
  type LookupState,
  type StoreRequest,
  type TagKeys,
} from './backend.js';
import {
  cacheLookup,
  cachePurgeKey,
  cacheRelease,
  cacheStore,
  cacheTagAdd,
  cacheTagPurge,
} from './scripts.generated.js';

/** Decoded entries by their raw text, so a hot key is not JSON-parsed and base64-decoded on every hit. */
const DECODED_MEMO_MAX = 256;

export class RedisCacheBackend implements CacheBackend {
  private readonly decoded = new Map<string, CachedEntry>();

  constructor(private readonly redis: RedisStore) {}

  private decode(raw: string): CachedEntry {
    const known = this.decoded.get(raw);
    if (known) return known;
    const entry = decodeEntry(raw);
    // Bounded by count and by size: only small entries are worth keeping by their full text.
    if (raw.length <= 16 * 1024) {
      if (this.decoded.size >= DECODED_MEMO_MAX) this.decoded.clear();
      this.decoded.set(raw, entry);
    }
    return entry;
  }

  read(keys: Pick<EntryKeys, 'vary' | 'entry'>): Promise<{ spec: string | null; entry: CachedEntry | null }> {
    return this.redis.command('MGET', keys.vary, keys.entry).then((reply) => {
      const [spec, raw] = reply as [unknown, unknown];
      return {
        spec: spec === null || spec === undefined ? null : String(spec),
        entry: raw ? this.decode(String(raw)) : null,
      };
    });
  }

  async lookup(
    keys: EntryKeys,
    assumedSpec: string,
    token: string,
    leaseMs: number,
    wantLease: boolean,
  ): Promise<LookupReply> {
    const reply = (await this.redis.script(
      cacheLookup,
      [keys.vary, keys.entry, keys.lease],
      [assumedSpec, token, leaseMs, wantLease ? '1' : '0'],
    )) as [string, number | string, string, string, LookupState, number | string];
    const [now, known, spec, raw, state, lease] = reply;
    return {
      now: Number(now),
      specKnown: Number(known) === 1,
      spec: spec ?? '',
      entry: raw ? this.decode(String(raw)) : null,
      state,
      lease: Number(lease) === 1,
      notStorable: Number(lease) === 2,
    };
  }

  async store(keys: EntryKeys, r: StoreRequest): Promise<number> {
    const now = await this.redis.script(
      cacheStore,
      [keys.vary, keys.entry, keys.lease, keys.variants],
      [r.spec, r.token, r.freshMs, r.swrMs, r.keepMs, encodeResponse(r.response)],
    );
    return Number(now);
  }

  async release(leaseKey: string, token: string, markerMs = 0): Promise<void> {
    await this.redis.script(cacheRelease, [leaseKey], [token, markerMs]);
  }

  async tagAdd(tag: TagKeys, entryKey: string, startedAt: number, keepMs: number, skewMs: number): Promise<boolean> {
    const ok = await this.redis.script(
      cacheTagAdd,
      [tag.members, tag.invalidated],
      [entryKey, String(startedAt), keepMs, skewMs],
    );
    return Number(ok) === 1;
  }

  async tagPurge(tag: TagKeys, rememberMs: number): Promise<string[]> {
    const members = await this.redis.script(
      cacheTagPurge,
      [tag.members, tag.invalidated, tag.legacy ?? `${tag.members}:legacy`],
      [rememberMs],
    );
    return Array.isArray(members) ? members.map(String) : [];
  }

  async purgeKey(vary: string, variants: string): Promise<number> {
    return Number(await this.redis.script(cachePurgeKey, [vary, variants], []));
  }

  async deleteEntries(keys: string[]): Promise<number> {
    return keys.length ? this.redis.del(...keys) : 0;
  }
}
