// Small HTTP helpers the suites' prepare/check hooks share: a cookie from a response, sequential latency samples,
// percentiles, and counting keys on the run's Redis.

import type Redis from 'ioredis';

/** `name=value` of the first Set-Cookie of a response (attributes dropped), or undefined. */
export function cookieFrom(res: Response): string | undefined {
  const first = res.headers.getSetCookie()[0];
  return first?.split(';')[0];
}

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}

/**
 * Latency (ms) of `n` requests sent one after another, none in flight together: the cost of one request on an
 * otherwise idle server (client overhead included). Fails on any non-2xx.
 */
export async function sequentialLatency(
  url: string,
  n: number,
  headers: Record<string, string> = {},
): Promise<{ p50: number; p99: number; statuses: Set<number> }> {
  const times: number[] = [];
  const statuses = new Set<number>();
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const res = await fetch(url, { headers });
    await res.arrayBuffer();
    times.push(performance.now() - t);
    statuses.add(res.status);
  }
  return { p50: percentile(times, 50), p99: percentile(times, 99), statuses };
}

/** Keys matching a pattern (SCAN, so it does not block the server for long). */
export async function countKeys(redis: Redis, pattern: string): Promise<number> {
  let cursor = '0';
  let n = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    n += keys.length;
  } while (cursor !== '0');
  return n;
}
