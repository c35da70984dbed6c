// The semantic cache's storage on Redis (standalone, Sentinel, Cluster, Upstash REST): one Lua script per
// read-modify-write, every key of a namespace under one hash tag so each script stays in one Cluster slot.

import type { RedisStore } from '../connection/store.js';
import { withKeys } from '../connection/script.js';
import {
  type ChangeBatch,
  type HitEntry,
  LOG_MAX,
  PURGE_BUDGET,
  type PutArgs,
  parseChange,
  type SemanticBackend,
} from './backend.js';
import { changes, clear, hit, put, remove } from './scripts.generated.js';

export class RedisSemanticBackend implements SemanticBackend {
  private readonly key: (id: string, ...parts: string[]) => string;
  /** `put` with 7 fixed keys plus one per tag: the script's key count varies with the tags. */

  constructor(private readonly store: RedisStore) {
    this.key = store.keys.forFeature('semcache');
  }

  private base(ns: string): string {
    return this.key(ns);
  }

  private fixed(ns: string): string[] {
    const b = this.base(ns);
    return [`${b}:e`, `${b}:x`, `${b}:p`, `${b}:g`, `${b}:log`, `${b}:seq`];
  }

  async put(ns: string, args: PutArgs): Promise<{ seq: number; expiresAt: number; evicted: number }> {
    const b = this.base(ns);
    const keys = [...this.fixed(ns), `${b}:v:${args.partition}`, ...args.tags.map((t) => `${b}:t:${t}`)];
    const reply = (await this.store.script(withKeys(put, keys.length), keys, [
      args.id,
      args.payload,
      args.record,
      args.ttlMs,
      args.partition,
      args.tags.join('\n'),
      args.cap,
      LOG_MAX,
      b,
      PURGE_BUDGET,
    ])) as [number, string, number];
    return { seq: Number(reply[0]), expiresAt: Number(reply[1]), evicted: Number(reply[2]) };
  }

  async hit(ns: string, ids: string[], slideMs: number): Promise<HitEntry | null> {
    if (ids.length === 0) return null;
    const [e, x] = this.fixed(ns) as [string, string];
    const reply = (await this.store.script(hit, [e, x], [slideMs, ...ids])) as [string, string, string] | null;
    if (!reply) return null;
    return { id: String(reply[0]), payload: String(reply[1]), expiresAt: Number(reply[2]) };
  }

  async remove(ns: string, ids: string[]): Promise<number> {
    if (ids.length === 0) return 0;
    let removed = 0;
    // Bounded batches: one script call never holds the server for long.
    for (let i = 0; i < ids.length; i += 500) {
      removed += Number(
        await this.store.script(remove, this.fixed(ns), [this.base(ns), LOG_MAX, ...ids.slice(i, i + 500)]),
      );
    }
    return removed;
  }

  async tagged(ns: string, tag: string): Promise<string[]> {
    const reply = await this.store.command('SMEMBERS', `${this.base(ns)}:t:${tag}`);
    return Array.isArray(reply) ? reply.map(String) : [];
  }

  async clear(ns: string): Promise<number> {
    return Number(await this.store.script(clear, this.fixed(ns), [this.base(ns)]));
  }

  async seq(ns: string): Promise<number> {
    return Number((await this.store.command('GET', `${this.base(ns)}:seq`)) ?? 0);
  }

  async scan(
    ns: string,
    partition: string,
    cursor: string,
  ): Promise<{ cursor: string; records: Array<[string, string]> }> {
    const reply = (await this.store.command('HSCAN', `${this.base(ns)}:v:${partition}`, cursor, 'COUNT', 1000)) as [
      string,
      string[],
    ];
    const flat = reply[1] ?? [];
    const records: Array<[string, string]> = [];
    for (let i = 0; i + 1 < flat.length; i += 2) records.push([String(flat[i]), String(flat[i + 1])]);
    return { cursor: String(reply[0]), records };
  }

  async changes(ns: string, since: number, limit: number): Promise<ChangeBatch> {
    const b = this.base(ns);
    const reply = (await this.store.script(changes, [`${b}:log`, `${b}:seq`], [since, limit, b])) as unknown[];
    const out: ChangeBatch = { seq: Number(reply[0]), oldest: Number(reply[1]), changes: [] };
    for (let i = 2; i + 1 < reply.length; i += 2) {
      const change = parseChange(String(reply[i]), String(reply[i + 1] ?? ''));
      if (change) out.changes.push(change);
    }
    return out;
  }
}
