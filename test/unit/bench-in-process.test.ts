// The benchmark's in-process mode: its driver (bench/lib/in-process.ts) really sends requests through the app
// (middleware, route, response), headers reach it, non-2xx answers are counted, and no more than `concurrency` are
// in flight; its report (bench/lib/in-process-run.ts) implies the ratio as documented and reads targets by its rules.

import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import express from 'express';
import { runBlock } from '../../bench/lib/in-process';
import { inProcessReport } from '../../bench/lib/in-process-run';

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

// Stored runs for the report tests: six generations of ten rounds, each set-up's ratios within ±0.2 % of `r`.
const gens = (r: number) =>
  Array.from({ length: 6 }, (_, g) => Array.from({ length: 10 }, (_, i) => r * (1 + 0.002 * (((g + i) % 3) - 1))));
const setup = (id: string, r: number, app = r, usesRedis = false) => ({
  id,
  label: id,
  usesRedis,
  ratios: gens(r),
  appRatios: gens(app),
  perRequestUs: [],
});
const target = (setupName: string, minRatio: number) => ({ feature: setupName, setup: setupName, minRatio });

describe('in-process report', () => {
  // Six generations whose bare Express costs 80 µs per request in process and 200 over HTTP (k = 2.5).
  const base = {
    flags: { rounds: 60, duration: 1.5, connections: 50, warmup: 1, generation: 10, inProcess: true },
    block: 200,
    bareInProcessUs: [80, 80, 80, 80, 80, 80],
    bareHttpUs: [200, 200, 200, 200, 200, 200],
  };

  test('implies 1 / (1 + (r - 1) / k) and the CPU added, per generation', () => {
    const { summary, markdown } = inProcessReport(
      { ...base, setups: [setup('control', 1), setup('mw', 1.1)] },
      [target('mw', 0.9)],
      'cmd',
    );
    // r = 1.1, k = 2.5: 1 / (1 + 0.04) = 0.9615; 0.1 x 80 µs = 8 µs added.
    expect(summary[0]?.figure).toMatch(/^0\.962 × .*\+8\.00 µs/);
    expect(summary[0]?.figure).toContain('an upper bound');
    expect(summary[0]?.holds).toBeUndefined();
    expect(markdown).toContain('| mw | 1.100');
  });

  test('a figure under its target fails it; a Redis set-up only when both readings are under', () => {
    const stored = {
      ...base,
      setups: [
        setup('control', 1),
        setup('slow', 1.2),
        setup('redis', 1.3, 1.1, true),
        setup('redis-slow', 1.4, 1.3, true),
      ],
    };
    const rows = inProcessReport(
      stored,
      [target('slow', 0.95), target('redis', 0.95), target('redis-slow', 0.95)],
      'cmd',
    ).summary;
    expect(rows.map((r) => r.holds)).toEqual([false, undefined, false]);
    expect(rows[1]?.figure).toContain("from the app's CPU alone");
  });

  test('decides nothing when the A/A control is off by more than 2 %', () => {
    const rows = inProcessReport(
      { ...base, setups: [setup('control', 1.1), setup('slow', 1.2)] },
      [target('slow', 0.95)],
      'cmd',
    ).summary;
    expect(rows[0]?.holds).toBeUndefined();
    expect(rows[0]?.figure).toContain('control too wide');
  });
});

describe('HTTP-blocks report (--http-blocks)', () => {
  // The same stored shape as an in-process run, with the blocks' cost already the one over HTTP (k = 1).
  const base = {
    flags: { rounds: 60, duration: 1.5, connections: 50, warmup: 1, generation: 10, inProcess: true, httpBlocks: true },
    transport: 'http' as const,
    block: 200,
    bareInProcessUs: [170, 170, 170, 170, 170, 170],
    // Whatever was stored here, k is 1 over HTTP: the blocks' cost already is the cost over HTTP.
    bareHttpUs: [400, 400, 400, 400, 400, 400],
  };

  test('the ratio is the inverse of the CPU ratio, and a whole interval above the target holds it', () => {
    const { summary, markdown } = inProcessReport(
      { ...base, setups: [setup('control', 1), setup('mw', 1.05), setup('slow', 1.1)] },
      [target('mw', 0.94), target('slow', 0.94)],
      'cmd',
    );
    // 1 / 1.05 = 0.952; 0.05 x 170 µs = 8.5 µs added.
    expect(summary[0]?.figure).toMatch(/^0\.952 × .*\+8\.50 µs/);
    expect(summary[0]?.feature).toBe('mw, HTTP blocks (server CPU per request)');
    expect(summary[0]?.holds).toBe(true);
    expect(summary[0]?.figure).not.toContain('upper bound');
    // 1 / 1.1 = 0.909, all of its interval under 0.94.
    expect(summary[1]?.holds).toBe(false);
    expect(markdown).toContain('load generator pinned to the other CPU');
    expect(markdown).toContain('so the run decides');
    expect(markdown).not.toContain('unmeasured requests');
    expect(markdown).toContain('bare Express started first in every generation');
    const rotated = inProcessReport({ ...base, rotated: true, setups: [setup('control', 1)] }, [], 'cmd').markdown;
    expect(rotated).toContain('started in an order rotated each generation');
    const led = inProcessReport({ ...base, lead: 100, setups: [setup('control', 1)] }, [], 'cmd').markdown;
    expect(led).toContain('each measured block right after 100 unmeasured requests to the same server');
  });

  test('a Redis set-up holds only when both readings clear the target, and fails only when both are under', () => {
    const rows = inProcessReport(
      {
        ...base,
        setups: [
          setup('control', 1),
          setup('both-above', 1.02, 1.01, true),
          setup('straddles', 1.1, 1.01, true),
          setup('both-under', 1.2, 1.15, true),
        ],
      },
      [target('both-above', 0.95), target('straddles', 0.95), target('both-under', 0.95)],
      'cmd',
    ).summary;
    expect(rows.map((r) => r.holds)).toEqual([true, undefined, false]);
    expect(rows[1]?.figure).toContain(': undecided');
  });

  test('decides nothing when the A/A control is off by more than 2 %', () => {
    const { summary, markdown } = inProcessReport(
      { ...base, setups: [setup('control', 1.03), setup('mw', 1.01)] },
      [target('mw', 0.9)],
      'cmd',
    );
    expect(summary[0]?.holds).toBeUndefined();
    expect(summary[0]?.figure).toContain('control too wide');
    expect(markdown).toContain('this run decides no target');
  });
});
