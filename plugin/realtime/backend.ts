// The storage contract of realtime channels, and its two implementations: the embedded engine (TypeScript) and
// every Redis-protocol store (Lua). A channel is a sequence counter, a capped history of "<id> <payload>" entries
// and a pub/sub channel; ids are consecutive per channel, which makes replay a single range read.

import type { MemoryStore, RedisStore, Store } from '../connection/store.js';
import { StoreCommandError } from '../core/errors.js';
import { rtAppend, rtRead } from './scripts.generated.js';

export interface Entry {
  id: number;
  /** The event as JSON text, exactly as it goes on the wire. */
  payload: string;
}

export interface ReadResult {
  /** The channel's current (highest) id; 0 when it has no history. */
  current: number;
  /** Entries after the requested id, oldest first (fewer than asked when the history was trimmed). */
  entries: Entry[];
}

export interface RealtimeBackend {
  /** Stores the event under the next id and delivers it to subscribers; resolves to the id. */
  append(channel: string, payload: string): Promise<number>;
  /** Entries after `after` (-1: none, only the current id). */
  read(channel: string, after: number): Promise<ReadResult>;
  /** Whether `listen` is pushed (false: the hub polls `read`). */
  readonly pushes: boolean;
  /** Delivers the channel's new entries as they are appended; resolves to the function that stops it. */
  listen(channel: string, onEntry: (entry: Entry) => void): Promise<() => Promise<void>>;
}

export interface BackendSettings {
  historySize: number;
  historyTtlMs: number;
}

export function parseEntry(raw: string): Entry | undefined {
  const space = raw.indexOf(' ');
  const id = Number(raw.slice(0, space));
  if (space <= 0 || !Number.isSafeInteger(id)) return undefined;
  return { id, payload: raw.slice(space + 1) };
}

export function createBackend(store: Store, settings: BackendSettings): RealtimeBackend {
  return store.mode === 'memory' ? new MemoryBackend(store, settings) : new RedisBackend(store, settings);
}

interface MemoryHistory {
  current: number;
  entries: string[];
}

class MemoryBackend implements RealtimeBackend {
  readonly pushes = true;
  private readonly key: (id: string, ...parts: string[]) => string;

  constructor(
    private readonly store: MemoryStore,
    private readonly settings: BackendSettings,
  ) {
    this.key = store.keys.forFeature('rt');
  }

  async append(channel: string, payload: string): Promise<number> {
    await this.store.ping(); // refuses after close, like every store call
    const engine = this.store.engine;
    const key = this.key(channel, 'h');
    const history = engine.get<MemoryHistory>(key) ?? { current: 0, entries: [] };
    history.current += 1;
    const entry = `${history.current} ${payload}`;
    history.entries.push(entry);
    if (history.entries.length > this.settings.historySize) {
      history.entries.splice(0, history.entries.length - this.settings.historySize);
    }
    engine.set(key, history, this.settings.historyTtlMs);
    engine.publish(this.store.keys.channel('rt', channel), entry);
    return history.current;
  }

  async read(channel: string, after: number): Promise<ReadResult> {
    await this.store.ping();
    const history = this.store.engine.get<MemoryHistory>(this.key(channel, 'h'));
    const current = history?.current ?? 0;
    if (!history || after < 0 || after === current) return { current, entries: [] };
    const wanted = after > current ? current : current - after;
    return { current, entries: history.entries.slice(-wanted).map((raw) => parseEntry(raw) as Entry) };
  }

  async listen(channel: string, onEntry: (entry: Entry) => void): Promise<() => Promise<void>> {
    return this.store.subscribe(this.store.keys.channel('rt', channel), (raw) => {
      const entry = parseEntry(raw);
      if (entry) onEntry(entry);
    });
  }
}

class RedisBackend implements RealtimeBackend {
  private readonly key: (id: string, ...parts: string[]) => string;

  constructor(
    private readonly store: RedisStore,
    private readonly settings: BackendSettings,
  ) {
    this.key = store.keys.forFeature('rt');
  }

  get pushes(): boolean {
    return this.store.canSubscribe;
  }

  async append(channel: string, payload: string): Promise<number> {
    const pubsub = this.store.canSubscribe ? this.store.keys.channel('rt', channel) : '';
    const id = await this.store.script(
      rtAppend,
      [this.key(channel, 'seq'), this.key(channel, 'h')],
      [payload, this.settings.historySize, this.settings.historyTtlMs, pubsub],
    );
    return Number(id);
  }

  async read(channel: string, after: number): Promise<ReadResult> {
    const reply = await this.store.script(rtRead, [this.key(channel, 'seq'), this.key(channel, 'h')], [after]);
    if (!Array.isArray(reply) || !Array.isArray(reply[1])) {
      throw new StoreCommandError(`rt_read: unexpected reply ${JSON.stringify(reply)}`);
    }
    const entries: Entry[] = [];
    for (const raw of reply[1] as unknown[]) {
      const entry = parseEntry(String(raw));
      if (entry) entries.push(entry);
    }
    return { current: Number(reply[0]), entries };
  }

  async listen(channel: string, onEntry: (entry: Entry) => void): Promise<() => Promise<void>> {
    return this.store.subscribe(this.store.keys.channel('rt', channel), (raw) => {
      const entry = parseEntry(raw);
      if (entry) onEntry(entry);
    });
  }
}
