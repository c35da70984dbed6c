// Small HTTP helpers the suites' prepare/check hooks share: a cookie from a response, sequential latency samples,
// percentiles, and counting keys on the run's Redis.

import { Agent, get as httpGet } from 'node:http';
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

export interface LatencySample {
  p50: number;
  p99: number;
  statuses: Set<number>;
}

/**
 * Latency (ms) of `n` requests sent one after another, none in flight together, on one kept-alive connection: the
 * cost of one request on an otherwise idle server, seen from a light client (node:http; fetch added about a
 * millisecond of its own per request here, more than the work measured). `warmup` requests go first, unmeasured.
 */
export async function sequentialLatency(
  url: string,
  n: number,
  headers: Record<string, string> = {},
  warmup = 50,
): Promise<LatencySample> {
  const [only] = await alternatingLatency([{ url, headers }], n, warmup);
  return only as LatencySample;
}

/**
 * sequentialLatency() for several targets at once, taking turns request by request in a rotating order (each on a
 * connection of its own): a slow spell of the host then falls on all of them alike, so their figures can be
 * compared.
 */
export async function alternatingLatency(
  targets: Array<{ url: string; headers?: Record<string, string> }>,
  n: number,
  warmup = 50,
): Promise<LatencySample[]> {
  const agents = targets.map(() => new Agent({ keepAlive: true, maxSockets: 1 }));
  const once = (i: number) =>
    new Promise<number>((resolve, reject) => {
      const { url, headers = {} } = targets[i] as (typeof targets)[number];
      const req = httpGet(url, { agent: agents[i], headers }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.setTimeout(10_000, () => req.destroy(new Error(`no answer from ${url} within 10 s`)));
    });
  const times = targets.map((): number[] => []);
  const statuses = targets.map(() => new Set<number>());
  try {
    for (let w = 0; w < warmup; w++) for (let i = 0; i < targets.length; i++) await once(i);
    for (let k = 0; k < n; k++) {
      // The order turns each time, so no target always follows the same one (and whatever it left behind).
      for (let j = 0; j < targets.length; j++) {
        const i = (j + k) % targets.length;
        const t = performance.now();
        const status = await once(i);
        (times[i] as number[]).push(performance.now() - t);
        (statuses[i] as Set<number>).add(status);
      }
    }
  } finally {
    for (const agent of agents) agent.destroy();
  }
  return times.map((xs, i) => ({
    p50: percentile(xs, 50),
    p99: percentile(xs, 99),
    statuses: statuses[i] as Set<number>,
  }));
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
