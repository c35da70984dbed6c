// Fault injection under load: the fault app (every feature, each on its own route) talks to Redis through the fault
// proxy while autocannon keeps every route busy, and the suite breaks things in turn: 200 ms of added latency,
// Redis killed and restarted on the same port, a black hole, a connection-reset storm, and a store slower than the
// command timeout. For each: every feature answers normally or in its documented failure mode (never a 500 or a
// hang), no request waits past its bound, each feature is normal again within 2 s of the store being healthy,
// scripts are loaded again after the restart, and every session and job the app acknowledged still exists.
//
// The Redis runs with `appendonly yes` and `appendfsync always`: a SIGKILL then loses nothing the server had
// answered, so "acknowledged" means "durable" here. (Without persistence a restart empties Redis, and sessions
// and jobs are gone by design.) The figures are printed (FAULTS_REPORT) for docs/reliability.md.
//
// `npm test` runs this file after all the others, on its own (jest --runInBand): its bounds assume that its own load
// is all the machine carries. Run beside another jest worker, a CI run (2026-11-27 20:11 UTC) saw one lock request
// outlast its 1 s command timeout during the +200 ms latency phase (a 503, the documented timeout answer, where this
// phase expects none); alone, it passed five runs out of five.
//
// It runs with --forceExit. Once (2026-11-27 22:56 UTC, a CI run with a second one started beside it) this file
// passed and then its jest process never exited: Node's own teardown (Environment::CleanupHandles, seen with perf)
// spun for minutes on a TCP socket it never finished closing, after the event loop had drained. Jest's forced exit
// skips that teardown; everything this file starts is stopped in its afterAll all the same.

import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy';
import { type RedisProcess, startRedis } from '../support/redis-server';
import { describeWithRedis } from '../support/require-redis';
import {
  type AppProcess,
  type AppStats,
  appStats,
  call,
  cookieOf,
  FEATURES,
  type Feature,
  measureRecovery,
  openEventStream,
  type ProbeContext,
  type Recovery,
  snapshot,
  startFaultApp,
  startWriters,
  waitUntil,
} from './harness';

jest.setTimeout(180_000);

// FAULTS_TRACE=file: progress of the run, written as it happens (jest prints only at the end).
const trace = (line: string) => {
  if (process.env.FAULTS_TRACE) appendFileSync(process.env.FAULTS_TRACE, `${new Date().toISOString()} ${line}\n`);
};

const T = 1000; // the app's command timeout (ms): the kit's default
// Scheduling slack on a shared 2-core machine running jest, autocannon, the app and Redis at once.
const SLACK = 600;
// Store calls a request can make one after another, each bounded by T: its wait bound is calls × T + SLACK.
const CALLS: Record<string, number> = {
  'rl-open': 1,
  'rl-closed': 1,
  'rl-local': 1,
  'session-fail': 2, // load, then save
  'session-degrade': 2,
  cache: 4, // lookup, the fill lease, a coalescing wait (1 s in the fault app) or the fill, the store of the result
  semantic: 3, // exact lookup, index load, store
  lock: 3, // acquire (with retries inside waitTimeout), release
  'queue-add': 1,
  'queue-get': 1,
  'realtime-publish': 1,
  '/api/v1/health/redis': 1,
};
const RECOVERY_LIMIT = 2000;

function redisInfo(port: number, section: string): Record<string, string> {
  const text = execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'INFO', section], {
    encoding: 'utf8',
    timeout: 5000,
  });
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}
const statCount = (value: string | undefined, field = 'count') =>
  Number(new RegExp(`${field}=(\\d+)`).exec(value ?? '')?.[1] ?? 0);

interface PhaseReport {
  fault: string;
  during: Record<Feature, { outcome: string; status: number; reason: string; ms: number }> | undefined;
  recovery: Recovery | undefined;
  figures: AppStats['figures'];
}

