// SSE behaviour that needs a socket: another process publishing to this one's clients, heartbeats, slow clients
// cut off at their buffer bound, the client cap, and streams ended by kit.close().

import { execFile } from 'node:child_process';
import { type Socket, connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import express from 'express';
import { channelUrl, type RealtimeEvent, subscribe } from '../../plugin/client/core';
import { createRedisKit, type RedisKit, type RedisKitOptions } from '../../plugin/index';
import { standaloneUrl, uniquePrefix } from '../support/stores';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitFor(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const kits: RedisKit[] = [];
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  await Promise.all(kits.splice(0).map((k) => k.close()));
});

async function serve(options: RedisKitOptions): Promise<{ kit: RedisKit; base: string; port: number }> {
  const kit = createRedisKit({ logger: false, env: {}, store: 'memory', ...options });
  kits.push(kit);
  const app = express();
  kit.mount(app);
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as AddressInfo;
  closers.push(
    () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { kit, base: `http://127.0.0.1:${port}/api/v1`, port };
}

/** A raw SSE request whose reader can be paused (a slow client) and whose bytes are kept. */
function rawStream(port: number, channel: string): Promise<{ socket: Socket; text: () => string }> {
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(`GET /api/v1/realtime/${channel} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`);
    });
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
    });
    socket.once('error', reject);
    socket.once('connect', () => resolve({ socket, text: () => text }));
  });
}

const allow = { authorize: () => true };

const redisTest = standaloneUrl() ? test : test.skip;
redisTest(
  'an event published by another process on the same Redis reaches this process’s SSE client',
  async () => {
    const prefix = uniquePrefix();
    const { kit, base } = await serve({ store: undefined, redis: standaloneUrl() as string, prefix, realtime: allow });
    const got: RealtimeEvent[] = [];
    let open = false;
    const sub = subscribe(channelUrl(base, 'xproc'), (e) => got.push(e), { onStatus: (s) => (open ||= s === 'open') });
    closers.push(async () => sub.close());
    await waitFor(() => open && kit.realtime.stats().clients === 1, 'the stream');
    const tsx = join(__dirname, '..', '..', 'node_modules', '.bin', 'tsx');
    await new Promise<void>((resolve, reject) => {
      execFile(
        tsx,
        [join(__dirname, 'fixtures', 'publisher.ts'), standaloneUrl() as string, prefix, 'xproc', '3'],
        { timeout: 30_000 },
        (error, _stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve()),
      );
    });
    await waitFor(() => got.length === 3, 'three events from the child process');
    expect(got.map((e) => [e.id, e.type, (e.data as { i: number }).i])).toEqual([
      ['1', 'from-child', 1],
      ['2', 'from-child', 2],
      ['3', 'from-child', 3],
    ]);
    expect((got[0]?.data as { pid?: number } | undefined)?.pid).not.toBe(process.pid);
  },
  40_000,
);

test('idle streams get heartbeat comments', async () => {
  const { kit, port } = await serve({ realtime: { ...allow, heartbeat: '50 ms' } });
  const stream = await rawStream(port, 'quiet');
  closers.push(async () => void stream.socket.destroy());
  await waitFor(() => (stream.text().match(/: heartbeat/g) ?? []).length >= 2, 'two heartbeats');
  expect(stream.text()).toMatch(/^HTTP\/1\.1 200/);
  expect(stream.text()).toMatch(/content-type: text\/event-stream/i);
  expect(stream.text()).toMatch(/cache-control: no-store, no-transform/i);
  expect(kit.realtime.stats()).toMatchObject({ clients: 1, channels: 1 });
});

test('a client that stops reading is dropped once its buffer passes the bound; others keep receiving', async () => {
  const { kit, base, port } = await serve({ realtime: { ...allow, maxClientBuffer: 256 * 1024 } });
  const slow = await rawStream(port, 'busy');
  closers.push(async () => void slow.socket.destroy());
  const got: RealtimeEvent[] = [];
  const fast = subscribe(channelUrl(base, 'busy'), (e) => got.push(e));
  closers.push(async () => fast.close());
  await waitFor(() => kit.realtime.stats().clients === 2 && slow.text().includes('connected'), 'both clients');
  slow.socket.pause();
  const data = 'x'.repeat(15_000);
  for (let i = 0; i < 4000 && kit.realtime.stats().dropped === 0; i++) {
    await kit.realtime.publish('busy', { data });
    // Paced so that the reading client drains between events: only the stalled one accumulates.
    await sleep(1);
  }
  // Loopback sockets absorb several MB in kernel buffers before the server's own buffer grows.
  await waitFor(() => kit.realtime.stats().dropped > 0, 'the slow client to be dropped');
  expect(kit.realtime.stats().dropped).toBe(1);
  await waitFor(() => kit.realtime.stats().clients === 1, 'one client left');
  const before = got.length;
  await kit.realtime.publish('busy', { data: 'after' });
  await waitFor(() => got.length > before && got.at(-1)?.data === 'after', 'the fast client to go on');
});

