// kit.realtime: publish events to channels, listen to them server-side, read their history, and the counters the
// SSE routes keep. One instance per kit, built on first use.

import type { FeatureContext } from '../core/context.js';
import { ClosedError } from '../core/errors.js';
import { createBackend, type Entry, type RealtimeBackend } from './backend.js';
import { RealtimeInputError } from './errors.js';
import { Hub, type Listener } from './hub.js';
import { CHANNEL_PATTERN, type RealtimeConfig, TYPE_PATTERN } from './options.js';
import { PresenceService } from './presence.js';

/** An event as subscribers receive it. */
export interface RealtimeEvent {
  /** Consecutive per channel; what `Last-Event-ID` refers to. */
  id: string;
  /** `message` unless the publisher named another; `presence.join` / `presence.leave` come from presence. */
  type: string;
  data: unknown;
  /** When it was published, epoch ms (the publishing process's clock). */
  at: number;
}

export interface PublishInput {
  /** @default 'message' */
  type?: string;
  data?: unknown;
}

export interface RealtimeStats {
  /** SSE clients connected to this process. */
  clients: number;
  /** Channels this process holds a subscription (or a poller) for. */
  channels: number;
  /** Events handed to listeners since start. */
  delivered: number;
  /** SSE clients dropped because their buffer passed `maxClientBuffer`. */
  dropped: number;
}

export interface Realtime {
  /** Appends the event to the channel's history and delivers it to every subscriber, on every instance. */
  publish(channel: string, event: PublishInput): Promise<{ id: string }>;
  /**
   * Listens to a channel from server code. With `lastEventId`, the events after it are delivered first.
   * Resolves to the function that stops listening.
   */
  subscribe(
    channel: string,
    onEvent: (event: RealtimeEvent) => void,
    options?: { lastEventId?: string },
  ): Promise<() => Promise<void>>;
  /** The events held after `lastEventId` (all held ones without it), oldest first. */
  history(channel: string, lastEventId?: string): Promise<RealtimeEvent[]>;
  stats(): RealtimeStats;
}

export function assertChannel(channel: unknown): asserts channel is string {
  if (typeof channel !== 'string' || !CHANNEL_PATTERN.test(channel)) {
    throw new RealtimeInputError('channel: 1-128 characters from A-Z a-z 0-9 _ . : @ = + -');
  }
}

/** Parses a Last-Event-ID; undefined when absent or not one of ours. */
export function parseEventId(value: unknown): number | undefined {
  if (typeof value !== 'string' || !/^\d{1,15}$/.test(value)) return undefined;
  return Number(value);
}

export function toEvent(entry: Entry): RealtimeEvent {
  const body = JSON.parse(entry.payload) as Omit<RealtimeEvent, 'id'>;
  return { id: String(entry.id), type: body.type, data: body.data, at: body.at };
}

export class RealtimeService implements Realtime {
  readonly backend: RealtimeBackend;
  readonly hub: Hub;
  readonly presence: PresenceService;
  clients = 0;
  dropped = 0;
  private closed = false;

  constructor(
    readonly context: FeatureContext,
    readonly config: RealtimeConfig,
  ) {
    this.backend = createBackend(context.store, config);
    this.hub = new Hub(this.backend, config, context.logger);
    this.presence = new PresenceService(
      context.store,
      config,
      context.logger,
      (channel, type, data) => this.append(channel, type, data),
      () => this.hub.channelNames(),
    );
  }

  /** Builds the wire payload once; checks what a publisher controls. */
  encode(type: unknown, data: unknown): string {
    if (typeof type !== 'string' || !TYPE_PATTERN.test(type)) {
      throw new RealtimeInputError('type: 1-64 characters from A-Z a-z 0-9 _ . : -');
    }
    let payload: string | undefined;
    try {
      payload = JSON.stringify({ type, data: data === undefined ? null : data, at: Date.now() });
    } catch {
      payload = undefined;
    }
    if (payload === undefined) throw new RealtimeInputError('data: must be JSON-serialisable');
    if (Buffer.byteLength(payload) > this.config.maxEventBytes) {
      throw new RealtimeInputError(`event: larger than ${this.config.maxEventBytes} bytes of JSON`, 413);
    }
    return payload;
  }

  private async append(channel: string, type: string, data: unknown): Promise<{ id: string }> {
    if (this.closed) throw new ClosedError('realtime');
    assertChannel(channel);
    const id = await this.backend.append(channel, this.encode(type, data));
    this.hub.published(channel, id);
    return { id: String(id) };
  }

  publish(channel: string, event: PublishInput): Promise<{ id: string }> {
    if (!event || typeof event !== 'object') {
      return Promise.reject(new RealtimeInputError('publish(channel, event): event must be an object { type?, data }'));
    }
    return this.append(channel, event.type ?? 'message', event.data);
  }

  async subscribe(
    channel: string,
    onEvent: (event: RealtimeEvent) => void,
    options: { lastEventId?: string } = {},
  ): Promise<() => Promise<void>> {
    if (this.closed) throw new ClosedError('realtime');
    assertChannel(channel);
    const listener: Listener = {
      cursor: 0,
      pending: null,
      deliver: (entry) => {
        try {
          onEvent(toEvent(entry));
        } catch (error) {
          this.context.logger.error({ err: error, channel }, 'realtime: a subscriber threw');
        }
      },
    };
    await this.hub.attach(channel, listener, parseEventId(options.lastEventId));
    return () => this.hub.detach(channel, listener);
  }

  async history(channel: string, lastEventId?: string): Promise<RealtimeEvent[]> {
    assertChannel(channel);
    const { entries } = await this.backend.read(channel, parseEventId(lastEventId) ?? 0);
    return entries.map(toEvent);
  }

  stats(): RealtimeStats {
    return {
      clients: this.clients,
      channels: this.hub.channelCount,
      delivered: this.hub.delivered,
      dropped: this.dropped,
    };
  }

  /** Registered with the kit's close hooks by the kit. */
  readonly closers = new Set<() => void>();

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.presence.close();
    for (const end of [...this.closers]) end();
    await this.hub.close();
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
