// The per-process fan-out: one store subscription (or one history poller, on stores without subscriptions) per
// channel, however many listeners the channel has here. Each entry is formatted once and handed to every listener;
// replay after a reconnect and gap filling after a lost pub/sub message both read the capped history.

import type { KitLogger } from '../core/logger.js';
import type { Entry, RealtimeBackend } from './backend.js';

/** Something that receives a channel's entries: an SSE client, or a server-side subscriber. */
export interface Listener {
  /** Highest id delivered to this listener; entries at or below it are skipped. */
  cursor: number;
  /** Entries that arrived live while the listener's replay was being read. */
  pending: Entry[] | null;
  deliver(entry: Entry, chunk: string): void;
  /** The history no longer holds every event the listener asked for (trimmed or expired). */
  gap?(after: number, firstHeld: number): void;
}

/** When a new subscription re-reads its channel's history for messages pub/sub may have lost. */
const CATCH_UP_MS = [1000, 5000];

interface HubChannel {
  name: string;
  listeners: Set<Listener>;
  /** Highest id this process has seen on the channel: a jump past it means a lost message. */
  last: number;
  ready: Promise<void>;
  stop: () => Promise<void>;
  /** Serialises the handling of entries, so a gap fill finishes before later entries go out. */
  chain: Promise<void>;
  pollTimer?: NodeJS.Timeout;
  /** Highest id this process published on the channel and has not yet seen delivered, with the timer checking it. */
  expected: number;
  expectTimer?: NodeJS.Timeout;
  /** Subscribed, with `last` read from the store: a catch-up before that would read from id 0. */
  live: boolean;
  closed: boolean;
}

/** How long a process waits for pub/sub to bring back an event it published itself before reading the history. */
const OWN_EVENT_CHECK_MS = 250;
/** How many times that check reads the history (1 s apart) before leaving the event to the next one. */
const OWN_EVENT_CHECKS = 3;

export interface HubSettings {
  pollMinMs: number;
  pollMaxMs: number;
}

/** One SSE frame. The payload is JSON on one line, so a single `data:` field carries it. */
export function frame(entry: Entry): string {
  return `id: ${entry.id}\ndata: ${entry.payload}\n\n`;
}

export class Hub {
  private readonly channels = new Map<string, HubChannel>();
  /** Entries handed to listeners (counted once per listener). */
  delivered = 0;
  private closed = false;

  constructor(
    private readonly backend: RealtimeBackend,
    private readonly settings: HubSettings,
    private readonly logger: KitLogger,
  ) {}

  get channelCount(): number {
    return this.channels.size;
  }

  channelNames(): IterableIterator<string> {
    return this.channels.keys();
  }

  /**
   * Adds a listener to a channel, subscribing the process to it first if needed. With `after`, the history past
   * that id is delivered before any live entry, each entry exactly once. Rejects when the store is unreachable.
   */
  async attach(name: string, listener: Listener, after?: number): Promise<void> {
    const channel = this.open(name);
    listener.pending = after === undefined ? null : [];
    channel.listeners.add(listener);
    try {
      await channel.ready;
      if (after === undefined) return;
      const { current, entries } = await this.backend.read(name, after);
      // The history restarted (it expired) while the client was away: its ids mean nothing now, start over.
      const from = after > current ? 0 : after;
      const first = entries[0];
      if (listener.gap && current > from && (!first || first.id > from + 1))
        listener.gap(from, first?.id ?? current + 1);
      listener.cursor = from;
      for (const entry of entries) this.give(listener, entry, frame(entry));
      const queued = listener.pending ?? [];
      listener.pending = null;
      for (const entry of queued) this.give(listener, entry, frame(entry));
    } catch (error) {
      listener.pending = null;
      await this.detach(name, listener);
      throw error;
    }
  }

