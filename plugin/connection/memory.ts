// The embedded store: an in-process key space with expiry, a hard cap on its size, and local pub/sub. It is the
// default when no Redis is configured, so `npm start` works on a bare machine. Data lives in this process only.

import type { MessageHandler } from './types.js';

export interface MemoryEngineOptions {
  /** Most keys held at once; past it the oldest are evicted (expired ones first). @default 1_000_000 */
  maxKeys: number;
  /** How often expired keys are swept in the background. @default 1000 */
  sweepIntervalMs: number;
  now?: () => number;
}

interface Entry {
  value: unknown;
  /** Epoch ms; 0 means no expiry. */
  expiresAt: number;
}

const SWEEP_BUDGET = 10_000;
/** How many of the oldest entries eviction looks at for an expired one before evicting the oldest. */
const EVICTION_WINDOW = 16;

export class MemoryEngine {
  private readonly data = new Map<string, Entry>();
  private readonly channels = new Map<string, Set<MessageHandler>>();
  private readonly timer: NodeJS.Timeout;
  private sweepCursor: Iterator<[string, Entry]> | undefined;
  /** Where eviction reads the oldest entries from, and the oldest few it has read (see makeRoom). */
  private evictCursor: Iterator<[string, Entry]> | undefined;
  private window: Array<[string, Entry]> = [];
  /** Keys evicted because the cap was reached. */
  evictions = 0;
  readonly now: () => number;

  constructor(readonly options: MemoryEngineOptions) {
    this.now = options.now ?? Date.now;
    this.timer = setInterval(() => this.sweep(SWEEP_BUDGET), options.sweepIntervalMs);
    this.timer.unref();
  }

  get size(): number {
    return this.data.size;
  }

  get<T = unknown>(key: string): T | undefined {
    const entry = this.data.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt !== 0 && entry.expiresAt <= this.now()) {
      this.data.delete(key);
      return undefined;
    }
    return entry.value as T;
  }

  /** Stores a value; `ttlMs` of 0 or undefined keeps it until deleted or evicted. */
  set(key: string, value: unknown, ttlMs?: number): void {
    const expiresAt = ttlMs && ttlMs > 0 ? this.now() + ttlMs : 0;
    const existing = this.data.get(key);
    if (existing) {
      existing.value = value;
      existing.expiresAt = expiresAt;
      return;
    }
    if (this.data.size >= this.options.maxKeys) this.makeRoom();
    this.data.set(key, { value, expiresAt });
  }

  /** Replaces the value and keeps the current expiry. Returns false when the key does not exist. */
  update(key: string, value: unknown): boolean {
    const entry = this.data.get(key);
    if (!entry || (entry.expiresAt !== 0 && entry.expiresAt <= this.now())) return false;
    entry.value = value;
    return true;
  }

  delete(key: string): boolean {
    return this.data.delete(key);
  }

  /** Remaining time to live in ms; -1 when the key has no expiry, -2 when it does not exist (as PTTL). */
  pttl(key: string): number {
    const entry = this.data.get(key);
    if (!entry) return -2;
    if (entry.expiresAt === 0) return -1;
    const left = entry.expiresAt - this.now();
    if (left <= 0) {
      this.data.delete(key);
      return -2;
    }
    return left;
  }

  /** Sets a key's time to live; false when the key does not exist. */
  expire(key: string, ttlMs: number): boolean {
    const entry = this.data.get(key);
    if (!entry || (entry.expiresAt !== 0 && entry.expiresAt <= this.now())) return false;
    entry.expiresAt = ttlMs > 0 ? this.now() + ttlMs : 0;
    return true;
  }

  /** Removes up to `budget` expired keys, resuming where the last sweep stopped. */
  sweep(budget: number): number {
    const now = this.now();
    let removed = 0;
    for (let seen = 0; seen < budget; seen++) {
      this.sweepCursor ??= this.data.entries();
      const next = this.sweepCursor.next();
      if (next.done) {
        this.sweepCursor = undefined;
        break;
      }
      const [key, entry] = next.value;
      if (entry.expiresAt !== 0 && entry.expiresAt <= now) {
        this.data.delete(key);
        removed++;
      }
    }
    return removed;
  }

  private makeRoom(): void {
    // Prefer an expired key among the oldest few; otherwise evict the oldest inserted key. The oldest keys are read
    // through one long-lived cursor into a small window: iterating the Map from its start on every eviction would
    // walk over every slot deleted since V8 last compacted the table, which at the cap (one delete per insert)
    // makes each write cost O(maxKeys).
    const now = this.now();
    this.fillWindow();
    let victim = 0;
    for (let i = 0; i < this.window.length; i++) {
      const entry = (this.window[i] as [string, Entry])[1];
      if (entry.expiresAt !== 0 && entry.expiresAt <= now) {
        victim = i;
        break;
      }
    }
    const chosen = this.window[victim];
    if (!chosen) return;
    this.window.splice(victim, 1);
    const [key, entry] = chosen;
    this.data.delete(key);
    if (entry.expiresAt === 0 || entry.expiresAt > now) this.evictions++;
  }

  /** Tops the window up to EVICTION_WINDOW of the oldest live entries, dropping ones deleted or re-inserted since. */
  private fillWindow(): void {
    this.window = this.window.filter(([key, entry]) => this.data.get(key) === entry);
    while (this.window.length < EVICTION_WINDOW) {
      this.evictCursor ??= this.data.entries();
      const next = this.evictCursor.next();
      if (next.done) {
        this.evictCursor = undefined;
        // Everything left is already in the window (or the map is empty): start over next time.
        if (this.window.length > 0 || this.data.size === 0) break;
        continue;
      }
      const [key, entry] = next.value;
      if (!this.window.some(([k]) => k === key)) this.window.push([key, entry]);
    }
  }

  subscribe(channel: string, handler: MessageHandler): void {
    let set = this.channels.get(channel);
    if (!set) {
      set = new Set();
      this.channels.set(channel, set);
    }
    set.add(handler);
  }

  unsubscribe(channel: string, handler: MessageHandler): void {
    const set = this.channels.get(channel);
    if (!set) return;
    set.delete(handler);
    if (set.size === 0) this.channels.delete(channel);
  }

  /** Delivers asynchronously, as Redis would, so a publisher never runs subscriber code inside its own call. */
  publish(channel: string, message: string): number {
    const set = this.channels.get(channel);
    if (!set || set.size === 0) return 0;
    const handlers = [...set];
    queueMicrotask(() => {
      for (const handler of handlers) handler(message, channel);
    });
    return handlers.length;
  }

  clear(): void {
    this.data.clear();
    this.sweepCursor = undefined;
    this.evictCursor = undefined;
    this.window = [];
  }

  close(): void {
    clearInterval(this.timer);
    this.channels.clear();
  }
}
