// `npm run bench -- <suite> --in-process`: what each set-up adds to a request, measured without the network, and the
// requests/s ratio to bare Express that implies.
//
// Why. Over HTTP on this host, two runs of the same server differ by 10 % or more: the CPU's speed moves from one
// tenth of a second to the next (a bare server's requests per 100 ms ranged 450-1,030 under steady load), and the
// load generator shares the two cores. A ratio of a few percent between two set-ups then stays inside the noise of
// any paired run that fits in an hour.
//
// How. Each set-up's server process (the harness's own children) sends requests through its app without sockets
// (lib/in-process.ts): Express, the middleware and Node's response code run; the kernel, the HTTP parser and the
// load generator do not. The processes take turns in blocks of BLOCK requests (a few milliseconds), all pinned to one
// CPU, and each block is charged the process's CPU time until that process's next block starts (timers such as usage
// flushes, and deferred garbage collection, included), plus the Redis server's CPU during the block: on this
// machine Redis shares the cores with the app, as in the harness's "by CPU per request" column. A set-up's cost
// over bare Express's in the same round, averaged (geometric mean) over the rounds, is its in-process ratio r.
//
// From r to requests/s. Over HTTP a request costs bare Express k times its in-process CPU (parsing, sockets, system
// calls), k measured in every generation from the bare server under autocannon beside in-process blocks of its own.
// A middleware's added work is the same in both, and at saturation a one-threaded server's requests/s is the inverse
// of its CPU per request, so the implied ratio to bare Express is 1 / (1 + (r - 1) / k). Left out: what a set-up adds
// to the network's and the load generator's work (a few more header bytes), and time spent waiting on Redis rather
// than computing (hidden at saturation, where other requests are ready to run).
//
// Each generation starts fresh processes (two processes of the same code can differ by a few percent for as long as
// they live) and runs `--generation` rounds; the intervals are over the generations' geometric means. An A/A control
// (a second copy of bare Express, measured like any set-up) shows the method's bias and resolution in every run.

import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import Redis from 'ioredis';
import { childCpu, clusteredRatioInterval, load, median, type Server, startServer } from './harness';
import type { Flags, Setup, Suite, SummaryRow, ThroughputTarget } from './types';

/** Requests per block: about 15-20 ms of work here, short enough that the CPU's speed is about the same for both. */
const BLOCK = 200;
/** Unmeasured blocks per process before the first measured round. */
const WARMUP_BLOCKS = 20;
/**
 * A run decides a target only when its A/A control's interval lies within 1 ± this: a method that cannot tell
 * two identical servers apart to within 2 % decides nothing of a few percent.
 */
const CONTROL_TOLERANCE = 0.02;

// Every server process runs on the same CPU (the last one). Blocks run one at a time, so they never compete for it,
// and no set-up keeps a faster or busier core for its whole life: with the processes free to sit on either core,
// the A/A control's interval over six generations was ±4.5 %; pinned, ±1.5 % (2026-11-27, 2 vCPUs).
const CPU = String(cpus().length - 1);

function pin(server: Server): void {
  execFileSync('taskset', ['-a', '-p', '-c', CPU, String(server.child.pid)], { stdio: 'ignore' });
}

/** Seconds of CPU the Redis server has used (user + system). */
async function redisCpu(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string): number => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1] ?? Number.NaN);
  return field('used_cpu_user') + field('used_cpu_sys');
}

interface Runner {
  server: Server;
  path: string;
  headers: Record<string, string>;
  /** The process's CPU µs at the start of its previous block, that block's size, and Redis's CPU µs during it. */
  last?: { cpu: number; count: number; redis: number };
  /** CPU µs per request of this generation's blocks, by round: the app's and Redis's, and the app's alone. */
  perRequest: number[];
  appPerRequest: number[];
}

/**
 * Requests in flight in a block: as many as the HTTP runs' connections (50), so that a middleware that sends one
 * Redis command for the requests of one event-loop turn sees turns as full as under autocannon. With 16, the Redis
 * rate limiters measured about 2 points under what 50 gives (its batches of decisions were smaller).
 */
let concurrency = 50;

function block(r: Runner, count: number): Promise<{ cpu: number; failed: number }> {
  return new Promise((resolve) => {
    const onMessage = (message: unknown): void => {
      if (message && typeof message === 'object' && 'blockDone' in message) {
        r.server.child.off('message', onMessage);
        resolve((message as { blockDone: { cpu: number; failed: number } }).blockDone);
      }
    };
    r.server.child.on('message', onMessage);
    r.server.child.send({ block: { count, path: r.path, headers: r.headers, concurrency } });
  });
}