  async detach(name: string, listener: Listener): Promise<void> {
    const channel = this.channels.get(name);
    if (!channel?.listeners.delete(listener) || channel.listeners.size > 0) return;
    this.channels.delete(name);
    channel.closed = true;
    clearTimeout(channel.pollTimer);
    clearTimeout(channel.expectTimer);
    await channel.ready
      .then(channel.stop, () => undefined)
      .catch((error: unknown) => {
        this.logger.warn({ err: error, channel: name }, 'realtime: could not unsubscribe from a channel');
      });
  }

  private give(listener: Listener, entry: Entry, chunk: string): void {
    if (entry.id <= listener.cursor) return;
    listener.cursor = entry.id;
    this.delivered++;
    listener.deliver(entry, chunk);
  }

  private open(name: string): HubChannel {
    const existing = this.channels.get(name);
    if (existing) return existing;
    const channel: HubChannel = {
      name,
      listeners: new Set(),
      last: 0,
      ready: Promise.resolve(),
      stop: async () => undefined,
      chain: Promise.resolve(),
      expected: 0,
      live: false,
      closed: false,
    };
    this.channels.set(name, channel);
    channel.ready = this.backend.pushes ? this.subscribe(channel) : this.startPolling(channel);
    // A failed subscription is reported to the attach() that awaits it; drop the channel so the next try is fresh.
    channel.ready.catch(() => {
      if (this.channels.get(name) === channel) this.channels.delete(name);
    });
    return channel;
  }

  private async subscribe(channel: HubChannel): Promise<void> {
    const { current } = await this.backend.read(channel.name, -1);
    channel.last = current;
    channel.stop = await this.backend.listen(channel.name, (entry) => {
      this.enqueue(channel, () => this.onEntry(channel, entry));
    });
    if (channel.closed) {
      await channel.stop();
      return;
    }
    channel.live = true;
    // Pub/sub delivers at most once, and a lost message is noticed only when a later one arrives. A new subscriber
    // connection is where one is most often lost: an ioredis Cluster may move its subscriber to another node right
    // after the first SUBSCRIBE (and re-subscribe there). Two catch-up reads of the history, 1 s and 5 s after
    // subscribing, deliver whatever the channel published meanwhile that pub/sub did not bring.
    for (const delay of CATCH_UP_MS) {
      const timer = setTimeout(() => this.enqueue(channel, () => this.catchUp(channel)), delay);
      timer.unref();
    }
  }

  /**
   * Runs `step` after the channel's earlier steps, in order. A step that throws is logged and does not stop the
   * ones after it (a rejected chain would silently skip every later entry).
   */
  private enqueue(channel: HubChannel, step: () => Promise<void>): void {
    channel.chain = channel.chain.then(step).catch((error: unknown) => {
      this.logger.warn({ err: error, channel: channel.name }, 'realtime: handling an entry failed');
    });
  }

  private async catchUp(channel: HubChannel): Promise<void> {
    if (channel.closed || this.closed) return;
    try {
      const { entries } = await this.backend.read(channel.name, channel.last);
      for (const entry of entries) if (entry.id > channel.last) this.dispatch(channel, entry);
    } catch (error) {
      this.logger.warnOnce('ERR_KIT_REALTIME_CATCH_UP', 'realtime: a catch-up read of a channel history failed', {
        err: error,
      });
    }
  }

  /**
   * This process appended `id` to `channel`. Where the channel is open here on pub/sub, the event should come back
   * by it; if it has not within OWN_EVENT_CHECK_MS (pub/sub lost it, and no later event reveals the gap), the
   * history is read. One timer per channel, however many events are published.
   */
  published(name: string, id: number): void {
    const channel = this.channels.get(name);
    // Before the subscription is made the event is in the history the first read brings; nothing to await.
    if (!channel?.live || channel.closed || !this.backend.pushes || id <= channel.last) return;
    if (id > channel.expected) channel.expected = id;
    if (channel.expectTimer) return;
    let checks = 0;
    const check = () => {
      channel.expectTimer = undefined;
      if (channel.closed || this.closed || channel.expected <= channel.last) return;
      this.enqueue(channel, async () => {
        await this.catchUp(channel);
        // A failed read tries again, a bounded number of times; after that the next event or catch-up brings it.
        if (channel.expected > channel.last && ++checks < OWN_EVENT_CHECKS && !channel.closed && !this.closed) {
          channel.expectTimer = setTimeout(check, 1000);
          channel.expectTimer.unref();
        } else if (channel.expected > channel.last) channel.expected = channel.last;
      });
    };
    channel.expectTimer = setTimeout(check, OWN_EVENT_CHECK_MS);
    channel.expectTimer.unref();
  }

