// What the fault and Cluster suites share: the fault app as a child process, one probe per feature that says
// whether the feature answered normally or in its failure mode, a recovery timer, and writers that keep creating
// sessions and jobs so that every acknowledged one can be checked afterwards.

import { type ChildProcess, spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';

export interface AppProcess {
  port: number;
  base: string;
  child: ChildProcess;
  stderr(): string;
  /** SIGTERM, then the exit code (3 if the app counted an unhandled rejection or uncaught exception). */
  stop(): Promise<number | null>;
}

export async function startFaultApp(env: Record<string, string>): Promise<AppProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'fault-app.ts')], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`fault app did not start: ${stderr}`)), 30_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { port: number }).port);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`fault app exited with ${code}: ${stderr}`));
    });
  });
  return {
    port,
    base: `http://127.0.0.1:${port}`,
    child,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  ms: number;
}

/** One HTTP request; a transport error or a 10 s stall is status 0 (never thrown). */
export function call(
  base: string,
  method: string,
  path: string,
  options: { body?: unknown; cookie?: string } = {},
): Promise<Reply> {
  const started = performance.now();
  const body = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve) => {
    const req = httpRequest(
      `${base}${path}`,
      {
        method,
        agent: false,
        headers: {
          ...(body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {}),
          ...(options.cookie ? { cookie: options.cookie } : {}),
        },
        timeout: 10_000,
      },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => {
          text += chunk.toString();
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, ms: performance.now() - started }),
        );
        res.on('error', () => resolve({ status: 0, headers: {}, body: '', ms: performance.now() - started }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0, headers: {}, body: '', ms: performance.now() - started }));
    req.end(body);
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function cookieOf(reply: Reply): string | undefined {
  const set = reply.headers['set-cookie'];
  const first = Array.isArray(set) ? set[0] : set;
  return first?.split(';')[0];
}

const reasonOf = (r: Reply) => String(r.headers['x-fault-reason'] ?? r.headers['cache-status'] ?? '');

export type Feature =
  | 'rl-open'
  | 'rl-closed'
  | 'rl-local'
  | 'session-fail'
  | 'session-degrade'
  | 'cache'
  | 'semantic'
  | 'lock'
  | 'queue'
  | 'realtime'
  | 'health';

export const FEATURES: Feature[] = [
  'rl-open',
  'rl-closed',
  'rl-local',
  'session-fail',
  'session-degrade',
  'cache',
  'semantic',
  'lock',
  'queue',
  'realtime',
  'health',
];

export interface ProbeContext {
  base: string;
  /** Cookies of sessions made before the faults (one per failure mode). */
  cookies: { fail: string; degrade: string };
}

export type Outcome = 'normal' | 'failure-mode' | 'wrong';

/**
 * One request to a feature, judged: `normal` (the store decided), `failure-mode` (exactly what the feature's
 * guide says happens without a store), or `wrong` (anything else: a 500, a hang, a lost session...).
 */
export async function probe(feature: Feature, ctx: ProbeContext, n = 0): Promise<{ outcome: Outcome; reply: Reply }> {
  const { base, cookies } = ctx;
  let reply: Reply;
  let outcome: Outcome = 'wrong';
  switch (feature) {
    case 'rl-open':
    case 'rl-closed':
    case 'rl-local': {
      const mode = feature.slice(3);
      reply = await call(base, 'GET', `/rl/${mode}`);
      const reason = reasonOf(reply);
      if (reply.status === 200 && reason === 'store') outcome = 'normal';
      else if (mode === 'open' && reply.status === 200 && reason === 'store-unavailable') outcome = 'failure-mode';
      else if (mode === 'closed' && reply.status === 503) outcome = 'failure-mode';
      else if (mode === 'local' && reply.status === 200 && reason === 'local') outcome = 'failure-mode';
      break;
    }
    case 'session-fail': {
      reply = await call(base, 'GET', '/s/fail/me', { cookie: cookies.fail });
      const user = reply.status === 200 ? (JSON.parse(reply.body) as { user: string | null }).user : null;
      if (reply.status === 200 && user) outcome = 'normal';
      else if (reply.status === 503) outcome = 'failure-mode';
      break;
    }
    case 'session-degrade': {
      reply = await call(base, 'GET', '/s/degrade/me', { cookie: cookies.degrade });
      const parsed =
        reply.status === 200 ? (JSON.parse(reply.body) as { user: string | null; degraded: boolean }) : null;
      if (parsed?.user && !parsed.degraded) outcome = 'normal';
      else if (parsed?.degraded && parsed.user === null) outcome = 'failure-mode';
      break;
    }
    case 'cache': {
      reply = await call(base, 'GET', '/cache/item');
      const status = reasonOf(reply);
      if (reply.status === 200 && /fwd=bypass; detail=store-unavailable/.test(status)) outcome = 'failure-mode';
      else if (reply.status === 200 && /; hit|fwd=miss|fwd=stale/.test(status)) outcome = 'normal';
      break;
    }
    case 'semantic': {
      reply = await call(base, 'POST', '/llm', { body: { q: n } });
      const reason = reasonOf(reply);
      if (reply.status === 200 && /store-unavailable/.test(reason)) outcome = 'failure-mode';
      else if (reply.status === 200 && /^(hit|miss):/.test(reason)) outcome = 'normal';
      break;
    }
    case 'lock': {
      reply = await call(base, 'POST', '/lock');
      if (reply.status === 200) outcome = 'normal';
      // 503: the store is away. 409: the lock is busy past waitTimeout, which a lease granted before the fault
      // (or an acquire that reached the server after its caller gave up) causes until the lease's TTL ends.
      else if (reply.status === 503 || reply.status === 409) outcome = 'failure-mode';
      break;
    }
    case 'queue': {
      reply = await call(base, 'POST', '/jobs', { body: { n } });
      if (reply.status === 202) outcome = 'normal';
      else if (reply.status === 503) outcome = 'failure-mode';
      break;
    }
    case 'realtime': {
      reply = await call(base, 'POST', '/rt/publish', { body: { n } });
      if (reply.status === 200) outcome = 'normal';
      else if (reply.status === 503) outcome = 'failure-mode';
      break;
    }
    case 'health': {
      reply = await call(base, 'GET', '/api/v1/health/redis');
      if (reply.status === 200) outcome = 'normal';
      else if (reply.status === 503) outcome = 'failure-mode';
      break;
    }
  }
  return { outcome, reply };
}

