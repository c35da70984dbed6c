// Probes, not features: what single pieces of per-request work cost in an Express 5 app over HTTP, to find where
// the kit's middlewares spend microseconds that a hot loop does not show (docs/performance.md, "Block size, and
// probes of where an Express 5 request's microseconds go"). Every set-up is the observability suite's app (a layer
// that puts a workspace and a user on res.locals, then GET /ping) with one thing added. Run it on its own, in the mode the ratio targets are decided in:
//   npm run bench -- express-probes --http-blocks --only <set-ups> --generation 150 --rounds 1500
// A full `npm run bench` leaves it out (bench/run.ts, NAMED_ONLY).

import { subscribe } from 'node:diagnostics_channel';
import type { Request, RequestHandler, Response } from 'express';
import { createRedisKit } from '../lib/kit';
import type { Setup, Suite } from '../lib/types';
import { app, type Counted, kitSetup } from './observability';

type Slots = Record<symbol, unknown>;

const noCount = async () => ({});

/** A set-up that builds its app without Redis; every probe is 'ours' (measured against bare Express). */
function probe(name: string, label: string, build: Setup['build']): Setup {
  return { name, label, role: 'ours', usesRedis: false, build };
}

/** One router layer that runs `work` and calls next(). */
function layer(work: (req: Request, res: Response) => void): RequestHandler {
  return (req, res, next) => {
    work(req, res);
    next();
  };
}

const START = Symbol('start');
const SLOT = Symbol('slot');

/** The layer the timing probes share: the start time under a symbol key of res.locals. */
const startTime = layer((_req, res) => {
  (res.locals as Slots)[START] = performance.now();
});

/**
 * Defines methods on the response prototype Express's responses share (the one before ServerResponse.prototype),
 * as kit.session() does for its hooks; each calls `onCall` with the response, then the method it stands in for.
 */
function hookResponses(
  a: ReturnType<typeof app>,
  names: Array<'writeHead' | 'end'>,
  onCall: (res: Response) => void,
  /** Three named parameters passed on with call() instead of a rest array and apply(). */
  fixed = false,
) {
  const shared = Object.getPrototypeOf(a.response) as object;
  const parent = Object.getPrototypeOf(shared) as Record<string, (...args: unknown[]) => unknown>;
  for (const name of names) {
    Object.defineProperty(shared, name, {
      configurable: true,
      writable: true,
      value: fixed
        ? function (this: Response, a: unknown, b: unknown, c: unknown) {
            onCall(this);
            return (parent[name] as (...args: unknown[]) => unknown).call(this, a, b, c);
          }
        : function (this: Response, ...args: unknown[]) {
            onCall(this);
            return (parent[name] as (...args: unknown[]) => unknown).apply(this, args);
          },
    });
  }
}

/**
 * The stand-in for kit.session's response hooks: the start-time layer, and writeHead() and end() on the shared
 * response prototype looking for a res.locals key the app never sets. `fixed`: see hookResponses().
 */
function hooksStandIn(name: string, label: string, fixed: boolean): Setup {
  return probe(name, label, () => {
    let seen = 0;
    const a = app([startTime], async () => ({ metrics: seen }));
    hookResponses(
      a,
      ['writeHead', 'end'],
      (res) => {
        if ((res.locals as Slots | undefined)?.[SLOT] !== undefined) seen++;
      },
      fixed,
    );
    return a;
  });
}

/**
 * What the timing probes do when a response is done: read the start time and add the duration up. The totals are
 * answered at /__counted (nothing checks them in --http-blocks runs; they keep the work from being dead code).
 */
function timer(): { record: (res: Response) => void; counted: () => Promise<Counted> } {
  let count = 0;
  let seconds = 0;
  return {
    record(res) {
      const start = (res.locals as Slots | undefined)?.[START] as number | undefined;
      if (start === undefined) return;
      seconds += (performance.now() - start) / 1000;
      count++;
    },
    counted: async () => ({ metrics: count, seconds }),
  };
}

/**
 * A finish-channel subscriber that reads what kit.observe() reads when a response finishes (its labels and the
 * duration), and with `log` writes them to columns as its logs do: the finish-time half of kit.observe() without
 * its registry, its usage buffer or its flush.
 */
function finishLabels(log: boolean): { counted: () => Promise<Counted> } {
  const SIZE = 512;
  const column = (): string[] => new Array<string>(SIZE).fill('');
  const [routes, methods, workspaces, users, features] = [column(), column(), column(), column(), column()];
  const statuses: number[] = new Array<number>(SIZE).fill(0);
  const seconds = new Float64Array(SIZE);
  let at = 0;
  let count = 0;
  // Without the log the labels still feed something, so that reading them is not dead code.
  let labelled = 0;
  subscribe('http.server.response.finish', (message) => {
    const { request, response } = message as { request: Request; response: Response };
    const locals = response.locals as (Slots & Record<string, unknown>) | undefined;
    const start = locals?.[START] as number | undefined;
    if (start === undefined) return;
    const duration = (performance.now() - start) / 1000;
    const route = request.route as { path?: string } | undefined;
    const template = route?.path === undefined ? 'unmatched' : request.baseUrl + route.path;
    const method = request.method;
    const status = response.statusCode;
    const workspace = locals?.workspace;
    const user = locals?.userId;
    const feature = locals?.feature;
    count++;
    if (!log) {
      if (typeof workspace === 'string' && typeof user === 'string' && feature === undefined && status > 0) labelled++;
      return;
    }
    if (at === SIZE) at = 0;
    routes[at] = template;
    methods[at] = method;
    workspaces[at] = typeof workspace === 'string' ? workspace : '';
    users[at] = typeof user === 'string' ? user : '';
    features[at] = typeof feature === 'string' ? feature : '';
    statuses[at] = status;
    seconds[at] = duration;
    at++;
  });
  return { counted: async () => ({ metrics: count, labelled }) };
}