  private async onEntry(channel: HubChannel, entry: Entry): Promise<void> {
    if (channel.closed) return;
    if (entry.id <= channel.last) {
      // Either a late copy of an entry this process already has (one published just before the subscription that a
      // Cluster's bus delivered after it, or one a catch-up read delivered first), or the history expired and
      // restarted at 1. The store's counter tells them apart: it went back only in the second case.
      let current: number;
      try {
        ({ current } = await this.backend.read(channel.name, -1));
      } catch (error) {
        this.logger.warn({ err: error, channel: channel.name }, 'realtime: could not check an out-of-order entry');
        return;
      }
      if (current >= channel.last) return;
      channel.last = entry.id - 1;
      for (const listener of channel.listeners) listener.cursor = Math.min(listener.cursor, channel.last);
    }
    if (entry.id > channel.last + 1 && channel.last > 0) {
      // A message was lost (the subscriber connection dropped and came back): fetch what was missed, in order.
      try {
        const { entries } = await this.backend.read(channel.name, channel.last);
        for (const missed of entries) if (missed.id < entry.id) this.dispatch(channel, missed);
      } catch (error) {
        this.logger.warn({ err: error, channel: channel.name }, 'realtime: could not fill a gap from the history');
      }
    }
    this.dispatch(channel, entry);
  }

  private dispatch(channel: HubChannel, entry: Entry): void {
    if (entry.id > channel.last) channel.last = entry.id;
    const chunk = frame(entry);
    for (const listener of channel.listeners) {
      if (listener.pending) listener.pending.push(entry);
      else {
        // One listener that throws does not keep the entry from the others.
        try {
          this.give(listener, entry, chunk);
        } catch (error) {
          this.logger.warn({ err: error, channel: channel.name }, 'realtime: a listener failed');
        }
      }
    }
  }

  // Stores without subscriptions (Upstash REST): read the history after the last id seen, quickly while events
  // flow, backing off to pollMaxMs while the channel is quiet.
  private async startPolling(channel: HubChannel): Promise<void> {
    const { current } = await this.backend.read(channel.name, -1);
    channel.last = current;
    let delay = this.settings.pollMinMs;
    const tick = async () => {
      if (channel.closed || this.closed) return;
      try {
        const { current: now, entries } = await this.backend.read(channel.name, channel.last);
        if (now < channel.last) {
          channel.last = 0;
          for (const listener of channel.listeners) listener.cursor = 0;
        }
        for (const entry of entries) this.dispatch(channel, entry);
        delay = entries.length > 0 ? this.settings.pollMinMs : Math.min(delay * 2, this.settings.pollMaxMs);
      } catch (error) {
        delay = this.settings.pollMaxMs;
        this.logger.warnOnce('ERR_KIT_REALTIME_POLL', 'realtime: polling a channel history failed; retrying', {
          err: error,
        });
      }
      if (channel.closed || this.closed) return;
      channel.pollTimer = setTimeout(() => void tick(), delay);
      channel.pollTimer.unref();
    };
    channel.pollTimer = setTimeout(() => void tick(), delay);
    channel.pollTimer.unref();
    channel.stop = async () => clearTimeout(channel.pollTimer);
  }

  async close(): Promise<void> {
    this.closed = true;
    const channels = [...this.channels.values()];
    this.channels.clear();
    await Promise.all(
      channels.map(async (channel) => {
        channel.closed = true;
        clearTimeout(channel.pollTimer);
        clearTimeout(channel.expectTimer);
        await channel.ready.then(channel.stop, () => undefined).catch(() => undefined);
      }),
    );
  }
}
