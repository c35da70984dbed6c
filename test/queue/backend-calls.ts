// What the queue tests that call the backend's move() directly share (lost-reply.test.ts, move-script.test.ts): a
// backend on any store, and a move() with neutral defaults that each test overrides.

import type { Store } from '../../plugin/index';
import { type MoveRequest, type QueueBackend, RedisQueueBackend } from '../../plugin/queue/backend';
import { MemoryQueueBackend } from '../../plugin/queue/memory';

export function backendOf(store: Store, name: string): QueueBackend {
  const channel = store.keys.channel('queue', name);
  return store.mode === 'memory'
    ? new MemoryQueueBackend(store.engine, name, channel)
    : new RedisQueueBackend(store, name, channel);
}

export const base: Omit<MoveRequest, 'take' | 'worker' | 'fetch' | 'release' | 'finishes'> = {
  leaseMs: 60_000,
  keepCompleted: { ageMs: 0, count: 100 },
  keepDead: { ageMs: 0, count: 100 },
  maxStalls: 2,
};

/** One move() that takes nothing, releases nothing and finishes nothing, but for what `request` says. */
export function move(backend: QueueBackend, request: Partial<MoveRequest>) {
  return backend.move({ ...base, take: 0, worker: 'w', fetch: '', release: [], finishes: [], ...request });
}
