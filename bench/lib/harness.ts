// What the benchmark harness (run.ts) and its side tools (reference-bias.ts) share: one child process per set-up,
// load from autocannon, and the statistics of paired ratios.

import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import autocannon from 'autocannon';
import type Redis from 'ioredis';
import type { Setup, SetupContext, Suite } from './types';

const root = join(__dirname, '..', '..');

export interface Server {
  setup: Setup;
  /** How runs name this server: the set-up's name, or for paired mode's copies of bare Express, what it is for. */
  id: string;
  port: number;
  child: ChildProcess;
  /** Headers from the set-up's `prepare` (e.g. its session cookie), sent with every load request. */
  headers?: Record<string, string>;
}

/** `nodeArgs`: options for the child's Node before its script (profile-share.ts passes the CPU profiler's). */
export function startServer(
  suiteFile: string,
  setup: Setup,
  redisUrl: string,
  id = setup.name,
  nodeArgs: readonly string[] = [],
): Promise<Server> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [...nodeArgs, '--import', 'tsx', join(__dirname, 'child.ts'), suiteFile, setup.name, redisUrl],
      {
        cwd: root,
        stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
        env: { ...process.env, NODE_ENV: 'production' },
      },
    );
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${id} did not start`));
    }, 60_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /READY (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ setup, id, port: Number(m[1]), child });
      }
    });
    child.once('exit', (code) => reject(new Error(`${id} exited with ${code}`)));
  });
}

/**
 * Sends `message` to the child and settles with the first reply that has the property `key`. Rejects when the
 * child exits first or stays silent for `timeoutMs`: a crashed or stuck server fails the run instead of hanging it.
 */
export function ask<T>(
  server: Pick<Server, 'id' | 'child'>,
  message: unknown,
  key: string,
  timeoutMs = 60_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const { child } = server;
    const done = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (reply: unknown): void => {
      if (reply && typeof reply === 'object' && key in reply) {
        done();
        resolve((reply as Record<string, T>)[key] as T);
      }
    };
    const onExit = (code: number | null, signal: string | null): void => {
      done();
      reject(new Error(`${server.id} exited (${signal ?? code}) while the harness waited for its ${key}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`${server.id} did not answer with its ${key} within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.send(message as never);
  });
}

/** CPU time (µs) the child has used so far. */
export async function childCpu(server: Server): Promise<number> {
  return Number(await ask<number>(server, 'cpu', 'cpu', 10_000));
}

/** Stops the servers and settles once they have exited (SIGTERM, then SIGKILL after 5 s): their ports are free and
 * their CPU idle before anything else starts. */
export async function stopServers(servers: Server[]): Promise<void> {
  await Promise.all(
    servers.map((s) => {
      if (s.child.exitCode !== null || s.child.signalCode !== null) return undefined;
      const exited = new Promise<void>((resolve) => {
        const timer = setTimeout(() => s.child.kill('SIGKILL'), 5000);
        s.child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      s.child.kill('SIGTERM');
      return exited;
    }),
  );
}

export interface LoadResult {
  requests: { total: number; average: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
  timeouts: number;
}

export function load(
  port: number,
  path: string,
  seconds: number,
  connections: number,
  headers: Record<string, string> = {},
): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    autocannon(
      { url: `http://127.0.0.1:${port}${path}`, connections, duration: seconds, pipelining: 1, headers },
      (error: Error | null, result: LoadResult) => (error ? reject(error) : resolve(result)),
    );
  });
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

/** Student's t(0.975, df): two-sided 95 %. */
function tQuantile(df: number): number {
  const table = [12.71, 4.3, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23, 2.2, 2.18, 2.16, 2.14, 2.13];
  if (df <= table.length) return table[Math.max(1, df) - 1] as number;
  return df <= 20 ? 2.09 : df <= 30 ? 2.04 : df <= 40 ? 2.02 : df <= 60 ? 2.0 : 1.98;
}

/**
 * Mean and the half-width of its 95 % confidence interval. Successive pairs of a set-up may be correlated (a slow
 * spell of the host spans several runs): the variance of the mean is widened by (1 + 2 r1), r1 the lag-1
 * autocorrelation (when positive).
 */
export function meanInterval(xs: number[]): { mean: number; half: number } {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n < 3) return { mean, half: Number.NaN };
  const ss = xs.reduce((a, b) => a + (b - mean) ** 2, 0);
  let lag = 0;
  for (let i = 1; i < n; i++) lag += ((xs[i] as number) - mean) * ((xs[i - 1] as number) - mean);
  const r1 = ss > 0 ? Math.max(0, lag / ss) : 0;
  const sd = Math.sqrt(ss / (n - 1));
  return { mean, half: (tQuantile(n - 1) * sd * Math.sqrt(1 + 2 * r1)) / Math.sqrt(n) };
}

/**
 * A ratio's geometric mean with its 95 % interval, taken on the logs: the arithmetic mean of x/ref reads about
 * 1 + CV² for identical servers (about +1.5-2 % at this host's noise), the log's mean does not.
 */
export function ratioInterval(xs: number[]): { mean: number; low: number; high: number; half: number } {
  const m = meanInterval(xs.map(Math.log));
  return { mean: Math.exp(m.mean), low: Math.exp(m.mean - m.half), high: Math.exp(m.mean + m.half), half: m.half };
}

/**
 * ratioInterval() for ratios in groups that are not independent of each other within a group (paired mode's process
 * generations): the geometric mean of the groups' geometric means, with the interval over those group means.
 */
export function clusteredRatioInterval(groups: number[][]): { mean: number; low: number; high: number; half: number } {
  return ratioInterval(groups.filter((g) => g.length > 0).map(geometricMean));
}

export const geometricMean = (xs: number[]): number => Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);

/**
 * A set-up with a `verifyPath` (a route limited to `verifyLimit` requests) must admit exactly that many and refuse the
 * next: proof that its limiter counted in this run. Undefined when it did, or has no such route; else the problem.
 */
export async function verify(server: Server): Promise<string | undefined> {
  const { setup, port } = server;
  if (!setup.verifyPath || !setup.verifyLimit) return undefined;
  const statuses: number[] = [];
  for (let i = 0; i <= setup.verifyLimit; i++) {
    const res = await fetch(`http://127.0.0.1:${port}${setup.verifyPath}`);
    await res.arrayBuffer();
    statuses.push(res.status);
  }
  const expected = [...new Array(setup.verifyLimit).fill(200), 429];
  return statuses.join() === expected.join()
    ? undefined
    : `${server.id}: verification expected ${expected.join(',')} from ${setup.verifyPath}, got ${statuses.join(',')}`;
}

/** The path a set-up's load requests go to: its own, else its suite's, else `/ping`. */
export function pathOf(setup: Setup, suite: Suite): string {
  return setup.path ?? suite.path ?? '/ping';
}

/**
 * What a set-up's `prepare` (responses 0) and `check` get for the server on `port`; `responses` and `slack` as
 * SetupContext says.
 */
export function setupContext(
  setup: Setup,
  port: number,
  redisUrl: string,
  redis: Redis,
  responses = 0,
  slack = 0,
): SetupContext {
  return { base: `http://127.0.0.1:${port}`, redisUrl, redis, setup, port, responses, slack };
}