describeWithRedis('fault injection under load (standalone Redis behind a fault proxy)', () => {
  let dir: string;
  let redis: RedisProcess;
  let proxy: FaultProxy;
  let app: AppProcess;
  let ctx: ProbeContext;
  const reports: PhaseReport[] = [];

  const redisArgs = ['--appendonly', 'yes', '--appendfsync', 'always'];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rk-faults-'));
    redis = await startRedis({ dir, args: redisArgs });
    proxy = await startFaultProxy({ targetPort: redis.port });
    app = await startFaultApp({ FAULT_REDIS_URL: proxy.url, FAULT_COMMAND_TIMEOUT_MS: String(T) });
    const fail = cookieOf(await call(app.base, 'POST', '/s/fail/login'));
    const degrade = cookieOf(await call(app.base, 'POST', '/s/degrade/login'));
    if (!fail || !degrade) throw new Error('could not make the reference sessions');
    ctx = { base: app.base, cookies: { fail, degrade } };
  });

  afterAll(async () => {
    await app?.stop();
    await proxy?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('every feature keeps its failure mode, bound and recovery through five faults', async () => {
    const stream = openEventStream(app.base, 'faults.events');
    const writers = startWriters(app.base);
    // Load on every route at once, paced so the 2-core machine is busy but not saturated.
    let loadResult: autocannon.Result | undefined;
    let resolveLoad: () => void = () => undefined;
    const loadDone = new Promise<void>((resolve) => {
      resolveLoad = resolve;
    });
    const load = autocannon(
      {
        url: app.base,
        connections: 12,
        overallRate: 240,
        duration: 300, // stopped by the test
        timeout: 5,
        requests: [
          { method: 'GET', path: '/rl/open' },
          { method: 'GET', path: '/rl/closed' },
          { method: 'GET', path: '/rl/local' },
          { method: 'GET', path: '/s/fail/me', headers: { cookie: ctx.cookies.fail } },
          { method: 'GET', path: '/s/degrade/me', headers: { cookie: ctx.cookies.degrade } },
          { method: 'GET', path: '/cache/item' },
          { method: 'POST', path: '/llm', headers: { 'content-type': 'application/json' }, body: '{"q":3}' },
          { method: 'POST', path: '/lock' },
          { method: 'POST', path: '/rt/publish', headers: { 'content-type': 'application/json' }, body: '{"n":-1}' },
          { method: 'GET', path: '/api/v1/health/redis' },
        ],
      },
      (_error, result) => {
        loadResult = result;
        resolveLoad();
      },
    );

    let marker = 1_000_000;
    /** After a recovery: an event published now reaches the server-side subscription and the open SSE stream. */
    const eventDelivery = async (): Promise<number> => {
      const n = marker++;
      const published = await call(app.base, 'POST', '/rt/publish', { body: { n } });
      if (published.status !== 200) return Number.NaN;
      return waitUntil(async () => (await appStats(app.base)).received.includes(n) && stream.seen.has(n), 3000);
    };

    const runFault = async (
      fault: string,
      inject: () => Promise<void> | void,
      heal: () => Promise<void> | void,
      expectFailureModes: boolean,
    ): Promise<PhaseReport> => {
      await appStats(app.base, true);
      await inject();
      await new Promise((r) => setTimeout(r, 1500)); // the circuit opens within the first few failures
      const during = await snapshot(ctx);
      trace(`${fault}: circuit after the snapshot: ${(await appStats(app.base)).circuit}`);
      await new Promise((r) => setTimeout(r, 2000));
      await heal();
      const healthyAt = performance.now();
      const recovery = expectFailureModes ? await measureRecovery(ctx, healthyAt) : undefined;
      await new Promise((r) => setTimeout(r, 500));
      const after = await appStats(app.base, true);
      const figures = after.figures;
      const report: PhaseReport = { fault, during, recovery, figures };
      trace(`${fault}: ${JSON.stringify({ during, recovery, figures, queue: after.queue })}`);
      reports.push(report);
      return report;
    };

    const checkFigures = (report: PhaseReport) => {
      for (const [route, f] of Object.entries(report.figures)) {
        const calls = CALLS[route] ?? 1;
        // A 500 or an aborted request is never a failure mode.
        expect({ fault: report.fault, route, status500: f.status['500'] ?? 0 }).toEqual({
          fault: report.fault,
          route,
          status500: 0,
        });
        expect({ fault: report.fault, route, aborted: f.status.aborted ?? 0 }).toEqual({
          fault: report.fault,
          route,
          aborted: 0,
        });
        expect({ fault: report.fault, route, within: f.maxMs <= calls * T + SLACK + latencyAllowance }).toEqual({
          fault: report.fault,
          route,
          within: true,
        });
      }
    };
    let latencyAllowance = 0;

    const checkFailureModes = (report: PhaseReport) => {
      const during = report.during as NonNullable<PhaseReport['during']>;
      for (const feature of FEATURES) {
        expect({ fault: report.fault, feature, outcome: during[feature].outcome }).toEqual({
          fault: report.fault,
          feature,
          outcome: 'failure-mode',
        });
      }
      const recovery = report.recovery as Recovery;
      expect({ fault: report.fault, wrong: recovery.wrong }).toEqual({ fault: report.fault, wrong: [] });
      for (const feature of FEATURES) {
        expect({ fault: report.fault, feature, recovered: recovery.ms[feature] <= RECOVERY_LIMIT }).toEqual({
          fault: report.fault,
          feature,
          recovered: true,
        });
      }
    };

    trace('load started');
    // 0. Warm-up: everything normal.
    await new Promise((r) => setTimeout(r, 1500));
    await appStats(app.base, true);
    const warm = await snapshot(ctx);
    for (const feature of FEATURES) {
      // Under load the lock may be busy past its 200 ms waitTimeout: 409 is its normal answer then.
      const outcome = feature === 'lock' && warm[feature].status === 409 ? 'normal' : warm[feature].outcome;
      expect({ feature, outcome }).toEqual({ feature, outcome: 'normal' });
    }

    // 1. 200 ms more round trip (100 ms each way), below the command timeout: slower, never failing.
    latencyAllowance = 3 * 200;
    const slow = await runFault(
      'latency +200 ms',
      () => proxy.setLatency({ up: 100, down: 100 }),
      () => proxy.heal(),
      false,
    );
    for (const feature of FEATURES) {
      const seen = slow.during?.[feature];
      const outcome = feature === 'lock' && seen?.status === 409 ? 'normal' : seen?.outcome;
      expect({ fault: slow.fault, feature, outcome }).toEqual({ fault: slow.fault, feature, outcome: 'normal' });
    }
    for (const [route, f] of Object.entries(slow.figures)) {
      const unexpected = Object.keys(f.status).filter((s) => !['200', '202', '409'].includes(s));
      expect({ route, unexpected }).toEqual({ route, unexpected: [] });
    }
    checkFigures(slow);
    latencyAllowance = 0;

    // 2. Redis killed (SIGKILL) and restarted on the same port from its append-only file.
    const port = redis.port;
    let noscript = 0;
    let noscriptLater = 0;
    let evals = 0;
    const killed = await runFault(
      'Redis killed and restarted',
      () => redis.stop(),
      async () => {
        redis = await startRedis({ port, dir, args: redisArgs });
      },
      true,
    );
    checkFigures(killed);
    checkFailureModes(killed);
    {
      const errors = redisInfo(redis.port, 'errorstats');
      const commands = redisInfo(redis.port, 'commandstats');
      noscript = statCount(errors.errorstat_NOSCRIPT);
      evals = statCount(commands.cmdstat_eval, 'calls');
    }
    // The restarted server had no scripts: the kit got NOSCRIPT and sent them again with EVAL...
    expect(noscript).toBeGreaterThan(0);
    expect(evals).toBeGreaterThan(0);
    const killedDelivery = await eventDelivery();
    expect(killedDelivery).toBeLessThan(RECOVERY_LIMIT);

    // 3. Black hole: connections accepted, nothing answered; healed with the held bytes delivered late.
    const hole = await runFault(
      'black hole',
      () => proxy.blackhole(),
      () => proxy.heal(),
      true,
    );
    checkFigures(hole);
    checkFailureModes(hole);
    const holeDelivery = await eventDelivery();
    expect(holeDelivery).toBeLessThan(RECOVERY_LIMIT);
    // A script first used on a rarer path (a reconciliation, a stalled job) meets NOSCRIPT once, later.
    noscriptLater = statCount(redisInfo(redis.port, 'errorstats').errorstat_NOSCRIPT) - noscript;

    // 4. Reset storm: every connection reset, and every new one for 3.5 s.
    const storm = await runFault(
      'connection-reset storm',
      () => proxy.resetStorm(3500),
      () => proxy.heal(),
      true,
    );
    checkFigures(storm);
    checkFailureModes(storm);
    const stormDelivery = await eventDelivery();
    expect(stormDelivery).toBeLessThan(RECOVERY_LIMIT);

    // 5. A store slower than the command timeout (600 ms each way): every call times out at T, no later.
    const slower = await runFault(
      'latency +1200 ms (over the timeout)',
      () => proxy.setLatency({ up: 600, down: 600 }),
      () => proxy.heal(),
      true,
    );
    checkFigures(slower);
    checkFailureModes(slower);

    // Steady state after all faults: two seconds of normal load without a single NOSCRIPT (scripts stay loaded).
    const noscriptBefore = statCount(redisInfo(redis.port, 'errorstats').errorstat_NOSCRIPT);
    await new Promise((r) => setTimeout(r, 2000));
    const noscriptSteady = statCount(redisInfo(redis.port, 'errorstats').errorstat_NOSCRIPT) - noscriptBefore;
    expect(noscriptSteady).toBe(0);

    load.stop();
    await loadDone;
    await writers.stop();

    // Every acknowledged session and job is still there.
    const missingSessions: string[] = [];
    for (const s of writers.sessions) {
      const me = await call(app.base, 'GET', '/s/fail/me', { cookie: s.cookie });
      if (me.status !== 200 || (JSON.parse(me.body) as { user: string | null }).user !== s.user)
        missingSessions.push(s.user);
    }
    const missingJobs: string[] = [];
    for (const id of writers.jobs) {
      const job = await call(app.base, 'GET', `/jobs/${id}`);
      if (job.status !== 200 || job.body === 'null') missingJobs.push(id);
    }
    expect(writers.sessions.length).toBeGreaterThanOrEqual(20);
    expect(writers.jobs.length).toBeGreaterThanOrEqual(20);
    expect(missingSessions).toEqual([]);
    expect(missingJobs).toEqual([]);
    // ...and the worker completed every acknowledged job.
    const allDone = await waitUntil(async () => {
      const done = new Set((await appStats(app.base)).completed);
      return writers.jobs.every((id) => done.has(id));
    }, 20_000);
    if (!(allDone < 20_000)) {
      const done = new Set((await appStats(app.base)).completed);
      const pending = [];
      for (const id of writers.jobs.filter((j) => !done.has(j)))
        pending.push((await call(app.base, 'GET', `/jobs/${id}`)).body);
      expect({ pending }).toEqual({ pending: [] });
    }

    const stats = await appStats(app.base);
    expect(stats.lockOverlaps).toBe(0);
    expect(stats.tokenRegressions).toBe(0);
    expect(stats.trouble).toEqual({ unhandledRejections: 0, uncaughtExceptions: 0, last: '' });
    expect(stream.closed()).toBe(false);
    stream.close();

    // Usage: every request counted once, whatever happened to the flushes.
    const usage = JSON.parse((await call(app.base, 'POST', '/_ctl/usage')).body) as {
      recorded: number;
      stored: number;
      stats: { dropped: number };
    };

    const result = loadResult as autocannon.Result;
    const summary = {
      load: {
        requests: result.requests.total,
        non2xx: result.non2xx,
        errors: result.errors,
        timeouts: result.timeouts,
        latencyMaxMs: result.latency.max,
        latencyP99Ms: result.latency.p99,
      },
      acknowledged: { sessions: writers.sessions.length, jobs: writers.jobs.length, refused: writers.refused() },
      jobsAllDoneMs: Math.round(allDone),
      noscriptAfterRestart: noscript,
      noscriptLater,
      noscriptSteady,
      evalAfterRestart: evals,
      eventDeliveryMs: { killed: killedDelivery, hole: holeDelivery, storm: stormDelivery },
      usage,
      tokenRegressions: stats.tokenRegressions,
      warnings: stats.warnings,
      phases: reports.map((r) => ({
        fault: r.fault,
        during:
          r.during &&
          Object.fromEntries(
            Object.entries(r.during).map(([k, v]) => [k, `${v.status} ${v.reason} ${Math.round(v.ms)}ms`]),
          ),
        recoveryMs: r.recovery && Object.fromEntries(Object.entries(r.recovery.ms).map(([k, v]) => [k, Math.round(v)])),
        maxMs: Object.fromEntries(Object.entries(r.figures).map(([k, v]) => [k, Math.round(v.maxMs)])),
        statuses: Object.fromEntries(Object.entries(r.figures).map(([k, v]) => [k, v.status])),
      })),
    };
    if (process.env.FAULTS_REPORT) console.log(JSON.stringify(summary, null, 1));
    expect(usage.stored).toBe(usage.recorded);
    expect(result.timeouts).toBe(0);
    expect(result.errors).toBe(0);
    expect(await app.stop()).toBe(0);
  });
});
