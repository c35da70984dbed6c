// React hooks over the realtime client: useRealtime(channel) for a channel's live events and usePresence(channel)
// for who is there. Hooks of one page that follow the same channel share one connection.

import { useCallback, useEffect, useRef, useState } from 'react';
import {
  type ConnectionStatus,
  channelUrl,
  joinPresence,
  listPresence,
  type PresenceMember,
  publish,
  type RealtimeEvent,
  type RequestOptions,
  type Subscription,
  subscribe,
} from './core.js';

export interface HookOptions extends RequestOptions {
  /** Where the kit is mounted. @default '/api/v1' */
  baseUrl?: string;
}

interface Shared {
  subscription: Subscription;
  listeners: Set<(event: RealtimeEvent) => void>;
  statusListeners: Set<(status: ConnectionStatus) => void>;
}

const shared = new Map<string, Shared>();

/** Follows `url` through one connection however many hooks ask; closed when the last one lets go. */
function follow(
  url: string,
  options: RequestOptions,
  onEvent: (event: RealtimeEvent) => void,
  onStatus: (status: ConnectionStatus) => void,
): () => void {
  let entry = shared.get(url);
  if (!entry) {
    const listeners = new Set<(event: RealtimeEvent) => void>();
    const statusListeners = new Set<(status: ConnectionStatus) => void>();
    const subscription = subscribe(
      url,
      (event) => {
        for (const listener of listeners) listener(event);
      },
      {
        headers: options.headers,
        credentials: options.credentials,
        fetch: options.fetch,
        onStatus: (status) => {
          for (const listener of statusListeners) listener(status);
        },
      },
    );
    entry = { subscription, listeners, statusListeners };
    shared.set(url, entry);
  }
  const current = entry;
  current.listeners.add(onEvent);
  current.statusListeners.add(onStatus);
  onStatus(current.subscription.status);
  return () => {
    current.listeners.delete(onEvent);
    current.statusListeners.delete(onStatus);
    if (current.listeners.size === 0) {
      current.subscription.close();
      shared.delete(url);
    }
  };
}

export interface UseRealtimeResult {
  /** The latest events, oldest first, at most `max`. */
  events: RealtimeEvent[];
  status: ConnectionStatus;
  /** Publishes on the channel (the server's authorize hook decides). */
  publish: (data: unknown, type?: string) => Promise<{ id: string }>;
}

/** A channel's live events (presence notices excluded), kept to the last `max`. */
export function useRealtime(channel: string, options: HookOptions & { max?: number } = {}): UseRealtimeResult {
  const url = channelUrl(options.baseUrl ?? '/api/v1', channel);
  const max = options.max ?? 100;
  const [events, setEvents] = useState<RealtimeEvent[]>([]);
  const [status, setStatus] = useState<ConnectionStatus>('connecting');
  const optionsRef = useRef(options);
  optionsRef.current = options;

  useEffect(() => {
    setEvents([]);
    return follow(
      url,
      optionsRef.current,
      (event) => {
        if (event.type.startsWith('presence.') || event.type.startsWith('realtime.')) return;
        setEvents((previous) => [...previous.slice(-(max - 1)), event]);
      },
      setStatus,
    );
  }, [url, max]);

  const send = useCallback(
    (data: unknown, type?: string) => publish(url, data, { ...optionsRef.current, type }),
    [url],
  );
  return { events, status, publish: send };
}

export interface UsePresenceResult {
  members: PresenceMember[];
  status: ConnectionStatus;
  /** This page's member id once the server has recorded it. */
  self: string | undefined;
}

/**
 * Joins the channel's presence while mounted (heartbeats included) and keeps the member list current from the
 * channel's join and leave events, re-reading it on each (re)connection.
 */
export function usePresence(
  channel: string,
  options: HookOptions & { member?: string; meta?: unknown } = {},
): UsePresenceResult {
  const url = channelUrl(options.baseUrl ?? '/api/v1', channel);
  const [members, setMembers] = useState<PresenceMember[]>([]);
  const [status, setStatus] = useState<ConnectionStatus>('connecting');
  const [self, setSelf] = useState<string | undefined>(undefined);
  const optionsRef = useRef(options);
  optionsRef.current = options;
  const metaJson = JSON.stringify(options.meta ?? null);

  useEffect(() => {
    let active = true;
    const refresh = () => {
      listPresence(url, optionsRef.current).then(
        (list) => {
          if (active) setMembers(list);
        },
        () => undefined,
      );
    };
    const session = joinPresence(url, {
      ...optionsRef.current,
      meta: JSON.parse(metaJson) as unknown,
      onBeat: (member) => {
        if (active) setSelf(member);
      },
      onError: () => undefined,
    });
    const stop = follow(
      url,
      optionsRef.current,
      (event) => {
        const data = event.data as PresenceMember | undefined;
        if (!data || typeof data.member !== 'string') return;
        if (event.type === 'presence.join') {
          setMembers((previous) => [...previous.filter((m) => m.member !== data.member), data]);
        } else if (event.type === 'presence.leave') {
          setMembers((previous) => previous.filter((m) => m.member !== data.member));
        }
      },
      (next) => {
        setStatus(next);
        if (next === 'open') refresh();
      },
    );
    refresh();
    return () => {
      active = false;
      stop();
      void session.leave();
    };
  }, [url, metaJson]);

  return { members, status, self };
}