/** Charges the process's previous block with its CPU until `cpu` (the process's CPU µs now) and Redis's during it. */
function close(r: Runner, cpu: number): void {
  const previous = r.last;
  if (!previous) return;
  const app = (cpu - previous.cpu) / previous.count;
  r.appPerRequest.push(app);
  r.perRequest.push(app + previous.redis / previous.count);
}

/** Runs a block, and closes the process's previous one. */
async function measured(r: Runner, count: number, redis: Redis): Promise<void> {
  const r0 = await redisCpu(redis);
  const done = await block(r, count);
  const r1 = await redisCpu(redis);
  if (done.failed > 0) throw new Error(`${r.server.id}: ${done.failed} of ${count} in-process requests were not 2xx`);
  close(r, done.cpu);
  r.last = { cpu: done.cpu, count, redis: (r1 - r0) * 1e6 };
}

interface Compared {
  setup: Setup;
  /** Process id in logs and results: the set-up's name, or `control`. */
  id: string;
  label: string;
}

interface Interval {
  mean: number;
  low: number;
  high: number;
}

interface Row {
  /** In-process ratio, app + Redis CPU. */
  r: Interval;
  /** Implied requests/s ratio from the app's and Redis's CPU (the one a target is read against), and the app's alone. */
  ratio: Interval;
  appRatio: Interval;
  addedUs: number;
}

export interface InProcessResult {
  markdown: string;
  json: unknown;
  ok: boolean;
}

/** The implied requests/s ratio of an in-process ratio r, with HTTP costing k times the in-process work. */
const implied = (r: number, k: number): number => 1 / (1 + (r - 1) / k);

const fmt = (x: number): string => x.toFixed(3);

export async function runInProcess(
  suiteFile: string,
  suite: Suite,
  flags: Flags,
  redisUrl: string,
  command: string,
  targets: ThroughputTarget[],
): Promise<InProcessResult> {
  const all = suite.setups ?? [];
  const bare = all.find((s) => s.role === 'bare');
  if (!bare) throw new Error(`suite ${suite.name} has no bare set-up`);
  const compared: Compared[] = [
    { setup: bare, id: 'control', label: 'A/A control: a second bare Express' },
    ...all
      .filter((s) => s.role !== 'bare' && (!flags.only || flags.only.includes(s.name)))
      .map((s) => ({ setup: s, id: s.name, label: s.label })),
  ];
  concurrency = flags.connections;
  const perGeneration = flags.generation || flags.rounds;
  const generations = Math.max(1, Math.round(flags.rounds / perGeneration));
  const redis = new Redis(redisUrl);
  const ratios = new Map<string, number[][]>(compared.map((c) => [c.id, []]));
  const appRatios = new Map<string, number[][]>(compared.map((c) => [c.id, []]));
  const perRequest = new Map<string, number[]>(compared.map((c) => [c.id, []]));
  const kFactors: number[] = [];
  const bareInProcess: number[] = [];
  const bareHttp: number[] = [];
  try {
    for (let g = 0; g < generations; g++) {
      const runners: Runner[] = [];
      try {
        for (const { setup, id } of [{ setup: bare, id: 'bare' }, ...compared]) {
          const server = await startServer(suiteFile, setup, redisUrl, id);
          const path = setup.path ?? suite.path ?? '/ping';
          runners.push({ server, path, headers: {}, perRequest: [], appPerRequest: [] });
          pin(server);
          const port = server.port;
          const base = `http://127.0.0.1:${port}`;
          const runner = runners.at(-1) as Runner;
          if (setup.prepare) {
            runner.headers = await setup.prepare({ base, redisUrl, redis, setup, port, responses: 0, slack: 0 });
          }
        }
        for (const r of runners) for (let i = 0; i < WARMUP_BLOCKS; i++) await block(r, BLOCK);
        for (let round = 0; round < perGeneration; round++) {
          // The order rotates, so no set-up always follows the same one.
          for (let i = 0; i < runners.length; i++) {
            const r = runners[(i + round) % runners.length] as Runner;
            await measured(r, BLOCK, redis);
          }
        }
        // Closes each process's last block.
        for (const r of runners) close(r, await childCpu(r.server));
        const [bareRunner, ...rest] = runners as [Runner, ...Runner[]];
        for (const r of rest) {
          ratios.get(r.server.id)?.push(r.perRequest.map((c, i) => c / (bareRunner.perRequest[i] as number)));
          appRatios.get(r.server.id)?.push(r.appPerRequest.map((c, i) => c / (bareRunner.appPerRequest[i] as number)));
          perRequest.get(r.server.id)?.push(median(r.perRequest));
        }
        // k: bare Express's CPU per request over HTTP (autocannon, the suite's connections) beside its own
        // in-process blocks, three times each in turn.
        const http: number[] = [];
        const inProcess: number[] = [];
        for (let i = 0; i < 3; i++) {
          const c0 = await childCpu(bareRunner.server);
          const result = await load(bareRunner.server.port, bareRunner.path, flags.duration, flags.connections);
          const c1 = await childCpu(bareRunner.server);
          if (result.non2xx || result.errors) throw new Error('bare Express answered errors over HTTP');
          http.push((c1 - c0) / result.requests.total);
          const n = Math.max(BLOCK, Math.round(result.requests.total / 4));
          const b0 = await childCpu(bareRunner.server);
          const done = await block(bareRunner, n);
          const b1 = await childCpu(bareRunner.server);
          if (done.failed > 0) throw new Error('bare Express answered errors in process');
          inProcess.push((b1 - b0) / n);
        }
        const k = median(http) / median(inProcess);
        kFactors.push(k);
        bareHttp.push(median(http));
        bareInProcess.push(median(bareRunner.perRequest));
        console.log(
          `  generation ${g + 1}/${generations}: bare ${median(bareRunner.perRequest).toFixed(1)} µs/request in process, ${median(http).toFixed(1)} over HTTP (k ${k.toFixed(2)}); ${rest.map((r) => `${r.server.id} ${median(r.perRequest).toFixed(1)}`).join(', ')}`,
        );
      } finally {
        for (const r of runners) r.server.child.kill('SIGTERM');
      }
    }
  } finally {
    redis.disconnect();
  }

  const stored: StoredInProcess = {
    flags,
    block: BLOCK,
    kFactors,
    bareInProcessUs: bareInProcess,
    bareHttpUs: bareHttp,
    setups: compared.map(({ id, label }) => ({
      id,
      label,
      ratios: ratios.get(id) ?? [],
      appRatios: appRatios.get(id) ?? [],
      perRequestUs: perRequest.get(id) ?? [],
    })),
  };
  const { markdown, summary } = inProcessReport(stored, targets, command);
  return { markdown, json: { ...stored, summary }, ok: true };
}

