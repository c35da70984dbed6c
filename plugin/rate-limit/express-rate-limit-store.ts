// A Store for express-rate-limit (v7/v8 `Store` interface) backed by the kit's store, so an existing
// express-rate-limit set-up keeps its options and moves its counters onto the kit's Redis (or embedded store).

import type { FeatureContext } from '../core/context.js';

/** What express-rate-limit passes to `init` (the part used here). */
export interface ExpressRateLimitStoreOptions {
  windowMs: number;
}

/** What express-rate-limit expects back from `increment` and `get`. */
export interface ClientRateLimitInfo {
  totalHits: number;
  resetTime: Date | undefined;
}

export class KitRateLimitStore {
  /** Counters are shared by every instance (express-rate-limit uses this to validate its set-up). */
  readonly localKeys = false;
  readonly prefix: string;
  private windowMs = 60_000;
  private readonly keyOf: (id: string, ...parts: string[]) => string;

  constructor(
    private readonly context: FeatureContext,
    options: { prefix?: string } = {},
  ) {
    this.prefix = options.prefix ?? 'erl';
    this.keyOf = context.store.keys.forFeature('erl');
  }

  init(options: ExpressRateLimitStoreOptions): void {
    this.windowMs = options.windowMs;
  }

  private key(key: string): string {
    return this.keyOf(`${this.prefix}:${key}`);
  }

  async get(key: string): Promise<ClientRateLimitInfo | undefined> {
    const k = this.key(key);
    const value = await this.context.store.get(k);
    if (value === null) return undefined;
    const ttl = await this.context.store.pttl(k);
    return { totalHits: Number(value), resetTime: ttl > 0 ? new Date(Date.now() + ttl) : undefined };
  }

  async increment(key: string): Promise<ClientRateLimitInfo> {
    const { value, ttlMs } = await this.context.store.incrBy(this.key(key), 1, this.windowMs);
    return { totalHits: value, resetTime: new Date(Date.now() + (ttlMs > 0 ? ttlMs : this.windowMs)) };
  }

  async decrement(key: string): Promise<void> {
    await this.context.store.incrBy(this.key(key), -1, this.windowMs);
  }

  async resetKey(key: string): Promise<void> {
    await this.context.store.del(this.key(key));
  }
}