export const suite: Suite = {
  name: 'express-probes',
  description: 'probes: what single pieces of per-request work cost in an Express 5 app (GET /ping)',
  setups: [
    { name: 'bare', label: 'bare Express', role: 'bare', usesRedis: false, build: () => app([], noCount) },
    probe('noop', 'one empty layer', () => app([layer(() => {})], noCount)),
    probe('early-locals', 'no layer; res.locals made before app.handle (Express then keeps it)', () =>
      app([], noCount, {}),
    ),
    probe('locals-symbol', 'one layer: res.locals[symbol] = 1', () =>
      app(
        [
          layer((_req, res) => {
            (res.locals as Slots)[SLOT] = 1;
          }),
        ],
        noCount,
      ),
    ),
    probe('locals-string', 'one layer: res.locals.kitx = 1 (a string key)', () =>
      app(
        [
          layer((_req, res) => {
            (res.locals as Record<string, unknown>).kitx = 1;
          }),
        ],
        noCount,
      ),
    ),
    probe('res-property', 'one layer: res[symbol] = 1 (a new own property of the response)', () =>
      app(
        [
          layer((_req, res) => {
            (res as unknown as Slots)[SLOT] = 1;
          }),
        ],
        noCount,
      ),
    ),
    probe('early-slot', 'res.locals and res[symbol] made before app.handle; one layer writes res[symbol] = 1', () =>
      app(
        [
          layer((_req, res) => {
            (res as unknown as Slots)[SLOT] = 1;
          }),
        ],
        noCount,
        {
          before: (_req, res) => {
            (res as unknown as Slots)[SLOT] = undefined;
          },
        },
      ),
    ),
    probe('finish-subscriber', "no layer; an empty subscriber to 'http.server.response.finish'", () => {
      subscribe('http.server.response.finish', () => {});
      return app([], noCount);
    }),
    probe('finish-listener', "start time in res.locals, res.on('finish') per response reads it", () => {
      const t = timer();
      const listen = layer((_req, res) => {
        (res.locals as Slots)[START] = performance.now();
        res.on('finish', function (this: Response) {
          t.record(this);
        });
      });
      return app([listen], t.counted);
    }),
    probe('end-hook', 'start time in res.locals, an end() on the shared response prototype reads it', () => {
      const t = timer();
      const a = app([startTime], t.counted);
      hookResponses(a, ['end'], t.record);
      return a;
    }),
    hooksStandIn(
      'prototype-hooks',
      "start time in res.locals; writeHead() and end() on the shared response prototype look for a res.locals key that is not there (a stand-in for kit.session's hooks, whose lookup finds its context)",
      false,
    ),
    hooksStandIn(
      'prototype-hooks-fixed',
      'as prototype-hooks, with three named parameters passed on by call() instead of a rest array and apply()',
      true,
    ),
    probe(
      'session-untouched',
      'kit.session() on the embedded store app-wide; no cookie, the route never reads it',
      () => {
        const kit = createRedisKit({ store: 'memory', logger: false, env: {} });
        return app([kit.session({ secret: 'probe-secret-probe-secret-probe-secret' })], noCount);
      },
    ),
    probe(
      'start-write',
      'one layer: res.locals[symbol] = performance.now() (a clock reading, where locals-symbol writes 1)',
      () => app([startTime], noCount),
    ),
    probe(
      'finish-labels',
      'start time; a finish-channel subscriber reads what kit.observe() labels by (req.route, req.baseUrl, req.method, res.statusCode, three res.locals keys) and the duration',
      () => app([startTime], finishLabels(false).counted),
    ),
    probe(
      'finish-labels-log',
      'as finish-labels, and writes them to preallocated columns, as the usage and metrics logs do',
      () => app([startTime], finishLabels(true).counted),
    ),
    kitSetup('kit-observe', 'kit.observe() (one layer), Redis', true),
    kitSetup(
      'kit-observe-early',
      'kit.observe() run from app.handle (no layer), res.locals made there, Redis',
      true,
      undefined,
      true,
    ),
    kitSetup(
      'kit-observe-early-10s',
      'kit.observe() run from app.handle (no layer), res.locals made there, usage flushed every 10 s, Redis',
      true,
      '10 s',
      true,
    ),
  ],
};
