// kit.usage(): the middleware and the kit.usage.* functions. The tracker (buffer and flush timer) is made on first
// use and flushed by kit.close().

import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { FeatureContext } from '../core/context.js';
import { type FinishHook, type FinishState, onFinish } from '../observability/finish.js';
import { routeOf } from '../observability/http.js';
import type { MetricsRegistry } from '../observability/metrics.js';
import { fromLocals, parseUsageMiddlewareOptions, type UsageConfig, type UsageMiddlewareOptions } from './options.js';
import { type UsageEvent, type UsageQuery, type UsageReport, type UsageStats, UsageTracker } from './usage.js';

export interface UsageApi {
  /** Middleware counting each finished request against its workspace, user, route template and feature. */
  (options?: UsageMiddlewareOptions): RequestHandler;
  /** Counts an event (e.g. LLM tokens) in the buffer; cheap, synchronous, never throws over bad input. */
  record(event: UsageEvent): void;
  /** Flushed counts of one workspace over a range, bucket by bucket. */
  query(query: UsageQuery): Promise<UsageReport>;
  /** Events counted this UTC month for a workspace: the hook a monthly quota reads (docs/usage.md). */
  monthToDate(workspace: string): Promise<{ used: number; period: string; resetsAt: string }>;
  /** Writes the buffer to the store now. */
  flush(): Promise<void>;
  stats(): UsageStats;
}

export function createUsageApi(
  context: FeatureContext,
  config: UsageConfig,
  registry: MetricsRegistry,
): { api: UsageApi; hook: (options?: UsageMiddlewareOptions) => FinishHook } {
  let tracker: UsageTracker | undefined;
  const get = (): UsageTracker => {
    if (!tracker) {
      const flushes = registry.counter('rediskit_usage_flushes_total');
      const flushDuration = registry.histogram('rediskit_usage_flush_duration_seconds');
      const t = new UsageTracker(context.store, config, context.logger, {
        events: registry.counter('rediskit_usage_events_total').entry([]),
        flushOk: flushes.entry(['ok']),
        flushError: flushes.entry(['error']),
        dropped: registry.counter('rediskit_usage_dropped_total').entry([]),
        flushSeconds: (s) => flushDuration.observe([], s),
      });
      registry.collect({ name: 'rediskit_usage_buffered_series', collect: () => [{ value: t.buffered }] });
      // The events counter must include the requests still in the middleware's log.
      registry.beforeRead(() => t.fold());
      context.onClose(() => t.close());
      tracker = t;
    }
    return tracker;
  };

  const hook = (options?: UsageMiddlewareOptions): FinishHook => {
    const o = parseUsageMiddlewareOptions(options);
    const t = get();
    const { route, skip, workspace, user, feature } = o;
    return (req: Request, res: Response, state: FinishState): void => {
      if (skip?.(req, res)) return;
      // The response's res.locals as the finish found it: no second read of it from the response.
      const locals = state.locals;
      t.hit(
        (workspace === undefined ? fromLocals.workspace(locals) : workspace(req, res)) || 'default',
        (user === undefined ? fromLocals.user(locals) : user(req, res)) ?? '',
        // The default label is shared with request metrics (computed once per response).
        route === undefined ? routeOf(req, state) : (route(req, res) ?? ''),
        (feature === undefined ? fromLocals.feature(locals) : feature(req, res)) ?? '',
      );
    };
  };
  const api = ((options?: UsageMiddlewareOptions): RequestHandler => {
    const finish = hook(options);
    return function rediskitUsage(_req: Request, res: Response, next: NextFunction): void {
      onFinish(res, finish);
      next();
    };
  }) as UsageApi;
  api.record = (event) => get().record(event ?? {});
  api.query = (query) => get().query(query);
  api.monthToDate = (workspace) => get().monthToDate(workspace);
  api.flush = () => get().flush();
  api.stats = () => {
    const t = get();
    const buffered = t.buffered; // first: it folds the log into the counts `stats` reports
    return { ...t.stats, buffered };
  };
  return { api, hook };
}
