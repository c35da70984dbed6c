// Health routes. `/health` is liveness: no store call, always fast. `/health/redis` is readiness in the
// `application/health+json` format of the IETF draft "Health Check Response Format for HTTP APIs": a status of
// pass, warn or fail, and per-component checks keyed `component:measurement`. It answers within its own timeout
// even when the store is unreachable.

import { Router, type Request, type Response } from 'express';
import type { Store } from '../connection/store.js';
import { VERSION } from '../version.js';

export interface HealthOptions {
  /** Longest the readiness check waits for the store before answering `fail`. @default 800 (under Kubernetes' 1 s probe timeout) */
  timeoutMs: number;
  /** Ping latency above which readiness is `warn` rather than `pass`. @default 100 */
  warnLatencyMs: number;
}

export type HealthStatus = 'pass' | 'warn' | 'fail';

export interface HealthCheck {
  componentId?: string;
  componentType?: string;
  observedValue?: number | string;
  observedUnit?: string;
  status: HealthStatus;
  time: string;
  output?: string;
}

export interface HealthReport {
  status: HealthStatus;
  version: string;
  releaseId: string;
  serviceId: string;
  description: string;
  checks: Record<string, HealthCheck[]>;
  output?: string;
}

const CONTENT_TYPE = 'application/health+json';

export async function checkStore(store: Store, options: HealthOptions): Promise<HealthReport> {
  const time = new Date().toISOString();
  const componentId = store.mode;
  let status: HealthStatus = 'pass';
  let output: string | undefined;
  let latency: number | undefined;
  let version = 'unknown';
  const deadline = Date.now() + options.timeoutMs;
  try {
    latency = await store.ping({ timeoutMs: options.timeoutMs, everyNode: true });
    // INFO is best effort: readiness depends on PING alone, and the version must not eat the whole budget.
    const left = deadline - Date.now();
    if (left > 0) {
      version = await store
        .info({ timeoutMs: left })
        .then((i) => i.version)
        .catch(() => 'unknown');
    }
    if (latency > options.warnLatencyMs) {
      status = 'warn';
      output = `ping took ${latency.toFixed(1)} ms (warn above ${options.warnLatencyMs} ms)`;
    }
  } catch (error) {
    status = 'fail';
    output = error instanceof Error ? error.message : String(error);
  }
  const circuit = store.circuitState;
  if (status === 'pass' && circuit !== 'closed') status = 'warn';
  const check = (observedValue: number | string | undefined, extra: Partial<HealthCheck> = {}): HealthCheck[] => [
    { componentId, componentType: 'datastore', observedValue, status, time, ...extra },
  ];
  const checks: Record<string, HealthCheck[]> = {
    'store:responseTime': check(latency === undefined ? undefined : Math.round(latency * 100) / 100, {
      observedUnit: 'ms',
      ...(output ? { output } : {}),
    }),
    'store:mode': check(store.mode),
    'store:version': check(version),
    'store:circuit': check(circuit),
  };
  return {
    status,
    version: '1',
    releaseId: VERSION,
    serviceId: 'express-redis-kit',
    description: `store readiness (${store.mode})`,
    checks,
    ...(output ? { output } : {}),
  };
}

export function healthRouter(store: Store, options: HealthOptions): Router {
  const router = Router();
  const liveness = JSON.stringify({ status: 'pass', version: '1', releaseId: VERSION, serviceId: 'express-redis-kit' });

  router.get('/health', (_req: Request, res: Response) => {
    res.status(200).type(CONTENT_TYPE).set('Cache-Control', 'no-store').send(liveness);
  });

  router.get('/health/redis', (_req: Request, res: Response, next) => {
    checkStore(store, options).then((report) => {
      res
        .status(report.status === 'fail' ? 503 : 200)
        .type(CONTENT_TYPE)
        .set('Cache-Control', 'no-store')
        .send(JSON.stringify(report));
    }, next);
  });

  return router;
}
