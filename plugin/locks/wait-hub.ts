// Waking waiters without polling: one pub/sub subscription per lock channel per process, shared by every local
// waiter of that lock, with the fan-out done here. A release wakes the oldest local waiter (or all of them when any
// of them may proceed: read locks, fair queues); the others stay asleep instead of stampeding the store.

import type { Store } from '../connection/store.js';
import type { KitLogger } from '../core/logger.js';

interface Slot {
  resolve: (() => void) | null;
  /** A notification arrived while this waiter was not sleeping: its next pause is skipped. */
  woken: boolean;
}

interface Channel {
  slots: Set<Slot>;
  wakeAll: boolean;
  ready: Promise<boolean>;
  off: (() => Promise<void>) | undefined;
  linger: NodeJS.Timeout | undefined;
}

/** A waiter's membership in its lock's channel. */
export interface WaitTicket {
  /** Sleeps until a release notification, `ms` passes or `signal` aborts (rejecting with its reason). */
  wait(ms: number, signal: AbortSignal | undefined): Promise<void>;
  leave(): void;
}

/** How long an idle subscription is kept, so a lock that is contended in bursts is not resubscribed each time. */
const LINGER_MS = 2000;

export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export class WaitHub {
  private readonly channels = new Map<string, Channel>();
  private closed = false;
  private warned = false;

  constructor(
    private readonly store: Store,
    private readonly logger: KitLogger,
  ) {}

  /** Joins the channel's waiters; resolves to undefined when no subscription could be made (poll instead). */
  async join(name: string, wakeAll: boolean): Promise<WaitTicket | undefined> {
    if (this.closed) return undefined;
    let channel = this.channels.get(name);
    if (!channel) {
      const created: Channel = {
        slots: new Set(),
        wakeAll,
        ready: Promise.resolve(false),
        off: undefined,
        linger: undefined,
      };
      created.ready = this.store
        .subscribe(name, () => this.deliver(created))
        .then(
          (off) => {
            created.off = off;
            return true;
          },
          (error: unknown) => {
            if (this.channels.get(name) === created) this.channels.delete(name);
            if (!this.warned) {
              this.warned = true;
              this.logger.warn(
                { code: 'ERR_KIT_LOCK_SUBSCRIBE', err: error },
                'lock waiters could not subscribe to release notifications: falling back to polling',
              );
            }
            return false;
          },
        );
      this.channels.set(name, created);
      channel = created;
    }
    channel.wakeAll ||= wakeAll;
    clearTimeout(channel.linger);
    channel.linger = undefined;
    const slot: Slot = { resolve: null, woken: false };
    channel.slots.add(slot);
    const joined = channel;
    if (!(await joined.ready)) {
      joined.slots.delete(slot);
      return undefined;
    }
    return {
      wait: (ms, signal) => {
        if (slot.woken) {
          slot.woken = false;
          return Promise.resolve();
        }
        return new Promise<void>((resolve, reject) => {
          const done = () => {
            clearTimeout(timer);
            signal?.removeEventListener('abort', onAbort);
            slot.resolve = null;
            slot.woken = false;
          };
          const onAbort = () => {
            done();
            reject(signal?.reason);
          };
          const timer = setTimeout(() => {
            done();
            resolve();
          }, ms);
          slot.resolve = () => {
            done();
            resolve();
          };
          if (signal?.aborted) return onAbort();
          signal?.addEventListener('abort', onAbort, { once: true });
        });
      },
      leave: () => {
        joined.slots.delete(slot);
        if (joined.slots.size === 0 && !this.closed) {
          joined.linger = setTimeout(() => this.drop(name, joined), LINGER_MS);
          joined.linger.unref();
        }
      },
    };
  }

  private deliver(channel: Channel): void {
    if (channel.wakeAll) {
      for (const slot of channel.slots) {
        slot.woken = true;
        slot.resolve?.();
      }
      return;
    }
    // Wake the oldest sleeping waiter; if none sleeps (all are mid-attempt), mark one so it retries at once
    // instead of sleeping through a release it may have raced with.
    let spare: Slot | undefined;
    for (const slot of channel.slots) {
      if (slot.resolve) {
        slot.resolve();
        return;
      }
      if (!slot.woken && !spare) spare = slot;
    }
    if (spare) spare.woken = true;
  }

  private drop(name: string, channel: Channel): void {
    if (channel.slots.size > 0 || this.channels.get(name) !== channel) return;
    this.channels.delete(name);
    channel.off?.().catch(() => undefined);
  }

  get size(): number {
    return this.channels.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    const channels = [...this.channels.values()];
    this.channels.clear();
    await Promise.all(
      channels.map(async (c) => {
        clearTimeout(c.linger);
        for (const slot of c.slots) slot.resolve?.();
        await c.off?.().catch(() => undefined);
      }),
    );
  }
}