export interface Recovery {
  /** ms from `since` to the first normal answer, per feature (NaN: not within the limit). */
  ms: Record<Feature, number>;
  /** Answers that were neither normal nor the failure mode while waiting. */
  wrong: Array<{ feature: Feature; status: number; reason: string; body: string }>;
  /** Slowest single probe per feature while waiting. */
  slowest: Record<Feature, number>;
}

/** Probes every feature in a loop until each has answered normally once; times from `since`. */
export async function measureRecovery(ctx: ProbeContext, since: number, limitMs = 10_000): Promise<Recovery> {
  const ms = {} as Record<Feature, number>;
  const slowest = {} as Record<Feature, number>;
  const wrong: Recovery['wrong'] = [];
  await Promise.all(
    FEATURES.map(async (feature) => {
      slowest[feature] = 0;
      let n = 0;
      while (performance.now() - since < limitMs) {
        const { outcome, reply } = await probe(feature, ctx, n++);
        slowest[feature] = Math.max(slowest[feature], reply.ms);
        if (outcome === 'normal') {
          ms[feature] = performance.now() - since;
          return;
        }
        if (outcome === 'wrong') {
          wrong.push({ feature, status: reply.status, reason: reasonOf(reply), body: reply.body.slice(0, 200) });
        }
        await sleep(20);
      }
      ms[feature] = Number.NaN;
    }),
  );
  return { ms, wrong, slowest };
}

/** Probes every feature once and returns the outcomes (for "during the fault, each feature is in its mode"). */
export async function snapshot(
  ctx: ProbeContext,
): Promise<Record<Feature, { outcome: Outcome; status: number; reason: string; ms: number }>> {
  const out = {} as Record<Feature, { outcome: Outcome; status: number; reason: string; ms: number }>;
  await Promise.all(
    FEATURES.map(async (feature, i) => {
      const { outcome, reply } = await probe(feature, ctx, i);
      out[feature] = { outcome, status: reply.status, reason: reasonOf(reply), ms: reply.ms };
    }),
  );
  return out;
}

/**
 * Keeps creating sessions (onStoreError 'fail') and jobs, one of each every `everyMs`, and remembers the ones the
 * app acknowledged (200 with a cookie, 202 with an id). Stop it, then check that every acknowledged one exists.
 */
export function startWriters(base: string, everyMs = 60) {
  const sessions: Array<{ cookie: string; user: string }> = [];
  const jobs: string[] = [];
  let refused = 0;
  let running = true;
  let n = 0;
  const loop = (async () => {
    while (running) {
      const [login, job] = await Promise.all([
        call(base, 'POST', '/s/fail/login'),
        call(base, 'POST', '/jobs', { body: { n: n++ } }),
      ]);
      const cookie = cookieOf(login);
      if (login.status === 200 && cookie)
        sessions.push({ cookie, user: (JSON.parse(login.body) as { user: string }).user });
      else refused++;
      if (job.status === 202) jobs.push((JSON.parse(job.body) as { id: string }).id);
      else refused++;
      await sleep(everyMs);
    }
  })();
  return {
    sessions,
    jobs,
    refused: () => refused,
    async stop() {
      running = false;
      await loop;
    },
  };
}