test('beyond maxClients new streams get 503 with Retry-After', async () => {
  const { port, kit } = await serve({ realtime: { ...allow, maxClients: 1 } });
  const first = await rawStream(port, 'a');
  closers.push(async () => void first.socket.destroy());
  await waitFor(() => kit.realtime.stats().clients === 1, 'the first client');
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/realtime/b`);
  expect(res.status).toBe(503);
  expect(res.headers.get('retry-after')).toBe('5');
  expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ERR_KIT_REALTIME_BUSY');
});

test('kit.close() ends open streams, and the client stops on a 4xx instead of retrying', async () => {
  const { kit, port } = await serve({ realtime: allow });
  const stream = await rawStream(port, 'bye');
  await waitFor(() => kit.realtime.stats().clients === 1, 'the client');
  closers.push(async () => void stream.socket.destroy());
  await kit.close();
  // The chunked response's last chunk: the stream was ended (the keep-alive socket itself may stay open).
  await waitFor(() => stream.text().endsWith('0\r\n\r\n'), 'the end of the stream');
  const statuses: Array<[string, number | undefined]> = [];
  const refused = subscribe(`http://127.0.0.1:${port}/api/v1/realtime/bad%20name`, () => undefined, {
    onStatus: (s, detail) => statuses.push([s, detail?.status]),
  });
  await waitFor(() => refused.status === 'closed', 'the client to give up');
  expect(statuses).toEqual([
    ['connecting', undefined],
    ['closed', 400],
  ]);
});

const outageTest = standaloneUrl() ? test : test.skip;
outageTest(
  'store down: a new stream and a publish get 503 JSON with Retry-After, within the command timeout',
  async () => {
    const { startRedis } = await import('../support/redis-server');
    const redis = await startRedis();
    try {
      const { base } = await serve({
        store: undefined,
        redis: redis.url,
        prefix: uniquePrefix(),
        commandTimeout: '300 ms',
        realtime: allow,
      });
      await redis.stop();
      const started = Date.now();
      const stream = await fetch(`${base}/realtime/down`);
      expect(stream.status).toBe(503);
      expect(stream.headers.get('content-type')).toMatch(/^application\/json/);
      expect(stream.headers.get('retry-after')).toBe('1');
      const published = await fetch(`${base}/realtime/down`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ data: 1 }),
      });
      expect(published.status).toBe(503);
      expect(((await published.json()) as { error: { code: string } }).error.code).toMatch(/^ERR_KIT_STORE_/);
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      await redis.stop();
    }
  },
  30_000,
);

test('a message pub/sub lost right after subscribing is delivered by the catch-up read of the history', async () => {
  const kit = createRedisKit({ logger: false, env: {}, redis: standaloneUrl(), prefix: uniquePrefix() });
  kits.push(kit);
  const got: unknown[] = [];
  const off = await kit.realtime.subscribe('lossy', (e) => got.push(e.data));
  // Drop the next pub/sub message of this kit's subscriber connection, as a Cluster subscriber moving to another
  // node does: only the history still has the event.
  const adapter = (kit.store as unknown as { client: { handlers: Map<string, (m: string, c: string) => void> } })
    .client;
  let dropped = 0;
  for (const [channel, handler] of adapter.handlers) {
    adapter.handlers.set(channel, (message, name) => {
      if (dropped++ === 0) return;
      handler(message, name);
    });
  }
  expect(adapter.handlers.size).toBeGreaterThan(0);
  await kit.realtime.publish('lossy', { data: 'only in the history' });
  await waitFor(() => got.length === 1, 'the catch-up', 4000);
  expect(dropped).toBe(1);
  expect(got).toEqual(['only in the history']);
  await off();
});
