// What request metrics and usage tracking cost: GET /ping on bare Express 5 against the same app with
// kit.metrics() + kit.usage() mounted (two middlewares), with kit.observe() (both in one), and with the usual
// prom-client middleware (a counter and a histogram labelled by route template, fed from a 'finish' listener) for
// context. Every set-up first runs the same small middleware that puts a workspace (three, in rotation) and a user
// (thirty) on res.locals, as an auth layer would, so only the instrumentation differs. Usage flushes to the harness's
// Redis every 250 ms. After the rounds, each instrumented set-up must show that it counted every response the load
// generator received: the metrics counter, the usage counts read back from Redis and the responses agree (the two
// reference set-ups with one half alone: that half's count, and none in the other).

import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type Express, type RequestHandler } from 'express';
import { createRedisKit } from '../lib/kit';
import type { CheckResult, Setup, SetupContext, Suite } from '../lib/types';

const WORKSPACES = ['ws0', 'ws1', 'ws2'];
const USERS = Array.from({ length: 30 }, (_, i) => `user${i}`);
const started = Date.now();

export interface Counted {
  /** Responses the set-up's metrics counted on GET /ping. */
  metrics?: number;
  /** Requests the usage store holds for the three workspaces (after a final flush). */
  usage?: number;
  /** Of which counted under route /ping, and distinct workspaces that received some. */
  usageRoute?: number;
  workspaces?: number;
  /** Seconds of response time the express-probes timing probes added up. */
  seconds?: number;
  /** Responses whose labels the express-probes finish-labels probe found as the app sets them. */
  labelled?: number;
}

/** Runs on each request before Express's app.handle: a plain Node request and response, `res.locals` already made. */
export type BeforeHandle = (
  req: IncomingMessage,
  res: ServerResponse & { locals: Record<PropertyKey, unknown> },
) => void;

/**
 * The app every set-up shares; `instrument` mounts what is measured, `counted` answers the check route. With `early`,
 * each request's `res.locals` is made before Express's app.handle (before Express moves the request and response
 * onto its prototypes; Express then keeps it), and `early.before`, when given, runs there: the probes in
 * express-probes.ts use both.
 */
export function app(
  instrument: RequestHandler[],
  counted: () => Promise<Counted>,
  early?: { before?: BeforeHandle },
): Express {
  const a = express();
  a.disable('x-powered-by');
  if (early) {
    const entry = a as unknown as { handle: (req: IncomingMessage, res: ServerResponse, done?: unknown) => void };
    const handle = entry.handle;
    entry.handle = function (this: unknown, req, res, done) {
      const r = res as ServerResponse & { locals?: Record<PropertyKey, unknown> };
      if (r.locals === undefined) r.locals = Object.create(null) as Record<PropertyKey, unknown>;
      try {
        early.before?.(req, r as ServerResponse & { locals: Record<PropertyKey, unknown> });
      } catch (error) {
        // As Express would answer a throwing middleware: through its final handler.
        if (typeof done === 'function') return void done(error);
        res.statusCode = 500;
        res.end();
        return;
      }
      handle.call(this, req, res, done);
    };
  }
  // Mounted before the instrumentation layers, so they do not count the check itself. A set-up that runs before
  // app.handle does see it, under its own route and the default workspace, which the check leaves out.
  a.get('/__counted', (_req, res, next) => {
    counted().then((c) => res.json(c), next);
  });
  let i = 0;
  a.use((_req, res, next) => {
    i = (i + 1) % 30;
    res.locals.workspace = WORKSPACES[i % 3];
    res.locals.userId = USERS[i];
    next();
  });
  for (const mw of instrument) a.use(mw);
  a.get('/ping', (_req, res) => {
    res.json({ pong: true });
  });
  return a;
}

/**
 * `flushInterval`: the kit's default (250 ms) unless given. The reference set-up with a 10 s interval separates
 * what a request costs from the flush's cost, which is per second rather than per request: in --in-process runs
 * each server serves a few thousand requests a second, a quarter of what it serves over HTTP, so a flush's share of
 * a request is overstated there (docs/performance.md, Observability).
 */
