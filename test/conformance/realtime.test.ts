// Realtime channels and presence, unchanged on every store: publish and delivery, Last-Event-ID replay over SSE,
// capped history, the HTTP routes' validation and authorisation, presence leases and their events.

import type { AddressInfo } from 'node:net';
import express from 'express';
import request from 'supertest';
import { channelUrl, type RealtimeEvent, subscribe } from '../../plugin/client/core';
import type { RedisKit, RedisKitOptions } from '../../plugin/index';
import { describeForEachStore } from '../support/stores';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Generous: a first subscription on a cold Cluster connection can take a while on a loaded machine (the client
// then retries with backoff).
async function waitFor(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

// Fast polling on Upstash (no subscriptions there), permissive authorisation for the HTTP tests.
const fast: Omit<RedisKitOptions, 'redis'> = {
  realtime: { authorize: () => true, poll: { min: '20 ms', max: '100 ms' } },
};

// Servers and subscriptions still open when a test fails are closed here, so a failure does not hang the worker.
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function serve(kit: RedisKit): Promise<{ base: string; close: () => Promise<void> }> {
  const app = express();
  kit.mount(app);
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as AddressInfo;
  const close = () =>
    new Promise<void>((resolve) => {
      if (!server.listening) return resolve();
      server.closeAllConnections();
      server.close(() => resolve());
    });
  cleanups.push(close);
  return { base: `http://127.0.0.1:${port}/api/v1`, close };
}

describeForEachStore('realtime', ({ tier, makeKit }) => {
  test('publish reaches a server-side subscriber in order, and the history keeps it', async () => {
    const kit = makeKit(fast);
    const got: RealtimeEvent[] = [];
    const off = await kit.realtime.subscribe('room-1', (e) => got.push(e));
    for (let i = 1; i <= 5; i++) await kit.realtime.publish('room-1', { data: { n: i } });
    await kit.realtime.publish('room-1', { type: 'note', data: 'six' });
    await waitFor(() => got.length === 6, 'six events');
    expect(got.map((e) => e.data)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }, { n: 5 }, 'six']);
    expect(got.map((e) => e.id)).toEqual(['1', '2', '3', '4', '5', '6']);
    expect(got[5]).toMatchObject({ type: 'note' });
    expect(got[0]?.type).toBe('message');
    expect(Math.abs((got[0]?.at ?? 0) - Date.now())).toBeLessThan(5000);
    const history = await kit.realtime.history('room-1', '4');
    expect(history.map((e) => e.id)).toEqual(['5', '6']);
    await off();
    expect(kit.realtime.stats().channels).toBe(0);
  });

  test('one store subscription per channel per process, however many listeners', async () => {
    const kit = makeKit(fast);
    const a: unknown[] = [];
    const b: unknown[] = [];
    const offA = await kit.realtime.subscribe('shared', (e) => a.push(e.data));
    const offB = await kit.realtime.subscribe('shared', (e) => b.push(e.data));
    expect(kit.realtime.stats().channels).toBe(1);
    await kit.realtime.publish('shared', { data: 1 });
    await waitFor(() => a.length === 1 && b.length === 1, 'both listeners');
    await offA();
    expect(kit.realtime.stats().channels).toBe(1);
    await offB();
    expect(kit.realtime.stats().channels).toBe(0);
  });

  test('events published by another kit on the same store arrive (another instance)', async () => {
    if (tier === 'memory') return; // the embedded store is one process's memory: nothing to share
    const a = makeKit({ ...fast, prefix: 'shared-prefix-rt' });
    const b = makeKit({ ...fast, prefix: 'shared-prefix-rt' });
    const channel = `x-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    const got: unknown[] = [];
    const off = await b.realtime.subscribe(channel, (e) => got.push(e.data));
    await a.realtime.publish(channel, { data: 'from a' });
    await waitFor(() => got.length === 1, 'the event from the other kit');
    expect(got).toEqual(['from a']);
    await off();
  });

  test('subscribing with lastEventId replays exactly the missed events, then goes live without duplicates', async () => {
    const kit = makeKit(fast);
    for (let i = 1; i <= 5; i++) await kit.realtime.publish('replay', { data: i });
    const got: string[] = [];
    const off = await kit.realtime.subscribe('replay', (e) => got.push(e.id), { lastEventId: '2' });
    expect(got).toEqual(['3', '4', '5']);
    await kit.realtime.publish('replay', { data: 6 });
    await waitFor(() => got.length >= 4, 'the live event'); // then the exact list: a duplicate shows there
    await sleep(50);
    expect(got).toEqual(['3', '4', '5', '6']);
    await off();
  });

  test('the history is capped: a reconnection past it gets what is held and a gap notice', async () => {
    const kit = makeKit({ realtime: { ...fast.realtime, historySize: 3 } });
    for (let i = 1; i <= 6; i++) await kit.realtime.publish('capped', { data: i });
    expect((await kit.realtime.history('capped')).map((e) => e.id)).toEqual(['4', '5', '6']);
    const { base, close } = await serve(kit);
    const got: RealtimeEvent[] = [];
    const sub = subscribe(channelUrl(base, 'capped'), (e) => got.push(e), { lastEventId: '1' });
    cleanups.push(() => sub.close());
    await waitFor(() => got.length === 4, 'gap notice and three events');
    expect(got[0]).toMatchObject({ type: 'realtime.gap', data: { after: '1', firstHeld: '4' } });
    expect(got.slice(1).map((e) => e.id)).toEqual(['4', '5', '6']);
    sub.close();
    await close();
  });

  test('SSE: a client receives events; after a reconnection it gets exactly the ones it missed', async () => {
    const kit = makeKit(fast);
    const { base, close } = await serve(kit);
    const url = channelUrl(base, 'ws-1:chat');
    const first: RealtimeEvent[] = [];
    let open = false;
    const sub = subscribe(url, (e) => first.push(e), { onStatus: (s) => (open ||= s === 'open') });
    cleanups.push(() => sub.close());
    await waitFor(() => open && kit.realtime.stats().clients === 1, 'the stream to open');
    const res = await request(base.replace(/\/api\/v1$/, ''))
      .post('/api/v1/realtime/ws-1:chat')
      .send({ data: { text: 'hi' } });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ id: '1' });
    await kit.realtime.publish('ws-1:chat', { data: 2 });
    await waitFor(() => first.length === 2, 'two events');
    const resumeFrom = sub.lastEventId;
    expect(resumeFrom).toBe('2');
    sub.close();
    await waitFor(() => kit.realtime.stats().clients === 0, 'the server to see the client go');
    for (let i = 3; i <= 5; i++) await kit.realtime.publish('ws-1:chat', { data: i });
    const second: RealtimeEvent[] = [];
    const again = subscribe(url, (e) => second.push(e), { lastEventId: resumeFrom });
    cleanups.push(() => again.close());
    await waitFor(() => second.length === 3, 'the three missed events');
    await kit.realtime.publish('ws-1:chat', { data: 6 });
    await waitFor(() => second.length === 4, 'the live event');
    await sleep(50);
    expect(second.map((e) => [e.id, e.data])).toEqual([
      ['3', 3],
      ['4', 4],
      ['5', 5],
      ['6', 6],
    ]);
    again.close();
    await close();
  });

  test('POST validates its body and the channel, and answers 4xx, never 500', async () => {
    const kit = makeKit({ realtime: { ...fast.realtime, maxEventBytes: 200 } });
    const app = express();
    kit.mount(app);
    const post = (path: string) => request(app).post(`/api/v1/realtime/${path}`);
    expect((await post('ok').send({ data: 1 })).status).toBe(201);
    const bad = await post('ok').send({ nope: 1 });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('ERR_KIT_REALTIME_INPUT');
    expect((await post('ok').send({ type: 'x' })).status).toBe(400);
    expect((await post('ok').send({ type: 'bad type!', data: 1 })).status).toBe(400);
    expect((await post('ok').send({ type: 'presence.join', data: 1 })).status).toBe(400);
    expect((await post('ok').send([1, 2])).status).toBe(400);
    expect((await post('ok').set('content-type', 'application/json').send('{nope')).status).toBe(400);
    expect((await post('ok').send({ data: 'x'.repeat(300) })).status).toBe(413);
    expect((await post('ok').send({ data: 'x'.repeat(5000) })).status).toBe(413);
    expect((await post('bad%20channel').send({ data: 1 })).status).toBe(400);
    expect((await post('x'.repeat(129)).send({ data: 1 })).status).toBe(400);
    expect((await request(app).get('/api/v1/realtime/bad%7Bchannel%7D')).status).toBe(400);
    expect((await kit.realtime.history('ok')).map((e) => e.data)).toEqual([1]);
  });

  test('authorisation: no hook means 403 everywhere; the hook isolates workspaces', async () => {
    const closed = makeKit();
    const app1 = express();
    closed.mount(app1);
    expect((await request(app1).post('/api/v1/realtime/a').send({ data: 1 })).status).toBe(403);
    expect((await request(app1).get('/api/v1/realtime/a')).status).toBe(403);
    expect((await request(app1).get('/api/v1/realtime/a/presence')).status).toBe(403);

    const seen: string[] = [];
    const kit = makeKit({
      realtime: {
        authorize: (req, { channel, action }) => {
          seen.push(action);
          return channel.startsWith(`${req.get('x-workspace')}:`);
        },
      },
    });
    const app = express();
    kit.mount(app);
    const ok = await request(app).post('/api/v1/realtime/ws-a:chat').set('x-workspace', 'ws-a').send({ data: 1 });
    expect(ok.status).toBe(201);
    const denied = await request(app).post('/api/v1/realtime/ws-b:chat').set('x-workspace', 'ws-a').send({ data: 1 });
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe('ERR_KIT_REALTIME_FORBIDDEN');
    expect((await request(app).get('/api/v1/realtime/ws-b:chat').set('x-workspace', 'ws-a')).status).toBe(403);
    expect(seen).toEqual(['publish', 'publish', 'subscribe']);
    expect(await kit.realtime.history('ws-b:chat')).toEqual([]);
  });

  test('presence: join, list with metadata, join and leave events on the channel', async () => {
    const kit = makeKit(fast);
    const events: RealtimeEvent[] = [];
    const off = await kit.realtime.subscribe('doc-7', (e) => events.push(e));
    const alice = await kit.presence.join('doc-7', 'alice', { name: 'Alice' });
    await kit.presence.join('doc-7', 'bob');
    expect(await kit.presence.list('doc-7')).toEqual([
      { member: 'alice', meta: { name: 'Alice' } },
      { member: 'bob', meta: null },
    ]);
    await alice.update({ name: 'Alice B.' });
    expect((await kit.presence.list('doc-7'))[0]).toEqual({ member: 'alice', meta: { name: 'Alice B.' } });
    await alice.leave();
    expect(await kit.presence.list('doc-7')).toEqual([{ member: 'bob', meta: null }]);
    expect(await kit.presence.leave('doc-7', 'alice')).toBe(false);
    await waitFor(() => events.length === 3, 'join, join, leave');
    expect(events.map((e) => [e.type, (e.data as { member: string }).member])).toEqual([
      ['presence.join', 'alice'],
      ['presence.join', 'bob'],
      ['presence.leave', 'alice'],
    ]);
    await off();
  });

  test('presence: a member without heartbeats expires on the store clock and its leave is announced once', async () => {
    // ioredis-mock's TIME rounds the seconds instead of truncating them, so its clock jumps by up to a second:
    // one-second leases are not measurable there. Real Redis (standalone, Cluster, Upstash) runs this.
    if (tier === 'ioredis-mock') return;
    const kit = makeKit({ realtime: { ...fast.realtime, presence: { ttl: '1 s' } } });
    const events: RealtimeEvent[] = [];
    const off = await kit.realtime.subscribe('lobby', (e) => events.push(e));
    expect(await kit.presence.heartbeat('lobby', 'ghost', { x: 1 })).toEqual({ joined: true, ttlMs: 1000 });
    expect(await kit.presence.heartbeat('lobby', 'ghost')).toEqual({ joined: false, ttlMs: 1000 });
    const kept = await kit.presence.join('lobby', 'kept');
    expect((await kit.presence.list('lobby')).map((m) => m.member)).toEqual(['ghost', 'kept']);
    // The background sweep (every half lease) removes the ghost and announces it without anyone listing.
    await waitFor(() => events.some((e) => e.type === 'presence.leave'), 'the leave of the expired member', 4000);
    expect((await kit.presence.list('lobby')).map((m) => m.member)).toEqual(['kept']);
    await sleep(600);
    const leaves = events.filter((e) => e.type === 'presence.leave');
    expect(leaves.map((e) => (e.data as { member: string }).member)).toEqual(['ghost']);
    await kept.leave();
    await off();
  });

  test('presence over HTTP: heartbeat, list, leave; bad input is 4xx', async () => {
    const kit = makeKit({ realtime: { ...fast.realtime, presence: { maxMembers: 2, maxMetaBytes: 64 } } });
    const app = express();
    kit.mount(app);
    const path = '/api/v1/realtime/room/presence';
    const joined = await request(app)
      .post(path)
      .send({ member: 'u1', meta: { n: 'U1' } });
    expect(joined.status).toBe(200);
    expect(joined.body).toEqual({ member: 'u1', joined: true, ttlMs: 30_000 });
    expect((await request(app).post(path).send({ member: 'u2' })).status).toBe(200);
    const full = await request(app).post(path).send({ member: 'u3' });
    expect(full.status).toBe(409);
    expect(full.body.error.code).toBe('ERR_KIT_PRESENCE_FULL');
    expect((await request(app).post(path).send({})).status).toBe(400);
    expect((await request(app).post(path).send({ member: 'no spaces' })).status).toBe(400);
    expect(
      (
        await request(app)
          .post(path)
          .send({ member: 'u1', meta: 'x'.repeat(100) })
      ).status,
    ).toBe(413);
    expect((await request(app).get(path)).body).toEqual({
      members: [
        { member: 'u1', meta: { n: 'U1' } },
        { member: 'u2', meta: null },
      ],
    });
    const left = await request(app).delete(path).send({ member: 'u1' });
    expect(left.body).toEqual({ member: 'u1', left: true });
    expect((await request(app).get(path)).body.members).toEqual([{ member: 'u2', meta: null }]);
  });
});
