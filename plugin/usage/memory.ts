// Usage storage on the embedded store: a hash is a Map of field → count, a HyperLogLog is an exact Set. A batch is
// applied in process and cannot fail half-way or time out, so there is no retry to recognise.

import type { MemoryEngine } from '../connection/memory.js';
import type { UsageBackend, UsageBatch } from './backend.js';

export class MemoryUsageBackend implements UsageBackend {
  constructor(private readonly engine: MemoryEngine) {}

  async apply(batch: UsageBatch): Promise<void> {
    const now = this.engine.now();
    for (const group of batch.groups) {
      for (const c of group.counters) {
        for (let i = 0; i < c.keys.length; i++) {
          const key = c.keys[i] as string;
          let hash = this.engine.get<Map<string, number>>(key);
          if (!(hash instanceof Map)) {
            hash = new Map();
            this.engine.set(key, hash, Math.max(1, (c.expireAt[i] as number) - now));
          }
          for (const [field, n] of c.fields) hash.set(field, (hash.get(field) ?? 0) + n);
        }
      }
    }
    for (const u of batch.uniques) {
      let set = this.engine.get<Set<string>>(u.key);
      if (!(set instanceof Set)) {
        set = new Set();
        this.engine.set(u.key, set, Math.max(1, u.expireAt - now));
      }
      for (const m of u.members) set.add(m);
    }
  }

  async read(keys: string[]): Promise<Array<Record<string, number>>> {
    return keys.map((key) => {
      const hash = this.engine.get<Map<string, number>>(key);
      return hash instanceof Map ? Object.fromEntries(hash) : {};
    });
  }

  async countUnique(keys: string[]): Promise<number> {
    const all = new Set<string>();
    for (const key of keys) {
      const set = this.engine.get<Set<string>>(key);
      if (set instanceof Set) for (const m of set) all.add(m);
    }
    return all.size;
  }
}