export function kitSetup(
  name: string,
  label: string,
  oneMiddleware: boolean,
  flushInterval?: string,
  /** Run kit.observe() from app.handle (no router layer), with res.locals made there. */
  noLayer = false,
  /** Mount one of the two alone (a reference: what each costs by itself). */
  only?: 'metrics' | 'usage',
): Setup {
  return {
    name,
    label,
    role: 'ours',
    // Usage reaches Redis once per flush (every 250 ms), not per request.
    usesRedis: false,
    build(env) {
      // A prefix per process: paired runs replace their processes (--generation), and each counts its own responses.
      const kit = createRedisKit({
        redis: env.redisUrl,
        prefix: `bench-${name}-${process.pid}`,
        env: {},
        logger: false,
        ...(flushInterval ? { usage: { flushInterval } } : {}),
      });
      const instrument = only
        ? [only === 'metrics' ? kit.metrics() : kit.usage()]
        : noLayer
          ? []
          : oneMiddleware
            ? [kit.observe()]
            : [kit.metrics(), kit.usage()];
      const observe = noLayer ? kit.observe() : undefined;
      const none = () => {};
      return app(
        instrument,
        async () => {
          await kit.usage.flush();
          const snap = await kit.metrics.snapshot();
          let metrics = 0;
          for (const s of snap.rediskit_http_requests_total?.samples ?? []) {
            if (s.labels?.route === '/ping' && 'value' in s) metrics += s.value;
          }
          let usage = 0;
          let usageRoute = 0;
          let workspaces = 0;
          for (const workspace of WORKSPACES) {
            const r = await kit.usage.query({
              workspace,
              granularity: 'day',
              from: started - 60_000,
              to: Date.now() + 60_000,
            });
            usage += r.totals.requests;
            usageRoute += r.totals.routes['/ping'] ?? 0;
            if (r.totals.requests > 0) workspaces++;
          }
          return { metrics, usage, usageRoute, workspaces };
        },
        observe && { before: (req, res) => observe(req as express.Request, res as unknown as express.Response, none) },
      );
    },
    check: only ? (ctx) => checkPart(ctx, only) : checkCounted,
  };
}

function promClientSetup(): Setup {
  return {
    name: 'prom-client',
    label: 'prom-client counter + histogram (finish listener)',
    role: 'peer',
    usesRedis: false,
    async build() {
      const prom = await import('prom-client');
      const registry = new prom.Registry();
      const requests = new prom.Counter({
        name: 'http_requests_total',
        help: 'requests',
        labelNames: ['method', 'route', 'status'],
        registers: [registry],
      });
      const duration = new prom.Histogram({
        name: 'http_request_duration_seconds',
        help: 'latency',
        labelNames: ['method', 'route', 'status'],
        buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
        registers: [registry],
      });
      // The shape express-prom-bundle and most READMEs use: a timer per request, labels resolved at finish.
      const mw: RequestHandler = (req, res, next) => {
        const end = duration.startTimer();
        res.on('finish', () => {
          const labels = { method: req.method, route: req.route?.path ?? 'unmatched', status: res.statusCode };
          end(labels);
          requests.inc(labels);
        });
        next();
      };
      return app([mw], async () => {
        const m = await requests.get();
        let metrics = 0;
        for (const v of m.values) if (v.labels.route === '/ping') metrics += v.value;
        return { metrics };
      });
    },
    check: checkCounted,
  };
}

/**
 * The least a per-route latency metric can cost in Express 5, as a floor under the instrumented rows: one app-wide
 * layer that keeps the start time in res.locals, and one subscriber to Node's 'http.server.response.finish' channel
 * (no per-response listener) that adds the response's duration to one preallocated series per route object. No
 * labels beyond the route, no usage, no registry: nothing a product could leave out.
 */
function floorSetup(): Setup {
  return {
    name: 'floor',
    label: 'reference: the least a latency metric costs (start time in res.locals, one finish-channel subscriber)',
    role: 'ours',
    usesRedis: false,
    async build() {
      const { subscribe } = await import('node:diagnostics_channel');
      const START = Symbol('start');
      const series = new Map<unknown, { count: number; sum: number; buckets: Float64Array }>();
      const bounds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
      subscribe('http.server.response.finish', (message) => {
        const { request, response } = message as { request: express.Request; response: express.Response };
        const start = (response.locals as Record<symbol, number | undefined>)[START];
        if (start === undefined) return;
        const seconds = (performance.now() - start) / 1000;
        const route = request.route ?? 'unmatched';
        let s = series.get(route);
        if (s === undefined) {
          s = { count: 0, sum: 0, buckets: new Float64Array(bounds.length + 1) };
          series.set(route, s);
        }
        s.count++;
        s.sum += seconds;
        let b = 0;
        while (b < bounds.length && seconds > (bounds[b] as number)) b++;
        s.buckets[b] = (s.buckets[b] as number) + 1;
      });
      const mw: RequestHandler = (_req, res, next) => {
        (res.locals as Record<symbol, number>)[START] = performance.now();
        next();
      };
      return app([mw], async () => ({}));
    },
  };
}

