// The storage contract of usage tracking, implemented twice: memory.ts (the embedded store) and redis.ts (every
// Redis-protocol store, one script per workspace, all in one pipeline). All keys of one workspace share its
// `{workspace}` hash tag.

/**
 * The increments of one minute of one workspace. They go to that minute's hash and to the hour, day and month
 * hashes that contain it: the store does that fan-out (on Redis, inside the script), so a flush sends each field
 * once instead of once per bucket size.
 */
export interface CounterWrite {
  /** The minute, hour, day and month hashes, in that order. */
  keys: readonly [string, string, string, string];
  /** Epoch ms each of those keys expires at (bucket end + its retention), same order. */
  expireAt: readonly [number, number, number, number];
  /** Hash field → increment. */
  fields: Map<string, number>;
}

export interface UniqueWrite {
  key: string;
  members: string[];
  expireAt: number;
}

/** One workspace's counters in a batch, with the key that remembers which batches of this tracker it applied. */
export interface CounterGroup {
  /** Under the workspace's hash tag, one per tracker (not per batch): holds the last batch number applied. */
  appliedKey: string;
  counters: CounterWrite[];
}

/**
 * What one flush writes. Cut once from the buffer and sent unchanged until acknowledged, so a retry after an
 * ambiguous failure (a timeout whose commands the server did run) is recognised and not applied twice.
 */
export interface UsageBatch {
  /** `<tracker id>.<seq>`: unique across processes (the tracker id is 16 random bytes). */
  id: string;
  /** 1, 2, 3, ... in its tracker; a tracker never sends batch n+1 before batch n is acknowledged. */
  seq: number;
  groups: CounterGroup[];
  uniques: UniqueWrite[];
}

export interface UsageBackend {
  /**
   * Applies one batch, each workspace's share exactly once however often it is retried. Throws
   * StoreUnavailableError when the store is unreachable or did not answer in time (the caller sends the same batch
   * again), StoreCommandError when it refused part of it (not retried).
   */
  apply(batch: UsageBatch): Promise<void>;
  /** Every field of each hash, `{}` for a missing key. */
  read(keys: string[]): Promise<Array<Record<string, number>>>;
  /**
   * Estimated distinct members across these HyperLogLogs (all in one workspace, so one slot); null when the store
   * has no HyperLogLog.
   */
  countUnique(keys: string[]): Promise<number | null>;
}
