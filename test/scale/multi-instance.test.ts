// Three demo processes sharing one private redis-server, behind a round-robin proxy: what one instance does, the
// others see. One global rate limit, shared sessions (and "log out everywhere"), response-cache invalidation, the
// semantic cache's entries, exclusive locks and realtime events all cross process boundaries.

import { randomBytes } from 'node:crypto';
import { type RedisProcess, startRedis } from '../support/redis-server';
import { describeWithRedis } from '../support/require-redis';
import { type DemoProcess, type RoundRobinProxy, startDemo, startProxy, stopDemo } from './demo-instances';

const API_LIMIT = 40;
const ADMIN = `multi-admin-${randomBytes(12).toString('hex')}`;
const TIMEOUT_MS = 15_000;

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: () => unknown;
}

/** One request with a hard timeout; every test client address is its own, so rate limits do not interfere. */
async function call(
  base: string,
  method: string,
  path: string,
  options: { ip: string; cookie?: string; body?: unknown; headers?: Record<string, string> },
): Promise<Reply> {
  const headers: Record<string, string> = { 'x-forwarded-for': options.ip, ...options.headers };
  if (options.cookie) headers.cookie = options.cookie;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) };
}

const cookieOf = (reply: Reply) => (reply.headers.getSetCookie()[0] ?? '').split(';')[0] ?? '';

