// The benchmark's --http-blocks mode: its response reader (bench/lib/http-reader.ts) finds where responses end
// however the bytes arrive, and refuses what it cannot follow; its load generator (bench/lib/block-load.ts, a child
// process) sends exactly the requests a block asks for, with the headers given, over connections it keeps open, and
// counts answers that are not 2xx.

import { type ChildProcess, spawn } from 'node:child_process';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import express from 'express';
import { readResponses } from '../../bench/lib/http-reader';

const response = (status: number, body: string) =>
  `HTTP/1.1 ${status} X\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

describe('http-reader', () => {
  test('reads several responses from one chunk and keeps the start of the next', () => {
    const bytes = Buffer.from(response(200, 'hello') + response(429, '{"a":1}') + response(204, '').slice(0, 10));
    const { statuses, rest, unreadable } = readResponses(bytes);
    expect(statuses).toEqual([200, 429]);
    expect(rest.toString()).toBe('HTTP/1.1 2');
    expect(unreadable).toBe(false);
  });

  test('waits for the body when a chunk ends inside it, whatever the split', () => {
    const whole = Buffer.from(response(200, 'x'.repeat(100)));
    for (const cut of [1, 20, whole.indexOf('\r\n\r\n') + 2, whole.length - 1]) {
      const first = readResponses(whole.subarray(0, cut));
      expect(first.statuses).toEqual([]);
      const second = readResponses(Buffer.concat([first.rest, whole.subarray(cut)]));
      expect(second.statuses).toEqual([200]);
      expect(second.rest.length).toBe(0);
    }
  });

  test('a response without a Content-Length is unreadable, not guessed at', () => {
    const chunked = Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
    expect(readResponses(chunked)).toMatchObject({ statuses: [], unreadable: true });
  });
});

describe('block-load (the load generator)', () => {
  let server: Server;
  let port: number;
  let child: ChildProcess;
  const seen: Array<{ path: string; header: string | undefined; socket: unknown }> = [];

  const ask = <T>(message: unknown, key: string): Promise<T> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${key} within 20 s`)), 20_000);
      const onMessage = (reply: unknown) => {
        if (reply && typeof reply === 'object' && key in reply) {
          clearTimeout(timer);
          child.off('message', onMessage);
          resolve((reply as Record<string, T>)[key] as T);
        }
      };
      child.on('message', onMessage);
      child.send(message as never);
    });

  beforeAll(async () => {
    const app = express();
    app.get('/ping', (req, res) => {
      seen.push({ path: req.path, header: req.get('x-test'), socket: req.socket });
      res.status(req.get('x-test') === 'deny' ? 429 : 200).json({ ok: true });
    });
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    port = (server.address() as AddressInfo).port;
    child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, '..', '..', 'bench', 'lib', 'block-load.ts')], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    await new Promise((resolve) => child.once('message', resolve));
  }, 30_000);

  afterAll(async () => {
    child.kill('SIGTERM');
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test('sends exactly `count` requests with the given headers over the connections it opened', async () => {
    const open = { key: 'a', port, path: '/ping', headers: { 'x-test': 'yes' }, connections: 4 };
    expect(await ask({ open }, 'opened')).toEqual({});
    seen.length = 0;
    expect(await ask({ block: { key: 'a', count: 50 } }, 'blockDone')).toEqual({ failed: 0 });
    expect(seen).toHaveLength(50);
    expect(new Set(seen.map((s) => `${s.path} ${s.header}`))).toEqual(new Set(['/ping yes']));
    // Kept open: a second block reuses the same four sockets.
    const sockets = new Set(seen.map((s) => s.socket));
    expect(sockets.size).toBe(4);
    seen.length = 0;
    expect(await ask({ block: { key: 'a', count: 7 } }, 'blockDone')).toEqual({ failed: 0 });
    expect(seen).toHaveLength(7);
    for (const s of seen) expect(sockets.has(s.socket)).toBe(true);
  });

  test('counts answers that are not 2xx, and reports a port it cannot reach', async () => {
    const open = { key: 'deny', port, path: '/ping', headers: { 'x-test': 'deny' }, connections: 2 };
    await ask({ open }, 'opened');
    expect(await ask({ block: { key: 'deny', count: 10 } }, 'blockDone')).toEqual({ failed: 10 });
    const closed = await new Promise<number>((resolve) => {
      const s = express().listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const reply = await ask<{ error?: string }>(
      { open: { key: 'gone', port: closed, path: '/ping', headers: {}, connections: 1 } },
      'opened',
    );
    expect(reply.error).toMatch(/ECONNREFUSED/);
  });
});
