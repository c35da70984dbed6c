// The response cache's storage contract on every Redis-protocol store (standalone, Sentinel, Cluster, Upstash
// REST): each step is one script, and every script touches keys of one primary key or of one tag only, so each
// stays in one Cluster slot.

import { isCrossSlot, normaliseError } from '../connection/errors.js';
import type { RedisStore } from '../connection/store.js';
import { TurnQueue } from '../connection/turn-queue.js';
import { ReplyError } from '../connection/types.js';
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
/** Most reads in one MGET: a turn's reads are sent as soon as this many are queued. */
export const READ_BATCH = 16;

interface QueuedRead {
  vary: string;
  entry: string;
  resolve(pair: [unknown, unknown]): void;
  reject(error: unknown): void;
}

export class RedisCacheBackend implements CacheBackend {
  private readonly decoded = new Map<string, CachedEntry>();

  constructor(private readonly redis: RedisStore) {
    this.batching = redis.mode !== 'cluster';
  }

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

  // Hits are read with a plain MGET of two keys (the Vary spec and the entry). The reads started in one turn of
  // the event loop share one MGET: client work per command (command object, promise, deadline, reply parsing) and
  // the server's per-command overhead are paid once for all of them. A read alone in its turn is sent alone at the
  // end of the turn; a full group of READ_BATCH at once. Off on a Cluster, where the keys of different requests
  // live on different nodes.
  private batching: boolean;
  // Each group is this turn's write: out now, not one more turn later with the store's own write batching.
  private readonly queue = new TurnQueue<QueuedRead>(
    READ_BATCH,
    (group) => this.sendGroup(group),
    () => this.redis.flushWrites(),
  );

  private sendGroup(batch: QueuedRead[]): void {
    const keys: string[] = new Array(2 * batch.length);
    for (let i = 0; i < batch.length; i++) {
      const q = batch[i] as QueuedRead;
      keys[2 * i] = q.vary;
      keys[2 * i + 1] = q.entry;
    }
    this.redis.command('MGET', ...keys).then(
      (reply) => {
        if (!Array.isArray(reply) || reply.length !== keys.length) {
          const error = normaliseError(
            new ReplyError(`ERR MGET answered ${JSON.stringify(reply)?.slice(0, 80)} for ${keys.length} keys`),
            'MGET',
          );
          for (const q of batch) q.reject(error);
          return;
        }
        for (let i = 0; i < batch.length; i++) (batch[i] as QueuedRead).resolve([reply[2 * i], reply[2 * i + 1]]);
      },
      (error: unknown) => {
        if (batch.length > 1 && isCrossSlot(error)) {
          // A sharding proxy that looks like one server: read pair by pair from now on.
          this.batching = false;
          for (const q of batch) {
            this.redis.command('MGET', q.vary, q.entry).then((r) => q.resolve(r as [unknown, unknown]), q.reject);
          }
          return;
        }
        for (const q of batch) q.reject(error);
      },
    );
  }

  /** Sends the reads queued in this turn (kit.close(): before the store closes). */
  close(): void {
    this.queue.send();
  }

  private readPair(vary: string, entry: string): Promise<[unknown, unknown]> {
    if (!this.batching) return this.redis.command('MGET', vary, entry) as Promise<[unknown, unknown]>;
    return new Promise((resolve, reject) => this.queue.push({ vary, entry, resolve, reject }));
  }

  read(keys: Pick<EntryKeys, 'vary' | 'entry'>): Promise<{ spec: string | null; entry: CachedEntry | null }> {
    return this.readPair(keys.vary, keys.entry).then(([spec, raw]) => ({
      spec: spec === null || spec === undefined ? null : String(spec),
      entry: raw ? this.decode(String(raw)) : null,
    }));
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

  async purgeKey(keys: Pick<EntryKeys, 'vary' | 'variants' | 'legacyVariants'>): Promise<number> {
    const members = await this.redis.script(cachePurgeKey, [keys.vary, keys.variants, keys.legacyVariants], []);
    return this.deleteEntries(Array.isArray(members) ? [...new Set(members.map(String))] : []);
  }

  async deleteEntries(keys: string[]): Promise<number> {
    return keys.length ? this.redis.del(...keys) : 0;
  }
}