describeWithRedis('the demo as three instances on one Redis', () => {
  let redis: RedisProcess;
  let demos: DemoProcess[] = [];
  let proxy: RoundRobinProxy;
  const at = (i: number) => (demos[i] as DemoProcess).url;

  beforeAll(async () => {
    redis = await startRedis();
    const env = {
      REDIS_URL: redis.url,
      SESSION_SECRET: randomBytes(32).toString('base64url'),
      REDIS_KIT_ADMIN_TOKEN: ADMIN,
      DEMO_API_LIMIT: String(API_LIMIT),
      DEMO_LLM_LATENCY_MS: '20,40',
    };
    demos = await Promise.all([startDemo(env), startDemo(env), startDemo(env)]);
    proxy = await startProxy(demos.map((d) => d.port));
  }, 120_000);

  afterAll(async () => {
    await proxy?.close();
    await Promise.all(demos.map((d) => stopDemo(d)));
    await redis?.stop();
  }, 30_000);

  test('one rate limit holds across the instances: exactly the limit is admitted', async () => {
    const ip = '198.51.100.10';
    const replies = await Promise.all(
      Array.from({ length: API_LIMIT + 20 }, () => call(proxy.url, 'GET', '/api/v1/products', { ip })),
    );
    const servedBy = new Set(replies.map((r) => r.headers.get('x-served-by')));
    expect(servedBy).toEqual(new Set(['0', '1', '2']));
    expect(replies.filter((r) => r.status === 200)).toHaveLength(API_LIMIT);
    expect(replies.filter((r) => r.status === 429)).toHaveLength(20);
    console.info(
      `rate limit: ${API_LIMIT + 20} requests over the proxy, served by instance ${JSON.stringify(proxy.served)}`,
    );
    // Another client is not affected by the first one's exhaustion.
    expect((await call(proxy.url, 'GET', '/api/v1/products', { ip: '198.51.100.11' })).status).toBe(200);
  });

  test('a session made on one instance is valid on the others; logout and "log out everywhere" end it on all', async () => {
    const ip = '198.51.100.20';
    const credentials = { username: 'alice', password: 'alice-password' };
    const login = await call(at(0), 'POST', '/api/v1/auth/login', { ip, body: credentials });
    expect(login.status).toBe(200);
    const cookie = cookieOf(login);
    const sessionId = (login.json() as { sessionId: string }).sessionId;
    for (const i of [1, 2]) {
      const me = await call(at(i), 'GET', '/api/v1/me', { ip, cookie });
      expect(me.status).toBe(200);
      expect(me.json()).toMatchObject({ user: { id: 'alice' }, sessionId });
    }

    // Logout on instance 1: the cookie is dead on 0 and 2.
    expect((await call(at(1), 'POST', '/api/v1/auth/logout', { ip, cookie })).status).toBe(204);
    for (const i of [0, 2]) expect((await call(at(i), 'GET', '/api/v1/me', { ip, cookie })).status).toBe(401);

    // Two live sessions made on different instances; "log out everywhere" from a third ends both on every one.
    const a = cookieOf(await call(at(0), 'POST', '/api/v1/auth/login', { ip, body: credentials }));
    const b = cookieOf(await call(at(1), 'POST', '/api/v1/auth/login', { ip, body: credentials }));
    const list = await call(at(2), 'GET', '/api/v1/me/sessions', { ip, cookie: a });
    expect((list.json() as { sessions: unknown[] }).sessions).toHaveLength(2);
    const revoked = await call(at(2), 'DELETE', '/api/v1/me/sessions', { ip, cookie: a });
    expect(revoked.json()).toEqual({ revoked: 2 });
    for (const i of [0, 1, 2]) {
      for (const c of [a, b]) expect((await call(at(i), 'GET', '/api/v1/me', { ip, cookie: c })).status).toBe(401);
    }
  });

  test('a response cached by one instance is served by the others; invalidation on one is seen by all', async () => {
    const ip = '198.51.100.30';
    const first = await call(at(0), 'GET', '/api/v1/products', { ip });
    expect(first.status).toBe(200);
    for (const i of [1, 2]) {
      const other = await call(at(i), 'GET', '/api/v1/products', { ip });
      expect(other.headers.get('cache-status')).toMatch(/; hit/);
      // Each instance has its own catalogue (stamped with its start time): an identical body came from the cache.
      expect(other.text).toBe(first.text);
    }

    const cookie = cookieOf(
      await call(at(1), 'POST', '/api/v1/auth/login', { ip, body: { username: 'bob', password: 'bob-password' } }),
    );
    const put = await call(at(1), 'PUT', '/api/v1/products/espresso', {
      ip,
      cookie,
      body: { name: 'Espresso beans, 1 kg', price: 26 },
    });
    expect(put.status).toBe(200);
    // The next request, on another instance, misses and fills the cache again; a third instance then gets that
    // new entry, not the one from before the invalidation.
    const refill = await call(at(2), 'GET', '/api/v1/products', { ip });
    expect(refill.headers.get('cache-status')).toMatch(/fwd=miss/);
    // The refill's entry is written just after its response goes out: a request arriving in between waits for it
    // (coalesced: `collapsed`) instead of reading it (`hit`). Either way the handler does not run again.
    const after = await call(at(0), 'GET', '/api/v1/products', { ip });
    expect(after.headers.get('cache-status')).toMatch(/; hit|; collapsed/);
    expect(after.text).toBe(refill.text);
  });

  test('a semantic-cache entry stored through one instance hits on the others within 1 s', async () => {
    const ip = '198.51.100.40';
    const tenant = `t-${randomBytes(4).toString('hex')}`;
    const ask = (i: number, content: string) =>
      call(at(i), 'POST', '/api/v1/llm/chat', {
        ip,
        headers: { 'x-tenant': tenant },
        body: { model: 'demo-model', messages: [{ role: 'user', content }] },
      });
    // Long enough that the wording guard (strict on short questions) lets a reordered paraphrase through.
    const STORED =
      'How do I reset the password of my online banking account when I no longer have access to my old email address?';
    const first = await ask(0, STORED);
    expect(first.headers.get('x-llm-cache')).toBe('miss');
    const stored = Date.now();
    // A paraphrase on instance 2, found by instance 2's in-process vector index, which learns of instance 0's entry
    // through the store; then the exact repeat on instance 1.
    let para: Reply | undefined;
    let tookMs = 0;
    do {
      para = await ask(
        2,
        'How do I reset my online banking account password when I no longer have access to my old email address?',
      );
      tookMs = Date.now() - stored;
      if (para.headers.get('x-llm-cache') === 'hit') break;
      await new Promise((r) => setTimeout(r, 50));
    } while (tookMs < 1000);
    expect(para.headers.get('x-llm-cache')).toBe('hit');
    expect(tookMs).toBeLessThanOrEqual(1000);
    expect(Number(para.headers.get('x-llm-cache-score'))).toBeLessThan(1);
    console.info(`semantic cache: paraphrase hit on another instance ${tookMs} ms after the entry was stored`);
    const exact = await ask(1, STORED);
    expect(exact.headers.get('x-llm-cache')).toBe('hit');
    expect((para.json() as { choices: unknown }).choices).toEqual((first.json() as { choices: unknown }).choices);
  });

  test('a report asked for on every instance at once is generated once (the lock is exclusive across them)', async () => {
    const ip = '198.51.100.50';
    const id = `multi-${randomBytes(4).toString('hex')}`;
    const replies = await Promise.all(
      Array.from({ length: 9 }, (_, n) => call(at(n % 3), 'POST', `/api/v1/reports/${id}/generate`, { ip })),
    );
    const bodies = replies.map((r) => {
      expect(r.status).toBe(200);
      return r.json() as { runs: number; generatedAt: string; fencingToken: number };
    });
    expect(new Set(bodies.map((b) => b.runs))).toEqual(new Set([1]));
    expect(new Set(bodies.map((b) => b.generatedAt)).size).toBe(1);
    expect(new Set(bodies.map((b) => b.fencingToken)).size).toBe(1);
  });

  test('a realtime event published on one instance reaches subscribers on the others', async () => {
    const ip = '198.51.100.60';
    const channel = `demo:multi-${randomBytes(4).toString('hex')}`;
    const streams = [0, 2].map((i) => {
      const controller = new AbortController();
      const received = (async () => {
        const res = await fetch(`${at(i)}/api/v1/realtime/${channel}`, {
          headers: { 'x-forwarded-for': ip, accept: 'text/event-stream' },
          signal: controller.signal,
        });
        expect(res.status).toBe(200);
        const reader = (res.body as ReadableStream<Uint8Array>).getReader();
        const decoder = new TextDecoder();
        let text = '';
        let connected!: () => void;
        const ready = new Promise<void>((r) => {
          connected = r;
        });
        const event = (async () => {
          for (;;) {
            const { value, done } = await reader.read();
            if (done) return text;
            text += decoder.decode(value, { stream: true });
            if (text.includes(': connected')) connected();
            if (text.includes('"from-instance-1"')) return text;
          }
        })();
        return { ready, event };
      })();
      return { controller, received };
    });
    try {
      for (const s of streams) await (await s.received).ready;
      const published = await call(at(1), 'POST', `/api/v1/realtime/${channel}`, {
        ip,
        body: { type: 'note', data: { text: 'from-instance-1' } },
      });
      expect(published.status).toBe(201);
      const deadline = new Promise<string>((r) => setTimeout(() => r('timed out'), 5000));
      for (const s of streams) {
        const text = await Promise.race([(await s.received).event, deadline]);
        expect(text).toContain('"type":"note"');
        expect(text).toContain('"from-instance-1"');
      }
    } finally {
      for (const s of streams) s.controller.abort();
    }
  });

  test('the instances stayed up and none logged an unhandled error', () => {
    for (const demo of demos) {
      expect(demo.proc.exitCode).toBeNull();
      expect(demo.output()).not.toMatch(/unhandled|Internal Server Error/i);
    }
  });
});
