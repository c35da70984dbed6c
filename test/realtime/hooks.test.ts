// The React hooks against a real server (memory store): useRealtime shows live events and publishes;
// usePresence joins, sees another member come and go, and leaves on unmount. Rendered with react-test-renderer.

import type { AddressInfo } from 'node:net';
import express from 'express';
import { createElement } from 'react';
import TestRenderer, { act, type ReactTestRenderer } from 'react-test-renderer';
import { type UsePresenceResult, type UseRealtimeResult, usePresence, useRealtime } from '../../plugin/client/index';
import { createRedisKit, type RedisKit } from '../../plugin/index';

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await act(async () => {
      await sleep(20);
    });
  }
}

let kit: RedisKit;
let baseUrl: string;
let close: () => Promise<void>;

beforeEach(async () => {
  kit = createRedisKit({ store: 'memory', logger: false, env: {}, realtime: { authorize: () => true } });
  const app = express();
  kit.mount(app);
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1`;
  close = async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await kit.close();
  };
});
afterEach(async () => {
  await close();
});

// What the components rendered last, for the tests to read.
const seen: { a?: UseRealtimeResult; b?: UseRealtimeResult; presence?: UsePresenceResult } = {};

function Chat() {
  seen.a = useRealtime('room', { baseUrl, max: 2 });
  seen.b = useRealtime('room', { baseUrl });
  return null;
}

function Who() {
  seen.presence = usePresence('doc', { baseUrl, member: 'me', meta: { name: 'Me' } });
  return null;
}

// react-test-renderer 19 announces its deprecation on every render; the hooks need only a renderer.
const consoleError = console.error;
beforeAll(() => {
  console.error = (...args: unknown[]) => {
    if (String(args[0]).includes('react-test-renderer is deprecated')) return;
    consoleError(...args);
  };
});
afterAll(() => {
  console.error = consoleError;
});

test('useRealtime: live events (presence notices left out), publish, one shared connection', async () => {
  let renderer: ReactTestRenderer | undefined;
  await act(async () => {
    renderer = TestRenderer.create(createElement(Chat));
  });
  await until(() => seen.a?.status === 'open' && kit.realtime.stats().clients === 1, 'the connection');
  expect(kit.realtime.stats().clients).toBe(1);
  await act(async () => {
    await seen.a?.publish({ text: 'one' });
  });
  await kit.presence.heartbeat('room', 'someone');
  await kit.realtime.publish('room', { type: 'chat', data: 'two' });
  await kit.realtime.publish('room', { data: 'three' });
  await until(() => (seen.b?.events.length ?? 0) === 3, 'three events');
  expect(seen.b?.events.map((e) => e.data)).toEqual([{ text: 'one' }, 'two', 'three']);
  expect(seen.a?.events.map((e) => e.data)).toEqual(['two', 'three']);
  await act(async () => {
    renderer?.unmount();
  });
  await until(() => kit.realtime.stats().clients === 0, 'the connection to close');
});

test('usePresence: joins, sees others come and go, leaves on unmount', async () => {
  let renderer: ReactTestRenderer | undefined;
  await act(async () => {
    renderer = TestRenderer.create(createElement(Who));
  });
  await until(() => seen.presence?.self === 'me' && seen.presence.members.some((m) => m.member === 'me'), 'joining');
  expect(await kit.presence.list('doc')).toEqual([{ member: 'me', meta: { name: 'Me' } }]);
  const other = await kit.presence.join('doc', 'other');
  await until(() => seen.presence?.members.length === 2, 'the other member');
  await other.leave();
  await until(() => seen.presence?.members.length === 1, 'the other member to leave');
  expect(seen.presence?.members).toEqual([{ member: 'me', meta: { name: 'Me' } }]);
  await act(async () => {
    renderer?.unmount();
  });
  for (let i = 0; i < 100 && (await kit.presence.list('doc')).length > 0; i++) await sleep(20);
  expect(await kit.presence.list('doc')).toEqual([]);
});

test('the browser entry imports nothing but itself and React (no Node-only modules)', () => {
  const { readdirSync, readFileSync } = require('node:fs') as typeof import('node:fs');
  const { join } = require('node:path') as typeof import('node:path');
  const dir = join(__dirname, '..', '..', 'plugin', 'client');
  const imported = new Set<string>();
  for (const file of readdirSync(dir)) {
    for (const m of readFileSync(join(dir, file), 'utf8').matchAll(/from '([^']+)'/g)) imported.add(m[1] as string);
  }
  expect([...imported].sort()).toEqual(['./core.js', './react.js', 'react']);
});
