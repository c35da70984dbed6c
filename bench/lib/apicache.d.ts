// Minimal typings for apicache (it ships none); only what the benchmarks use.

declare module 'apicache' {
  import type { RequestHandler } from 'express';

  interface ApiCache {
    /** Caches responses of the routes behind it for a plain-English duration ('10 minutes'). */
    middleware(duration?: string | number, toggle?: unknown, options?: Record<string, unknown>): RequestHandler;
    /** A separate instance with its own options and store. */
    newInstance(options?: Record<string, unknown>): ApiCache;
    clear(target?: string): unknown;
  }
  const apicache: ApiCache;
  export default apicache;
}