async function fetchCounted(port: number): Promise<Counted> {
  const res = await fetch(`http://127.0.0.1:${port}/__counted`);
  if (res.status !== 200) throw new Error(`/__counted answered ${res.status}`);
  return (await res.json()) as Counted;
}

// The load generator counts the responses it received; the server may also have finished a few whose connection
// the generator closed at the end of a run (at most one per connection per run), hence the slack.
export async function checkCounted(ctx: SetupContext): Promise<CheckResult> {
  const c = await fetchCounted(ctx.port);
  const low = ctx.responses;
  const high = ctx.responses + ctx.slack;
  const problems: string[] = [];
  const within = (what: string, n: number | undefined) => {
    if (n === undefined || n < low || n > high) problems.push(`${what} counted ${n}, expected ${low} to ${high}`);
  };
  within('metrics', c.metrics);
  if (ctx.setup.role === 'ours') {
    within('usage', c.usage);
    if (c.usage !== c.metrics) problems.push(`usage counted ${c.usage} but metrics ${c.metrics}`);
    if (c.usageRoute !== c.usage) problems.push(`usage put ${c.usageRoute} of ${c.usage} under route /ping`);
    if (c.workspaces !== WORKSPACES.length) problems.push(`usage saw ${c.workspaces} workspaces, expected 3`);
  }
  return { problems };
}

/** The check of a set-up that mounts one of the two: that one counted every response, the other nothing. */
async function checkPart(ctx: SetupContext, only: 'metrics' | 'usage'): Promise<CheckResult> {
  const c = await fetchCounted(ctx.port);
  const low = ctx.responses;
  const high = ctx.responses + ctx.slack;
  const problems: string[] = [];
  const counted = only === 'metrics' ? c.metrics : c.usage;
  const other = only === 'metrics' ? c.usage : c.metrics;
  if (counted === undefined || counted < low || counted > high) {
    problems.push(`${only} counted ${counted}, expected ${low} to ${high}`);
  }
  if (other !== 0) problems.push(`${only === 'metrics' ? 'usage' : 'metrics'} counted ${other}, expected none`);
  if (only === 'usage') {
    if (c.usageRoute !== c.usage) problems.push(`usage put ${c.usageRoute} of ${c.usage} under /ping`);
    if (c.workspaces !== WORKSPACES.length) problems.push(`usage saw ${c.workspaces} workspaces, expected 3`);
  }
  return { problems };
}

export const suite: Suite = {
  name: 'observability',
  description: 'GET /ping with request metrics and usage tracking, against bare Express and prom-client',
  sanity:
    'every instrumented set-up counted every response the load generator received (metrics counter, and usage read back from Redis for the three workspaces, all under route /ping; the two reference set-ups that mount one half alone, that half, and the other none).',
  setups: [
    { name: 'bare', label: 'bare Express', role: 'bare', usesRedis: false, build: () => app([], async () => ({})) },
    // What one more app-wide Express layer costs by itself: the floor under the instrumented rows.
    {
      name: 'noop',
      label: 'reference: one no-op middleware app-wide',
      role: 'ours',
      usesRedis: false,
      build: () => app([(_req, _res, next) => next()], async () => ({})),
    },
    kitSetup('kit-two', 'kit.metrics() + kit.usage(), Redis', false),
    kitSetup('kit-observe', 'kit.observe() (both in one middleware), Redis', true),
    kitSetup(
      'kit-observe-10s',
      'reference: kit.observe(), usage flushed every 10 s instead of 250 ms (the per-request part)',
      true,
      '10 s',
    ),
    // What each half of kit.observe() costs alone (usage flushed every 10 s, as in kit-observe-10s).
    kitSetup('kit-metrics', 'reference: kit.metrics() alone', true, '10 s', false, 'metrics'),
    kitSetup('kit-usage', 'reference: kit.usage() alone, flushed every 10 s', true, '10 s', false, 'usage'),
    promClientSetup(),
    floorSetup(),
  ],
  targets: [
    {
      feature: 'Usage + request metrics in one middleware, kit.observe() (vs bare Express)',
      setup: 'kit-observe',
      minRatio: 0.97,
    },
    {
      feature: 'Usage + request metrics as two middlewares, kit.metrics() + kit.usage() (vs bare Express)',
      setup: 'kit-two',
      minRatio: 0.97,
    },
    {
      feature: 'prom-client counter + histogram, for comparison (vs bare Express)',
      setup: 'prom-client',
      reported: 'reported (the peer, no target)',
    },
  ],
};
