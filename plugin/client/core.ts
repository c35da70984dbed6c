// The browser client of the kit's realtime routes, with no dependency and no Node-only API: Server-Sent Events
// read with fetch (so headers such as Authorization can be sent), reconnection with backoff that resumes from
// the last event id, and small helpers to publish and to show presence. Runs in browsers and in Node 18+.

/** An event as the server sends it. */
export interface RealtimeEvent {
  /** Consecutive per channel; absent on notices such as `realtime.gap`. */
  id?: string;
  type: string;
  data: unknown;
  at?: number;
}

export type ConnectionStatus = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface SubscribeOptions {
  /** Resume after this id (what the server's history holds after it is replayed first). */
  lastEventId?: string;
  /** Extra request headers, e.g. `{ authorization: 'Bearer …' }`. */
  headers?: Record<string, string>;
  /** Fetch credentials mode. @default 'same-origin' */
  credentials?: 'include' | 'same-origin' | 'omit';
  /** First reconnection delay; doubles on each failure, with jitter. @default 500 */
  minDelayMs?: number;
  /** Longest reconnection delay. @default 15000 */
  maxDelayMs?: number;
  /** Told of every status change; `closed` carries the reason when the server refused (4xx) or close() ran. */
  onStatus?: (status: ConnectionStatus, detail?: { status?: number; error?: unknown }) => void;
  /** The fetch to use. @default globalThis.fetch */
  fetch?: typeof fetch;
}

export interface Subscription {
  /** Stops reading and reconnecting. */
  close(): void;
  /** The id of the last event received (what a reconnection resumes from). */
  readonly lastEventId: string | undefined;
  readonly status: ConnectionStatus;
}