/** What a run stores in its results JSON: enough to compute its section and summary rows again. */
export interface StoredInProcess {
  flags: Flags;
  block: number;
  /** Per generation: k, and bare Express's CPU µs per request in process and over HTTP. */
  kFactors: number[];
  bareInProcessUs: number[];
  bareHttpUs: number[];
  setups: Array<{
    id: string;
    label: string;
    /** Per generation, per round: the set-up's cost over bare Express's, app + Redis CPU and app CPU alone. */
    ratios: number[][];
    appRatios: number[][];
    perRequestUs: number[];
  }>;
}

/**
 * A run's section and summary rows. A row's figure is the implied ratio from the app's and Redis's CPU; for a set-up
 * that calls Redis, the reading from the app's CPU alone is shown too, and a target holds only when both readings
 * clear it (fails when both are under it). On this 2-core machine Redis shares the cores with the app and the load
 * generator: counting its CPU as the app's overstates what it takes from the app's requests/s (over HTTP, the
 * Redis set-ups' requests/s ratios sat above their app + Redis CPU ratios), and leaving it out understates it.
 */
export function inProcessReport(
  stored: StoredInProcess,
  targets: ThroughputTarget[],
  command: string,
): { markdown: string; summary: SummaryRow[] } {
  const { kFactors, flags } = stored;
  const generations = kFactors.length;
  const perGeneration = flags.generation || flags.rounds;
  const k = median(kFactors);
  const kLow = Math.min(...kFactors);
  const kHigh = Math.max(...kFactors);
  const c = median(stored.bareInProcessUs);
  const impliedInterval = (r: Interval): Interval => ({
    mean: implied(r.mean, k),
    low: implied(r.high, k),
    high: implied(r.low, k),
  });
  const rows = new Map<string, Row>();
  for (const x of stored.setups) {
    const r = clusteredRatioInterval(x.ratios);
    const app = clusteredRatioInterval(x.appRatios);
    rows.set(x.id, { r, ratio: impliedInterval(r), appRatio: impliedInterval(app), addedUs: (r.mean - 1) * c });
  }
  const control = rows.get('control')?.ratio as Interval;
  const decides = generations >= 3 && control.low >= 1 - CONTROL_TOLERANCE && control.high <= 1 + CONTROL_TOLERANCE;
  const span = (x: Interval): string => `${fmt(x.mean)} (${fmt(x.low)}–${fmt(x.high)})`;
  // Redis's CPU made a difference to this set-up's reading (more than 0.5 point).
  const usesRedis = (row: Row): boolean => Math.abs(row.appRatio.mean - row.ratio.mean) > 0.005;
  const summary: SummaryRow[] = [];
  for (const t of targets) {
    const row = rows.get(t.setup);
    if (!row || (t.minRatio === undefined && t.reported === undefined)) continue;
    const readings = usesRedis(row) ? [row.ratio, row.appRatio] : [row.ratio];
    const min = t.minRatio;
    const verdict =
      min === undefined || !decides
        ? undefined
        : readings.every((x) => x.low >= min)
          ? true
          : readings.every((x) => x.high < min)
            ? false
            : undefined;
    const appOnly = usesRedis(row) ? `; from the app's CPU alone ${span(row.appRatio)}` : '';
    // In process, a request's code and data stay in the CPU's caches; over HTTP the kernel and the parser evict
    // them between requests, so a middleware can cost more there (see "How the harness works"). A reading under
    // the target is a failure; one above it is a bound, not a decision by itself.
    const reading =
      min === undefined
        ? ''
        : verdict === true
          ? ': above the target in process, an upper bound (no cache pressure), not a decision alone'
          : verdict === false
            ? ''
            : decides
              ? ': undecided'
              : ': control too wide, undecided';
    summary.push({
      feature: `${t.feature}, in process (implied req/s)`,
      target: min !== undefined ? `≥ ${min.toFixed(2)} × bare` : (t.reported ?? '–'),
      figure: `${fmt(row.ratio.mean)} × (95 % ${fmt(row.ratio.low)}–${fmt(row.ratio.high)}, ${generations} generations; +${row.addedUs.toFixed(2)} µs of CPU per request${appOnly}; A/A control ${fmt(control.mean)} × (${fmt(control.low)}–${fmt(control.high)})${reading})`,
      ...(verdict === false ? { holds: false } : {}),
    });
  }
  const lines = [
    `Command: \`${command}\` (${generations} generations of fresh server processes, each ${perGeneration} rounds of ${stored.block} requests per set-up, ${flags.connections} in flight, taking turns in rotating order, all server processes on one CPU; k from ${flags.duration} s autocannon runs with ${flags.connections} connections).`,
    '',
    `Bare Express: ${c.toFixed(1)} µs of CPU per request in process, ${median(stored.bareHttpUs).toFixed(1)} over HTTP at saturation: k = ${k.toFixed(2)} (generations ${kLow.toFixed(2)}–${kHigh.toFixed(2)}). The implied ratio is 1 / (1 + (r − 1) / k); its interval is r's, over the generations, at the median k; "at k low / high" shows how far the lowest and highest k of a generation move it. See "How the harness works", \`--in-process\`.`,
    '',
    "| set-up | in-process CPU ratio r, app + Redis (95 %) | CPU µs added per request | implied requests/s ratio (95 %) | at k low / high | implied from the app's CPU alone |",
    '|---|---|---|---|---|---|',
  ];
  for (const x of stored.setups) {
    const { r, ratio, appRatio, addedUs } = rows.get(x.id) as Row;
    lines.push(
      `| ${x.label} | ${span(r)} | ${addedUs.toFixed(2)} | ${span(ratio)} | ${fmt(implied(r.mean, kLow))} / ${fmt(implied(r.mean, kHigh))} | ${span(appRatio)} |`,
    );
  }
  lines.push(
    '',
    decides
      ? `The A/A control lies within 1 ± ${CONTROL_TOLERANCE}: a set-up whose interval is under its target fails it (for a set-up that calls Redis, both readings must be under it). One whose interval is above its target is above it in process only: without the network, a request's code and data stay in the CPU's caches, so in-process figures bound a middleware's cost from below, and an HTTP run has the last word.`
      : `The A/A control does not lie within 1 ± ${CONTROL_TOLERANCE} (or fewer than 3 generations ran): this run decides no target.`,
  );
  return { markdown: lines.join('\n'), summary };
}