export interface RouteFigures {
  count: number;
  maxMs: number;
  status: Record<string, number>;
  reason: Record<string, number>;
}

export interface AppStats {
  figures: Record<string, RouteFigures>;
  trouble: { unhandledRejections: number; uncaughtExceptions: number; last: string };
  warnings: Record<string, number>;
  lockOverlaps: number;
  tokenRegressions: number;
  completed: string[];
  received: number[];
  circuit: string;
  /** The worker's counters: `stalledRecovered` (leases that ran out) and `released` (lost replies) tell faults apart. */
  queue: { stalledRecovered: number; released: number; leasesLost: number };
}

export async function appStats(base: string, reset = false): Promise<AppStats> {
  const stats = JSON.parse((await call(base, 'GET', '/_ctl/stats')).body) as AppStats;
  if (reset) await call(base, 'POST', '/_ctl/reset');
  return stats;
}

/** A Server-Sent Events stream held open from the test: the `n` of every event it delivered. */
export function openEventStream(base: string, channel: string) {
  const seen = new Set<number>();
  let closed = false;
  let buffer = '';
  const req = httpRequest(`${base}/api/v1/realtime/${channel}`, { agent: false }, (res) => {
    res.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let i = buffer.indexOf('\n\n');
      while (i >= 0) {
        const frame = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        for (const line of frame.split('\n')) {
          if (!line.startsWith('data:')) continue;
          try {
            const data = JSON.parse(line.slice(5)) as { data?: { n?: number }; n?: number };
            const value = data?.data?.n ?? data?.n;
            if (typeof value === 'number') seen.add(value);
          } catch {
            // heartbeats and gap notices
          }
        }
        i = buffer.indexOf('\n\n');
      }
    });
    res.on('close', () => {
      closed = true;
    });
  });
  req.on('error', () => {
    closed = true;
  });
  req.end();
  return {
    seen,
    closed: () => closed,
    close: () => req.destroy(),
  };
}

/** Waits until `check` holds; the ms it took, or NaN past `limitMs`. */
export async function waitUntil(check: () => boolean | Promise<boolean>, limitMs: number): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < limitMs) {
    // A check that throws (a node mid-failover) has not held yet.
    if (
      await Promise.resolve()
        .then(check)
        .catch(() => false)
    )
      return performance.now() - started;
    await sleep(20);
  }
  return Number.NaN;
}

export interface Timeline {
  /** Every probe answer, per feature: when it came back (performance.now()) and what it was. */
  events: Record<Feature, Array<{ at: number; outcome: Outcome; status: number; ms: number }>>;
}

/** Probes every feature in a loop until stopped, keeping each answer with its time. */
export function startMonitor(ctx: ProbeContext, pauseMs = 25) {
  const events = Object.fromEntries(FEATURES.map((f) => [f, []])) as unknown as Timeline['events'];
  let running = true;
  const loops = FEATURES.map(async (feature) => {
    let n = 0;
    while (running) {
      const { outcome, reply } = await probe(feature, ctx, n++);
      events[feature].push({ at: performance.now(), outcome, status: reply.status, ms: reply.ms });
      await sleep(pauseMs);
    }
  });
  return {
    events,
    async stop(): Promise<Timeline> {
      running = false;
      await Promise.all(loops);
      return { events };
    },
  };
}

/**
 * Per feature, between `from` and `until` (the end): how many answers were not normal, the slowest answer, and when the
 * feature was normal for good (the first normal answer after the last abnormal one; `from` if none was abnormal).
 * A lock's 409 counts as normal (busy is its normal answer under contention).
 */
export function summarise(timeline: Timeline, from: number, until = Number.POSITIVE_INFINITY) {
  const out = {} as Record<Feature, { abnormal: number; wrong: number; slowestMs: number; normalAgainAt: number }>;
  for (const feature of FEATURES) {
    const list = timeline.events[feature].filter((e) => e.at >= from && e.at < until);
    const isNormal = (e: { outcome: Outcome; status: number }) =>
      e.outcome === 'normal' || (feature === 'lock' && e.status === 409);
    let lastAbnormal = -1;
    list.forEach((e, i) => {
      if (!isNormal(e)) lastAbnormal = i;
    });
    out[feature] = {
      abnormal: list.filter((e) => !isNormal(e)).length,
      wrong: list.filter((e) => e.outcome === 'wrong' && !(feature === 'lock' && e.status === 409)).length,
      slowestMs: Math.max(0, ...list.map((e) => e.ms)),
      normalAgainAt: lastAbnormal < 0 ? from : (list[lastAbnormal + 1]?.at ?? Number.NaN),
    };
  }
  return out;
}
