// HTTP request metrics: count and latency per route template. The label is the pattern the request matched
// (`/items/:id`), never the raw path, so ten thousand distinct URLs stay a handful of series; whatever no route
// matched is `unmatched`, and past `maxRoutes` distinct templates new ones collapse into `other`.

import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { HistogramMetric, MetricsRegistry, ValueMetric } from './metrics.js';
import { type FinishHook, type FinishState, onFinish } from './finish.js';
import { observeInto } from './metrics.js';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** The route template a request matched, with the mount path of the router it went through. */
export function routeTemplate(req: Request): string {
  const route = (req as { route?: { path?: unknown } }).route;
  if (!route || route.path === undefined) return 'unmatched';
  const path = typeof route.path === 'string' ? route.path : String(route.path);
  // baseUrl is the matched mount path: a parameterised mount (`/w/:id`) shows its value here; maxRoutes bounds that.
  // Without one, the route's own string is returned as is (no new string to hash on the hot path).
  const base = req.baseUrl;
  return base ? `${base}${path}` : path || '/';
}

/**
 * routeTemplate(req), computed once per response: request metrics and usage both label by it, and whichever hook
 * runs second reads the first one's answer from the response's finish state.
 */
export function routeOf(req: Request, state: FinishState): string {
  let route = state.route;
  if (route === undefined) {
    route = routeTemplate(req);
    state.route = route;
  }
  return route;
}

export interface HttpMetricsOptions {
  /** Distinct route labels kept; later ones are counted under `other`. @default 100 */
  maxRoutes?: number;
  /** Overrides the route label (e.g. to strip a tenant segment from a parameterised mount path). */
  route?: (req: Request, res: Response) => string;
}

interface Pair {
  count: { value: number };
  latency: ReturnType<HistogramMetric['seriesFor']>;
}

/**
 * Responses logged before they are folded into the series. A fold per response (three Map lookups and a bucket
 * search) ran with caches the rest of the request had evicted, and cost microseconds on a busy server; four writes
 * to preallocated columns cost next to nothing, and folding a few hundred at once finds the maps in cache. Every
 * read of the registry folds first (`beforeRead`), so a scrape sees every finished response.
 */
const LOG_SIZE = 512;

/** The work done when a response finishes (the middleware only records the start time). */
export function httpMetricsHook(
  requests: ValueMetric,
  duration: HistogramMetric,
  options: { maxRoutes: number; route?: (req: Request, res: Response) => string },
  registry: Pick<MetricsRegistry, 'beforeRead' | 'offBeforeRead'>,
): FinishHook {
  const buckets = duration.buckets;
  const routes = new Set<string>();
  // route → method → status → series: the route templates and method names are the same string objects every time,
  // so the lookups hash nothing.
  const cache = new Map<string, Map<string, Map<number, Pair>>>();
  const custom = options.route;
  const logRoute: string[] = new Array<string>(LOG_SIZE).fill('');
  const logMethod: string[] = new Array<string>(LOG_SIZE).fill('');
  const logStatus: number[] = new Array<number>(LOG_SIZE).fill(0);
  const logSeconds = new Float64Array(LOG_SIZE);
  let logged = 0;

  const count = (template: string, method: string, status: number, seconds: number): void => {
    let route = template;
    let byMethod = cache.get(route);
    if (!byMethod) {
      if (!routes.has(route)) {
        if (routes.size >= options.maxRoutes) route = 'other';
        else routes.add(route);
      }
      byMethod = cache.get(route) ?? new Map();
      cache.set(route, byMethod);
    }
    let byStatus = byMethod.get(method);
    if (!byStatus) {
      byStatus = new Map();
      byMethod.set(method, byStatus);
    }
    let pair = byStatus.get(status);
    if (!pair) {
      pair = {
        count: requests.entry([method, route, String(status)]),
        latency: duration.seriesFor([method, route]),
      };
      byStatus.set(status, pair);
    }
    pair.count.value += 1;
    observeInto(buckets, pair.latency, seconds);
  };

  // Registered with the registry only while the log holds entries: a middleware that is dropped (an app
  // built per test or per tenant) is then not kept alive by the registry.
  const fold = (): void => {
    const n = logged;
    logged = 0;
    registry.offBeforeRead(fold);
    for (let i = 0; i < n; i++) {
      count(logRoute[i] as string, logMethod[i] as string, logStatus[i] as number, logSeconds[i] as number);
    }
    // The log must not keep a departed request's strings (a custom route label may be built per request) alive.
    logRoute.fill('', 0, n);
  };
  return (req: Request, res: Response, state: FinishState): void => {
    const seconds = (performance.now() - state.started) / 1000;
    // Read before anything is written: a route function that throws leaves the log as it was. String() here, so
    // that a label of another type cannot make a later fold (of other responses too) throw.
    const route = custom === undefined ? routeOf(req, state) : String(custom(req, res));
    const method = METHODS.has(req.method) ? req.method : 'OTHER';
    if (logged === LOG_SIZE) fold();
    if (logged === 0) registry.beforeRead(fold);
    const i = logged++;
    logSeconds[i] = seconds;
    logRoute[i] = route;
    logMethod[i] = method;
    logStatus[i] = res.statusCode;
  };
}

export function httpMetricsMiddleware(hook: FinishHook): RequestHandler {
  return function rediskitMetrics(_req: Request, res: Response, next: NextFunction): void {
    onFinish(res, hook).started = performance.now();
    next();
  };
}
