// The storage contract of usage tracking, implemented twice: memory.ts (the embedded store) and redis.ts (every
// Redis-protocol store, as one pipeline per flush). All keys of one workspace share its `{workspace}` hash tag.

export interface CounterWrite {
  key: string;
  /** Hash field → increment. */
  fields: Map<string, number>;
  /** Epoch ms the key expires at (bucket end + retention). */
  expireAt: number;
}

export interface UniqueWrite {
  key: string;
  members: string[];
  expireAt: number;
}

export interface UsageBackend {
  /** Applies one flush. Throws when the store is unreachable (the caller keeps the batch for the next flush). */
  apply(counters: CounterWrite[], uniques: UniqueWrite[]): Promise<void>;
  /** Every field of each hash, `{}` for a missing key. */
  read(keys: string[]): Promise<Array<Record<string, number>>>;
  /**
   * Estimated distinct members across these HyperLogLogs (all in one workspace, so one slot); null when the store
   * has no HyperLogLog.
   */
  countUnique(keys: string[]): Promise<number | null>;
}
