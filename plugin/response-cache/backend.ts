// The response cache's storage contract, implemented once for the embedded memory store (here, in TypeScript)
// and once for every Redis-protocol store (redis.ts, in Lua). The conformance suite runs both unchanged.

/** What is kept for one variant of one response (encoded as JSON on Redis). */
export interface StoredResponse {
  /** Status. */
  s: number;
  /** Header fields to replay, lower-case names. */
  h: Array<[string, string | string[]]>;
  /** Body, base64. */
  b: string;
  /** Strong ETag. */
  et: string;
  /** Last-Modified, epoch ms. */
  lm: number;
  /** Freshness lifetime, ms. */
  f: number;
  /** Age the origin reported when the response was stored, s. */
  a: number;
  /** stale-if-error window, ms (0: none). */
  sie: number;
  /** Tags (for the in-process layer's invalidation). */
  tg: string[];
  /** Normalised URL (for the in-process layer's prefix invalidation). */
  u: string;
}

export interface CachedEntry {
  freshUntil: number;
  staleUntil: number;
  response: StoredResponse;
  body: Buffer;
}

export type LookupState = 'fresh' | 'stale' | 'expired' | 'miss' | 'mismatch';

export interface LookupReply {
  /** The store's clock, epoch ms. */
  now: number;
  specKnown: boolean;
  spec: string;
  entry: CachedEntry | null;
  state: LookupState;
  /** Whether the caller now holds the fill lease (and must store or release). */
  lease: boolean;
  /** The last fill of this key could not be stored by policy: run the handler, do not wait for another. */
  notStorable?: boolean;
}

/** The keys of one primary key and the variant the caller is after (all in one Cluster slot). */
export interface EntryKeys {
  vary: string;
  entry: string;
  lease: string;
  /** The index of the primary key's variant entries, scored by when each entry is gone. */
  variants: string;
  /** Where an earlier version kept that index as a plain set: read (and deleted) by a purge, never written. */
  legacyVariants: string;
}

export interface StoreRequest {
  spec: string;
  token: string;
  freshMs: number;
  swrMs: number;
  keepMs: number;
  response: StoredResponse;
  body: Buffer;
}

export interface CacheBackend {
  /** A plain read of the Vary spec and the variant (no lease, no clock): the fast path for fresh hits. Optional. */
  read?(keys: Pick<EntryKeys, 'vary' | 'entry'>): Promise<{ spec: string | null; entry: CachedEntry | null }>;
  /** Sends reads still queued for the end of this turn (at kit.close()). Optional. */
  close?(): void;
  lookup(
    keys: EntryKeys,
    assumedSpec: string,
    token: string,
    leaseMs: number,
    wantLease: boolean,
  ): Promise<LookupReply>;
  /** Stores a variant and releases the caller's lease; resolves to the store's time of storage. */
  store(keys: EntryKeys, request: StoreRequest): Promise<number>;
  /** Gives the lease back; with `markerMs` > 0 leaves a "not storable" marker for that long instead. */
  release(leaseKey: string, token: string, markerMs?: number): Promise<void>;
  /** Registers an entry under a tag; false when the tag was invalidated after `startedAt` (minus `skewMs`). */
  tagAdd(tagKeys: TagKeys, entryKey: string, startedAt: number, keepMs: number, skewMs: number): Promise<boolean>;
  /** Marks a tag invalidated now and returns (and forgets) its member entry keys. */
  tagPurge(tagKeys: TagKeys, rememberMs: number): Promise<string[]>;
  /** Deletes every variant of a primary key. */
  purgeKey(keys: Pick<EntryKeys, 'vary' | 'variants' | 'legacyVariants'>): Promise<number>;
  deleteEntries(keys: string[]): Promise<number>;
}

export interface TagKeys {
  /** The member index (Redis: a sorted set scored by when each entry is gone). */
  members: string;
  invalidated: string;
  /**
   * Where an earlier version kept members, as a plain set: still read and deleted by an invalidation, never
   * written (a rolling deploy's older instances keep using it; it expires by its own TTL).
   */
  legacy?: string;
}

export function decodeEntry(raw: string): CachedEntry {
  const a = raw.indexOf(':');
  const b = raw.indexOf(':', a + 1);
  const response = JSON.parse(raw.slice(b + 1)) as StoredResponse;
  return {
    freshUntil: Number(raw.slice(0, a)),
    staleUntil: Number(raw.slice(a + 1, b)),
    response,
    body: Buffer.from(response.b, 'base64'),
  };
}

export function encodeResponse(response: StoredResponse): string {
  return JSON.stringify(response);
}
