// The lock contract on the embedded store, in TypeScript with the same semantics as the Lua scripts: leases
// expire on the engine's clock, fencing counters only grow, waiters register in the same step as a failed check
// and a release announces itself on the engine's pub/sub only when someone waits. One state object per lock lives
// in the engine's key space, so it counts against (and is bounded by) the engine's `maxKeys`.

import type { MemoryEngine } from '../connection/memory.js';
import type { MemoryStore } from '../connection/store.js';
import { type AcquireRequest, type AcquireResult, family, type LockBackend, type LockKind } from './backend.js';

/** How long the state outlives its last lease: as the Redis fencing key, an hour. */
const KEEP_MS = 3_600_000;

interface Waiter {
  arrival: number;
  expiresAt: number;
}

interface LockState {
  /** Live leases: token -> expiry (engine ms). Readers for a read/write lock. */
  holders: Map<string, number>;
  /** The writer of a read/write lock. */
  writer: { token: string; expiresAt: number } | undefined;
  writerWaitingUntil: number;
  /** The last fencing token handed out. */
  fence: number;
  /** Insertion order is arrival order, which FIFO fairness relies on. */
  waiters: Map<string, Waiter>;
}

function extreme(holders: Map<string, number>, pick: (a: number, b: number) => number): number {
  let out: number | undefined;
  for (const expiresAt of holders.values()) out = out === undefined ? expiresAt : pick(out, expiresAt);
  return out ?? 0;
}

export class MemoryLockBackend implements LockBackend {
  private readonly engine: MemoryEngine;
  private readonly key: (id: string, ...parts: string[]) => string;

  constructor(private readonly store: MemoryStore) {
    this.engine = store.engine;
    this.key = store.keys.forFeature('locks');
  }

  channel(kind: LockKind, name: string): string {
    return this.store.keys.channel('locks', `${family(kind)}.${name}`);
  }

  private stateKey(kind: LockKind, name: string): string {
    return this.key(name, `mem-${family(kind)}`);
  }

  private state(kind: LockKind, name: string, create: boolean): LockState | undefined {
    const key = this.stateKey(kind, name);
    let state = this.engine.get<LockState>(key);
    if (!state && create) {
      state = { holders: new Map(), writer: undefined, writerWaitingUntil: 0, fence: 0, waiters: new Map() };
      this.engine.set(key, state, KEEP_MS);
    }
    return state;
  }

  /** Keeps the state at least `ms` beyond now (it must outlive every lease and waiter it holds). */
  private keep(kind: LockKind, name: string, ms: number): void {
    const key = this.stateKey(kind, name);
    const left = this.engine.pttl(key);
    if (left >= 0 && left < ms) this.engine.expire(key, ms);
  }

  private prune(s: LockState, now: number): void {
    for (const [token, expiresAt] of s.holders) if (expiresAt <= now) s.holders.delete(token);
    if (s.writer && s.writer.expiresAt <= now) s.writer = undefined;
    for (const [id, w] of s.waiters) if (w.expiresAt <= now) s.waiters.delete(id);
  }

  async acquire(r: AcquireRequest): Promise<AcquireResult> {
    await this.store.ping(); // rejects with ClosedError once the store is closed, as every store call does
    const s = this.state(r.kind, r.name, true) as LockState;
    const now = this.engine.now();
    this.prune(s, now);
    let free: boolean;
    let waitMs = -1;
    if (r.kind === 'write') {
      free = !s.writer && s.holders.size === 0;
      if (s.writer) waitMs = s.writer.expiresAt - now;
      else if (s.holders.size > 0) waitMs = extreme(s.holders, Math.max) - now;
    } else if (r.kind === 'read') {
      free = !s.writer && s.writerWaitingUntil <= now;
      if (s.writer) waitMs = s.writer.expiresAt - now;
    } else {
      free = s.holders.size < (r.kind === 'mutex' ? 1 : r.limit);
      if (!free) waitMs = extreme(s.holders, Math.min) - now;
    }
    if (free && r.fair) {
      const head = s.waiters.keys().next();
      if (!head.done && head.value !== r.waiterId) free = false;
    }
    if (free) {
      if (r.kind === 'write') {
        s.writer = { token: r.token, expiresAt: now + r.ttlMs };
        s.writerWaitingUntil = 0;
      } else {
        s.holders.set(r.token, now + r.ttlMs);
      }
      if (r.waiterId) s.waiters.delete(r.waiterId);
      // As in Lua: the clock in microseconds unless the last token is higher, so tokens keep growing even after
      // this state has expired and been made afresh.
      s.fence = Math.max(s.fence + 1, Math.floor(now * 1000));
      this.keep(r.kind, r.name, r.ttlMs + KEEP_MS);
      return { ok: true, fence: s.fence };
    }
    if (r.waiterId) {
      const existing = s.waiters.get(r.waiterId);
      if (existing) existing.expiresAt = now + r.waiterLeaseMs;
      else s.waiters.set(r.waiterId, { arrival: now, expiresAt: now + r.waiterLeaseMs });
      if (r.kind === 'write') s.writerWaitingUntil = now + r.waiterLeaseMs;
      this.keep(r.kind, r.name, r.waiterLeaseMs + KEEP_MS);
    }
    return { ok: false, waitMs: Math.ceil(waitMs) };
  }

  async extend(kind: LockKind, name: string, token: string, ttlMs: number): Promise<boolean> {
    await this.store.ping();
    const s = this.state(kind, name, false);
    if (!s) return false;
    const now = this.engine.now();
    this.prune(s, now);
    if (kind === 'write') {
      if (s.writer?.token !== token) return false;
      s.writer.expiresAt = now + ttlMs;
    } else {
      if (!s.holders.has(token)) return false;
      s.holders.set(token, now + ttlMs);
    }
    this.keep(kind, name, ttlMs + KEEP_MS);
    return true;
  }

  async release(kind: LockKind, name: string, token: string): Promise<boolean> {
    await this.store.ping();
    const s = this.state(kind, name, false);
    if (!s) return false;
    const now = this.engine.now();
    let released: boolean;
    if (kind === 'write') {
      released = s.writer?.token === token && s.writer.expiresAt > now;
      if (s.writer?.token === token) s.writer = undefined;
    } else {
      const expiresAt = s.holders.get(token);
      released = expiresAt !== undefined && expiresAt > now;
      s.holders.delete(token);
    }
    this.prune(s, now);
    if (released && s.waiters.size > 0) this.engine.publish(this.channel(kind, name), '1');
    return released;
  }

  async raiseFence(name: string, token: string, floor: number, ttlMs: number): Promise<boolean> {
    await this.store.ping();
    const s = this.state('mutex', name, false);
    if (!s) return false;
    this.prune(s, this.engine.now());
    if (!s.holders.has(token)) return false;
    s.fence = Math.max(s.fence, floor);
    this.keep('mutex', name, ttlMs + KEEP_MS);
    return true;
  }

  async leave(kind: LockKind, name: string, waiterId: string): Promise<void> {
    this.state(kind, name, false)?.waiters.delete(waiterId);
  }
}
