// Options of realtime channels and presence, parsed once when the kit is created.

import type { Request } from 'express';
import { type Duration, parseDuration } from '../core/duration.js';
import { ConfigError } from '../core/errors.js';
import { assertKnownKeys, assertPlainObject, positiveInt } from '../core/options.js';

/** What a request wants to do on a channel, as handed to `authorize`. */
export type RealtimeAction = 'subscribe' | 'publish' | 'presence';

export interface AuthorizeInput {
  channel: string;
  action: RealtimeAction;
}

export interface RealtimeOptions {
  /**
   * Decides whether a request may subscribe to, publish on, or show presence in a channel: the place for
   * workspace isolation. Without it every HTTP route answers 403 (the server-side API still works).
   * @default undefined (deny every HTTP request, and log ERR_KIT_REALTIME_NO_AUTHORIZE once)
   * @example { authorize: (req, { channel }) => channel.startsWith(`${req.user.workspace}:`) }
   */
  authorize?: (req: Request, input: AuthorizeInput) => boolean | Promise<boolean>;
  /**
   * The presence identity of a request (a user id). Without it the member named in the request body is used,
   * which a client can choose freely.
   * @default undefined (use the body's `member`)
   * @example { identify: (req) => req.user?.id }
   */
  identify?: (req: Request) => string | undefined;
  /** Events each channel's history keeps for `Last-Event-ID` replay. @default 1000 */
  historySize?: number;
  /** How long a channel's history outlives its last event. @default '24 h' */
  historyTtl?: Duration;
  /** Largest event accepted, in bytes of JSON (also the POST body limit). @default 16384 */
  maxEventBytes?: number;
  /** Interval of the comment line that keeps idle SSE connections (and proxies) open. @default '15 s' */
  heartbeat?: Duration;
  /** Bytes queued for one SSE client past which it is dropped as too slow (it reconnects and replays). @default 1048576 */
  maxClientBuffer?: number;
  /** Most SSE clients this process serves at once; beyond it new ones get 503. @default 10000 */
  maxClients?: number;
  /** Stores without subscriptions (Upstash REST): fastest and slowest history poll. @default { min: '250 ms', max: '2 s' } */
  poll?: { min?: Duration; max?: Duration };
  /** Presence settings. */
  presence?: {
    /** How long a member stays present without a heartbeat (server clock). @default '30 s' */
    ttl?: Duration;
    /** Most members one channel holds (up to 5000). @default 1000 */
    maxMembers?: number;
    /** Largest metadata of one member, in bytes of JSON. @default 1024 */
    maxMetaBytes?: number;
  };
}

export interface RealtimeConfig {
  authorize: RealtimeOptions['authorize'];
  identify: RealtimeOptions['identify'];
  historySize: number;
  historyTtlMs: number;
  maxEventBytes: number;
  heartbeatMs: number;
  maxClientBuffer: number;
  maxClients: number;
  pollMinMs: number;
  pollMaxMs: number;
  presenceTtlMs: number;
  maxMembers: number;
  maxMetaBytes: number;
}

const KNOWN = [
  'authorize',
  'identify',
  'historySize',
  'historyTtl',
  'maxEventBytes',
  'heartbeat',
  'maxClientBuffer',
  'maxClients',
  'poll',
  'presence',
] as const;

export function parseRealtimeOptions(options: RealtimeOptions = {}): RealtimeConfig {
  assertPlainObject(options, 'realtime');
  assertKnownKeys(options, KNOWN, 'realtime');
  for (const name of ['authorize', 'identify'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'function') {
      throw new TypeError(`realtime.${name}: expected a function, got ${typeof options[name]}`);
    }
  }
  const poll = options.poll ?? {};
  assertPlainObject(poll, 'realtime.poll');
  assertKnownKeys(poll, ['min', 'max'], 'realtime.poll');
  const presence = options.presence ?? {};
  assertPlainObject(presence, 'realtime.presence');
  assertKnownKeys(presence, ['ttl', 'maxMembers', 'maxMetaBytes'], 'realtime.presence');
  const config: RealtimeConfig = {
    authorize: options.authorize,
    identify: options.identify,
    historySize: positiveInt(options.historySize ?? 1000, 'realtime.historySize', 100_000),
    historyTtlMs: parseDuration(options.historyTtl ?? '24 h', 'realtime.historyTtl'),
    maxEventBytes: positiveInt(options.maxEventBytes ?? 16_384, 'realtime.maxEventBytes', 1_048_576),
    heartbeatMs: parseDuration(options.heartbeat ?? '15 s', 'realtime.heartbeat'),
    maxClientBuffer: positiveInt(options.maxClientBuffer ?? 1_048_576, 'realtime.maxClientBuffer'),
    maxClients: positiveInt(options.maxClients ?? 10_000, 'realtime.maxClients'),
    pollMinMs: parseDuration(poll.min ?? '250 ms', 'realtime.poll.min'),
    pollMaxMs: parseDuration(poll.max ?? '2 s', 'realtime.poll.max'),
    presenceTtlMs: parseDuration(presence.ttl ?? '30 s', 'realtime.presence.ttl'),
    maxMembers: positiveInt(presence.maxMembers ?? 1000, 'realtime.presence.maxMembers', 5000),
    maxMetaBytes: positiveInt(presence.maxMetaBytes ?? 1024, 'realtime.presence.maxMetaBytes', 65_536),
  };
  if (config.pollMaxMs < config.pollMinMs) {
    throw new ConfigError('realtime.poll: max must be at least min');
  }
  if (config.presenceTtlMs < 1000) {
    throw new ConfigError("realtime.presence.ttl: use at least '1 s' (heartbeats come every third of it)");
  }
  return config;
}

/** Channel names: short, and from a set that is safe in a URL path segment and a key. */
export const CHANNEL_PATTERN = /^[A-Za-z0-9_.:@=+-]{1,128}$/;
/** Presence member ids. */
export const MEMBER_PATTERN = /^[A-Za-z0-9_.:@=+-]{1,128}$/;
/** Event types. `presence.*` is reserved for the server. */
export const TYPE_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
