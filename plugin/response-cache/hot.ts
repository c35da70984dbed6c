// The optional in-process layer: a small LRU of decoded entries in front of the store, so a hit on a hot key costs
// no round trip. It serves only fresh copies, for at most `maxAgeMs`, and drops entries on pub/sub invalidations.

import type { CachedEntry } from './backend.js';

export interface HotItem {
  entry: CachedEntry;
  /** Primary key id (for `invalidate({ key })`). */
  id: string;
  /** Store clock minus local clock when the entry was fetched, so Age and ttl follow the store's clock. */
  offset: number;
  /** Local epoch ms after which the item is not served from here. */
  until: number;
}

export class HotLayer {
  private readonly items = new Map<string, HotItem>();

  constructor(
    readonly maxEntries: number,
    readonly maxAgeMs: number,
  ) {}

  get size(): number {
    return this.items.size;
  }

  get(key: string, localNow: number): HotItem | undefined {
    const item = this.items.get(key);
    if (!item) return undefined;
    if (localNow >= item.until) {
      this.items.delete(key);
      return undefined;
    }
    return item;
  }

  set(key: string, id: string, entry: CachedEntry, storeNow: number, localNow: number): void {
    const offset = storeNow - localNow;
    const until = Math.min(localNow + this.maxAgeMs, entry.freshUntil - offset);
    if (until <= localNow) return;
    // Re-insert so the Map's order is recency order; evict the least recently stored.
    this.items.delete(key);
    if (this.items.size >= this.maxEntries) {
      const oldest = this.items.keys().next();
      if (!oldest.done) this.items.delete(oldest.value);
    }
    this.items.set(key, { entry, id, offset, until });
  }

  /** Drops entries of the given primary keys, tags or URL path prefixes. */
  invalidate(message: { k?: string[]; t?: string[]; p?: string[] }): void {
    const ids = message.k?.length ? new Set(message.k) : undefined;
    const tags = message.t?.length ? new Set(message.t) : undefined;
    const prefixes = message.p ?? [];
    for (const [key, item] of this.items) {
      const r = item.entry.response;
      if (
        ids?.has(item.id) ||
        (tags && r.tg.some((t) => tags.has(t))) ||
        prefixes.some((p) => r.u === p || r.u.startsWith(p.endsWith('/') ? p : `${p}/`) || r.u.startsWith(`${p}?`))
      ) {
        this.items.delete(key);
      }
    }
  }

  clear(): void {
    this.items.clear();
  }
}
