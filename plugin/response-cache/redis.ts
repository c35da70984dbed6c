// The response cache's storage contract on every Redis-protocol store (standalone, Sentinel, Cluster, Upstash
// REST): each step is one script, and every script touches keys of one primary key or of one tag only, so each
// stays in one Cluster slot.

import type { RedisStore } from '../connection/store.js';
import {
  type CacheBackend,
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

export class RedisCacheBackend implements CacheBackend {
  constructor(private readonly redis: RedisStore) {}

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
      entry: raw ? decodeEntry(String(raw)) : null,
      state,
      lease: Number(lease) === 1,
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

  async release(leaseKey: string, token: string): Promise<void> {
    await this.redis.script(cacheRelease, [leaseKey], [token]);
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
    const members = await this.redis.script(cacheTagPurge, [tag.members, tag.invalidated], [rememberMs]);
    return Array.isArray(members) ? members.map(String) : [];
  }

  async purgeKey(vary: string, variants: string): Promise<number> {
    return Number(await this.redis.script(cachePurgeKey, [vary, variants], []));
  }

  async deleteEntries(keys: string[]): Promise<number> {
    return keys.length ? this.redis.del(...keys) : 0;
  }
}
