// Sessions on every Redis-protocol store (ioredis standalone and Cluster, Upstash REST): each operation is one
// script or one command on one key, so it runs on a Cluster; work over several sessions is one call per session.

import type { RedisStore } from '../connection/store.js';
import {
  META_FIELDS,
  metaFrom,
  type RawSession,
  type SessionBackend,
  type SessionMeta,
  type Timeouts,
  type WriteOp,
} from './backend.js';
import { destroy, indexAdd, indexTake, load, save } from './scripts.generated.js';

const MODE = { create: 'c', update: 'u', replace: 'r' } as const;

export class RedisSessionBackend implements SessionBackend {
  constructor(private readonly store: RedisStore) {}

  async load(key: string, { idleMs, absoluteMs }: Timeouts, touchMs: number): Promise<RawSession | null> {
    const reply = await this.store.script(load, [key], [idleMs, absoluteMs, touchMs]);
    if (!Array.isArray(reply)) return null;
    const out: RawSession = new Map();
    for (let i = 0; i < reply.length; i += 2) out.set(String(reply[i]), String(reply[i + 1]));
    return out;
  }

  async write(key: string, op: WriteOp): Promise<0 | 1 | 2> {
    const args: string[] = [MODE[op.mode], String(op.idleMs), String(op.absoluteMs), String(op.set.length / 2)];
    for (const s of op.set) args.push(s);
    for (const d of op.del) args.push(d);
    return Number(await this.store.script(save, [key], args)) as 0 | 1 | 2;
  }

  async destroy(key: string, tombstoneMs: number): Promise<string | null> {
    const user = await this.store.script(destroy, [key], [tombstoneMs]);
    return typeof user === 'string' ? user : null;
  }

  async indexAdd(index: string, id: string, absoluteMs: number): Promise<void> {
    await this.store.script(indexAdd, [index], [id, absoluteMs]);
  }

  async indexRemove(index: string, ids: string[]): Promise<void> {
    if (ids.length > 0) await this.store.command('ZREM', index, ...ids);
  }

  async indexTake(index: string, keep: string[]): Promise<string[]> {
    const taken = await this.store.script(indexTake, [index], keep);
    return Array.isArray(taken) ? taken.map(String) : [];
  }

  async indexMembers(index: string): Promise<string[]> {
    const ids = await this.store.command('ZRANGE', index, 0, -1);
    return Array.isArray(ids) ? ids.map(String) : [];
  }

  async meta(keys: string[]): Promise<Array<SessionMeta | null>> {
    if (keys.length === 0) return [];
    const replies = await this.store.pipeline(keys.map((k) => ['hmget', k, ...META_FIELDS] as const));
    return replies.map((reply) => {
      if (reply instanceof Error) throw reply;
      return Array.isArray(reply) ? metaFrom(reply as Array<string | null>) : null;
    });
  }

  async deleteKey(key: string): Promise<void> {
    await this.store.del(key);
  }
}
