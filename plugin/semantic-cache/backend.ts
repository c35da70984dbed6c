// The semantic cache's storage contract, implemented once in TypeScript for the embedded store (memory.ts) and
// once in Lua for every Redis-protocol store (redis.ts). Per namespace: entries with an expiry, a vector record per
// entry grouped by partition, tag sets, and a change log with a sequence number that other instances follow.

export interface PutArgs {
  id: string;
  partition: string;
  /** The entry as JSON (response, usage, query, created time, tags). */
  payload: string;
  /** `vector|meta`: what a follower needs to index the entry. */
  record: string;
  ttlMs: number;
  /** Tags, already hashed into key-safe strings. */
  tags: string[];
  /** Most entries in the namespace; the soonest-expiring ones are evicted past it. */
  cap: number;
}

export interface HitEntry {
  id: string;
  payload: string;
  expiresAt: number;
}

export interface Change {
  seq: number;
  /** a = added, d = removed, r = the whole namespace was dropped. */
  op: 'a' | 'd' | 'r';
  partition: string;
  id: string;
  /** `expiresAt|vector|meta` for an add still present in the store. */
  record?: string;
}

export interface ChangeBatch {
  seq: number;
  /** Oldest change still in the log: a follower behind it has missed changes and must reload. */
  oldest: number;
  changes: Change[];
}

export interface SemanticBackend {
  put(ns: string, args: PutArgs): Promise<{ seq: number; expiresAt: number; evicted: number }>;
  /**
   * The first of `ids` that exists and has not expired, with its payload and expiry (one round trip for the exact
   * id and the vector candidates together); slides its expiry when `slideMs` > 0.
   */
  hit(ns: string, ids: string[], slideMs: number): Promise<HitEntry | null>;
  remove(ns: string, ids: string[]): Promise<number>;
  tagged(ns: string, tag: string): Promise<string[]>;
  clear(ns: string): Promise<number>;
  seq(ns: string): Promise<number>;
  /** One page of a partition's vector records (`[id, 'expiresAt|vector|meta']`); cursor '0' starts and ends. */
  scan(ns: string, partition: string, cursor: string): Promise<{ cursor: string; records: Array<[string, string]> }>;
  changes(ns: string, since: number, limit: number): Promise<ChangeBatch>;
}

/** Most change-log entries kept per namespace; a follower further behind reloads its partitions. */
export const LOG_MAX = 10_000;
/** Most expired entries one put purges (bounds the script's work). */
export const PURGE_BUDGET = 20;

export function parseChange(item: string, record: string | undefined): Change | undefined {
  const a = item.indexOf('|');
  const b = item.indexOf('|', a + 1);
  const c = item.indexOf('|', b + 1);
  if (a < 0 || b < 0 || c < 0) return undefined;
  const op = item.slice(a + 1, b);
  if (op !== 'a' && op !== 'd' && op !== 'r') return undefined;
  return {
    seq: Number(item.slice(0, a)),
    op,
    partition: item.slice(b + 1, c),
    id: item.slice(c + 1),
    record: record || undefined,
  };
}
