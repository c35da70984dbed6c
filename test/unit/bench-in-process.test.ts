// The benchmark's in-process driver (bench/lib/in-process.ts): requests really go through the app (middleware,
// route, response), headers reach it, non-2xx answers are counted, and no more than `concurrency` are in flight.

import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import express from 'express';
import { runBlock } from '../../bench/lib/in-process';

describe('in-process benchmark driver', () => {
  test('every request runs the middleware and the route, and gets its response', async () => {
    const app = express();
    let middleware = 0;
    const seen: string[] = [];
    app.use((req, _res, next) => {
      middleware++;
      seen.push(`${req.method} ${req.path} ${req.get('x-test')} ${req.ip}`);
      next();
    });
    app.get('/ping', (_req, res) => {
      res.setHeader('X-Answer', '42');
      res.json({ ok: true });
    });
    const result = await runBlock(app, '/ping', { 'x-test': 'yes' }, 50, 8);
    expect(result).toEqual({ failed: 0 });
    expect(middleware).toBe(50);
    expect(new Set(seen)).toEqual(new Set(['GET /ping yes 127.0.0.1']));
  });

  test('counts responses that are not 2xx', async () => {
    const app = express();
    app.get('/ping', (req, res) => {
      res.status(req.get('cookie') === 'sid=1' ? 200 : 401).end();
    });
    expect(await runBlock(app, '/ping', {}, 20)).toEqual({ failed: 20 });
    expect(await runBlock(app, '/ping', { cookie: 'sid=1' }, 20)).toEqual({ failed: 0 });
    // An unknown route: Express's 404.
    expect(await runBlock(app, '/nowhere', {}, 5)).toEqual({ failed: 5 });
  });

  test('keeps at most `concurrency` requests in flight, and finishes asynchronous routes', async () => {
    const app = express();
    let inFlight = 0;
    let most = 0;
    let done = 0;
    app.get('/slow', (_req, res) => {
      inFlight++;
      most = Math.max(most, inFlight);
      setTimeout(() => {
        inFlight--;
        done++;
        res.send('late');
      }, 1);
    });
    expect(await runBlock(app, '/slow', {}, 30, 4)).toEqual({ failed: 0 });
    expect(done).toBe(30);
    expect(most).toBe(4);
  });

  test("publishes each finished response as Node's HTTP server does, from a socket that names its server", async () => {
    const app = express();
    app.get('/ping', (_req, res) => {
      res.send('pong');
    });
    const seen: Array<{ status: number; hasServer: boolean; sameSocket: boolean }> = [];
    const listener = (message: unknown): void => {
      const m = message as {
        request: { socket: unknown };
        response: { statusCode: number };
        socket: { server?: unknown };
        server: unknown;
      };
      seen.push({
        status: m.response.statusCode,
        hasServer: m.socket.server !== undefined && m.socket.server === m.server,
        sameSocket: m.request.socket === m.socket,
      });
    };
    subscribe('http.server.response.finish', listener);
    try {
      expect(await runBlock(app, '/ping', {}, 10)).toEqual({ failed: 0 });
    } finally {
      unsubscribe('http.server.response.finish', listener);
    }
    expect(seen).toHaveLength(10);
    expect(seen.every((s) => s.status === 200 && s.hasServer && s.sameSocket)).toBe(true);
  });
});