/** The URL of a channel's routes under a base path, e.g. `channelUrl('/api/v1', 'ws-1:chat')`. */
export function channelUrl(baseUrl: string, channel: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/realtime/${encodeURIComponent(channel)}`;
}

/**
 * Follows a channel's Server-Sent Events at `url`, calling `onEvent` for each. Reconnects on its own after a
 * network error or a 5xx, sending `Last-Event-ID` so that the server replays what was missed; a 4xx answer
 * (forbidden, bad channel) stops it with status `closed`.
 */
export function subscribe(
  url: string,
  onEvent: (event: RealtimeEvent) => void,
  options: SubscribeOptions = {},
): Subscription {
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const minDelay = options.minDelayMs ?? 500;
  const maxDelay = options.maxDelayMs ?? 15_000;
  let lastEventId = options.lastEventId;
  let status: ConnectionStatus = 'connecting';
  let closed = false;
  let controller: AbortController | undefined;
  let wake: (() => void) | undefined;

  const setStatus = (next: ConnectionStatus, detail?: { status?: number; error?: unknown }) => {
    status = next;
    options.onStatus?.(next, detail);
  };

  const dispatch = (id: string | undefined, data: string) => {
    if (id !== undefined) lastEventId = id;
    if (data === '') return;
    let parsed: RealtimeEvent;
    try {
      parsed = JSON.parse(data) as RealtimeEvent;
    } catch {
      return; // not one of ours
    }
    if (id !== undefined) parsed.id = id;
    onEvent(parsed);
  };

  const read = async (body: ReadableStream<Uint8Array>) => {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    let data: string[] = [];
    let id: string | undefined;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let newline = buffer.search(/\r\n|\r|\n/);
      while (newline >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1));
        if (line === '') {
          dispatch(id, data.join('\n'));
          data = [];
          id = undefined;
        } else if (!line.startsWith(':')) {
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          let value = colon < 0 ? '' : line.slice(colon + 1);
          if (value.startsWith(' ')) value = value.slice(1);
          if (field === 'data') data.push(value);
          else if (field === 'id' && !value.includes('\0')) id = value;
        }
        newline = buffer.search(/\r\n|\r|\n/);
      }
    }
  };

  const run = async () => {
    let attempt = 0;
    while (!closed) {
      controller = new AbortController();
      try {
        const headers: Record<string, string> = { accept: 'text/event-stream', ...options.headers };
        if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
        const res = await doFetch(url, {
          headers,
          signal: controller.signal,
          credentials: options.credentials ?? 'same-origin',
        });
        if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
          closed = true;
          setStatus('closed', { status: res.status });
          return;
        }
        if (!res.ok || !res.body) throw new Error(`realtime: HTTP ${res.status}`);
        attempt = 0;
        setStatus('open');
        await read(res.body);
      } catch (error) {
        if (closed) return;
        void error;
      }
      if (closed) return;
      setStatus('reconnecting');
      const delay = Math.min(maxDelay, minDelay * 2 ** attempt) * (0.5 + Math.random() / 2);
      attempt = Math.min(attempt + 1, 20);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, delay);
      });
    }
  };

  setStatus('connecting');
  void run();
  return {
    close() {
      if (closed) return;
      closed = true;
      controller?.abort();
      wake?.();
      setStatus('closed');
    },
    get lastEventId() {
      return lastEventId;
    },
    get status() {
      return status;
    },
  };
}

export interface RequestOptions {
  headers?: Record<string, string>;
  credentials?: 'include' | 'same-origin' | 'omit';
  fetch?: typeof fetch;
}

async function call(method: string, url: string, body: unknown, options: RequestOptions): Promise<unknown> {
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const res = await doFetch(url, {
    method,
    headers: { 'content-type': 'application/json', ...options.headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: options.credentials ?? 'same-origin',
    // Lets a leave sent while the page unloads still reach the server.
    keepalive: method === 'DELETE',
  });
  const text = await res.text();
  const parsed = text ? (JSON.parse(text) as unknown) : undefined;
  if (!res.ok) {
    const error = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw Object.assign(new Error(error?.message ?? `HTTP ${res.status}`), { status: res.status, code: error?.code });
  }
  return parsed;
}

/** Publishes on a channel through `POST {channel url}`. */
export async function publish(
  url: string,
  data: unknown,
  options: RequestOptions & { type?: string } = {},
): Promise<{ id: string }> {
  const body = options.type === undefined ? { data } : { type: options.type, data };
  return (await call('POST', url, body, options)) as { id: string };
}

export interface PresenceMember {
  member: string;
  meta: unknown;
}

/** The members present in a channel now. */
export async function listPresence(url: string, options: RequestOptions = {}): Promise<PresenceMember[]> {
  return ((await call('GET', `${url}/presence`, undefined, options)) as { members: PresenceMember[] }).members;
}

export interface PresenceSession {
  /** The member id the server recorded (the server's `identify` hook may have chosen it). */
  readonly member: string | undefined;
  update(meta: unknown): Promise<void>;
  leave(): Promise<void>;
}

/**
 * Joins a channel's presence and keeps the lease alive with a heartbeat every third of the server's lease
 * until `leave()`. `member` may be left out when the server identifies requests itself.
 */
export function joinPresence(
  url: string,
  options: RequestOptions & {
    member?: string;
    meta?: unknown;
    /** Told the member id the server recorded, after each heartbeat. */
    onBeat?: (member: string) => void;
    onError?: (error: unknown) => void;
  } = {},
): PresenceSession {
  let meta = options.meta;
  let member: string | undefined = options.member;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let left = false;
  let inflight: Promise<unknown> = Promise.resolve();
  const beat = async () => {
    const body: Record<string, unknown> = { meta };
    if (options.member !== undefined) body.member = options.member;
    const reply = (await call('POST', `${url}/presence`, body, options)) as { member: string; ttlMs: number };
    member = reply.member;
    if (!left) options.onBeat?.(reply.member);
    return reply.ttlMs;
  };
  const loop = async () => {
    let next = 5000;
    try {
      const pending = beat();
      inflight = pending.catch(() => undefined);
      next = Math.max(1000, Math.floor((await pending) / 3));
    } catch (error) {
      options.onError?.(error);
    }
    if (!left) timer = setTimeout(() => void loop(), next);
  };
  void loop();
  return {
    get member() {
      return member;
    },
    async update(next) {
      meta = next;
      await beat();
    },
    async leave() {
      if (left) return;
      left = true;
      clearTimeout(timer);
      await inflight; // a join still on its way would otherwise land after the leave
      const body = options.member === undefined ? {} : { member: options.member };
      await call('DELETE', `${url}/presence`, body, options).catch(() => undefined);
    },
  };
}
