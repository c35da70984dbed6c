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
// flushes, and deferred garbage collection, included), plus the Redis server's CPU during the block (work a timer
// sends to Redis between blocks lands in another process's block: usage flushes, a few a second, are the case). A set-up's cost
// over bare Express's in the same round, averaged (geometric mean) over the rounds, is its in-process ratio r.
//
// From r to requests/s. Over HTTP a request costs bare Express k times its in-process CPU (parsing, sockets, system
// calls): k = its CPU per request under autocannon over its in-process cost, measured in every generation. A
// middleware's added work is the same in both, and at saturation a one-threaded server's requests/s is the inverse
// of its CPU per request, so the implied ratio to bare Express is 1 / (1 + (r - 1) / k), per generation. Left out: what a set-up adds
// to the network's and the load generator's work (a few more header bytes), and time spent waiting on Redis rather
// than computing (hidden at saturation, where other requests are ready to run).
//
// Each generation starts fresh processes (two processes of the same code can differ by a few percent for as long as
// they live) and runs `--generation` rounds; the intervals are over the generations' implied ratios (so k's spread
// is inside them). An A/A control
// (a second copy of bare Express, measured like any set-up) shows the method's bias and resolution in every run.

import { MODE_SUFFIX } from './summary';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import {
  ask,
  childCpu,
  clusteredRatioInterval,
  geometricMean,
  load,
  median,
  pathOf,
  ratioInterval,
  type Server,
  setupContext,
  startServer,
  stopServers,
  verify,
} from './harness';
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
/** The closing line of a run (either mode) whose control is too wide to decide anything. */
const UNDECIDED = `The A/A control does not lie within 1 ± ${CONTROL_TOLERANCE} (or fewer than 3 generations ran): this run decides no target.`;

// Every server process runs on the same CPU (the last one). Blocks run one at a time, so they never compete for it,
// and no set-up keeps a faster or busier core for its whole life: with the processes free to sit on either core,
// the A/A control's interval over six generations was ±4.5 %; pinned, ±1.5 % (2026-11-27, 2 vCPUs).
const CPU = String(cpus().length - 1);

/** --http-blocks: the load generator's CPU, the one the servers do not use (on one CPU, it shares the servers'). */
const LOAD_CPU = String(Math.max(0, cpus().length - 2));

function pin(child: ChildProcess, cpu = CPU): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpu, String(child.pid)], { stdio: 'ignore' });
}

/** --http-blocks: the load generator (lib/block-load.ts), started once per run and pinned to LOAD_CPU. */
interface LoadGenerator {
  id: string;
  child: ChildProcess;
}

function startLoadGenerator(): Promise<LoadGenerator> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'block-load.ts')], {
      cwd: join(__dirname, '..', '..'),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('the load generator did not start'));
    }, 60_000);
    child.once('message', () => {
      clearTimeout(timer);
      pin(child, LOAD_CPU);
      resolve({ id: 'load generator', child });
    });
    child.once('exit', (code) => reject(new Error(`the load generator exited with ${code}`)));
  });
}

/** The Redis server's CPU time so far (µs, user + system) and key reads (keyspace hits + misses). */
async function redisStats(redis: Redis): Promise<{ cpu: number; reads: number }> {
  const info = String(await redis.call('INFO', 'cpu', 'stats'));
  const field = (name: string): number => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1] ?? Number.NaN);
  return {
    cpu: (field('used_cpu_user') + field('used_cpu_sys')) * 1e6,
    reads: field('keyspace_hits') + field('keyspace_misses'),
  };
}

interface Runner {
  server: Server;
  /** --http-blocks: the generator that sends this server its blocks over HTTP. */
  load?: LoadGenerator;
  path: string;
  headers: Record<string, string>;
  /** The process's CPU µs at the start of its previous block, that block's size, and Redis's CPU µs during it. */
  last?: { cpu: number; count: number; redis: number };
  /** CPU µs per request of this generation's blocks, by round: the app's and Redis's, and the app's alone. */
  perRequest: number[];
  appPerRequest: number[];
  /** Requests sent and Redis key reads during this process's measured blocks, this generation. */
  requests: number;
  keyReads: number;
  /** Requests the process answered in every block, unmeasured ones included: its set-up's check() counts these. */
  answered: number;
}

/**
 * Requests in flight in a block: as many as the HTTP runs' connections (50), so that a middleware that sends one
 * Redis command for the requests of one event-loop turn sees turns as full as under autocannon. With 16, the Redis
 * rate limiter measured about a point under what 50 gives (its batches of decisions were smaller).
 */
let concurrency = 50;

async function block(r: Runner, count: number): Promise<{ cpu: number; failed: number }> {
  r.answered += count;
  if (r.load === undefined) {
    return ask(r.server, { block: { count, path: r.path, headers: r.headers, concurrency } }, 'blockDone', 120_000);
  }
  // Over HTTP the server's CPU is read just before its block; the IPC exchange costs every set-up the same.
  const cpu = await childCpu(r.server);
  const { failed } = await ask<{ failed: number }>(
    r.load,
    { block: { key: r.server.id, count } },
    'blockDone',
    120_000,
  );
  return { cpu, failed };
}

/** --http-blocks: opens the generator's keep-alive connections to a runner's server. */
async function openConnections(r: Runner, load: LoadGenerator): Promise<void> {
  const spec = { key: r.server.id, port: r.server.port, path: r.path, headers: r.headers, connections: concurrency };
  const { error } = await ask<{ error?: string }>(load, { open: spec }, 'opened', 30_000);
  if (error) throw new Error(`${r.server.id}: the load generator could not connect: ${error}`);
  r.load = load;
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
async function measured(r: Runner, count: number, redis: Redis, warm: number): Promise<void> {
  if (warm > 0) {
    // An unmeasured lead-in: the process's code and data come back into the caches that the other processes'
    // blocks evicted, as they are in a server that never stops serving. The previous measured block is charged
    // up to here, so the lead-in's cost is charged to no block.
    const lead = await block(r, warm);
    if (lead.failed > 0) throw new Error(`${r.server.id}: ${lead.failed} of ${warm} lead-in requests were not 2xx`);
    close(r, lead.cpu);
    r.last = undefined;
  }
  const before = await redisStats(redis);
  const done = await block(r, count);
  const after = await redisStats(redis);
  if (done.failed > 0) throw new Error(`${r.server.id}: ${done.failed} of ${count} in-process requests were not 2xx`);
  close(r, done.cpu);
  r.last = { cpu: done.cpu, count, redis: after.cpu - before.cpu };
  r.requests += count;
  r.keyReads += after.reads - before.reads;
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
  /** Implied requests/s ratio from the app's and Redis's CPU, and from the app's alone (a Redis set-up needs both). */
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
const fmt1 = (x: number): string => x.toFixed(1);

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
  const size = flags.block ?? BLOCK;
  const lead = flags.lead ?? 0;
  const perGeneration = Math.min(flags.generation || flags.rounds, flags.rounds);
  const generations = Math.ceil(flags.rounds / perGeneration);
  const redis = new Redis(redisUrl);
  const overHttp = flags.httpBlocks === true;
  const ratios = new Map<string, number[][]>(compared.map((c) => [c.id, []]));
  const appRatios = new Map<string, number[][]>(compared.map((c) => [c.id, []]));
  const perRequest = new Map<string, number[]>(compared.map((c) => [c.id, []]));
  const bareInProcess: number[] = [];
  const bareHttp: number[] = [];
  const problems: string[] = [];
  let generator: LoadGenerator | undefined;
  try {
    if (overHttp) generator = await startLoadGenerator();
    for (let g = 0; g < generations; g++) {
      const runners: Runner[] = [];
      const all = [{ setup: bare, id: 'bare' }, ...compared];
      // The processes start in an order rotated each generation (bare Express first in the first one only): over
      // HTTP, a copy of bare Express started right after bare Express read 1-2 % costlier in two runs of six
      // generations (2026-11-28), and whatever the first process gains must not always go to the reference.
      const startOrder = all.map((_, i) => all[(i + g) % all.length] as (typeof all)[number]);
      try {
        for (const { setup, id } of startOrder) {
          const server = await startServer(suiteFile, setup, redisUrl, id);
          const runner: Runner = {
            server,
            path: pathOf(setup, suite),
            headers: {},
            perRequest: [],
            appPerRequest: [],
            requests: 0,
            keyReads: 0,
            answered: 0,
          };
          runners.push(runner);
          pin(server.child);
          const port = server.port;
          if (setup.prepare) runner.headers = await setup.prepare(setupContext(setup, port, redisUrl, redis));
          if (generator) await openConnections(runner, generator);
        }
        // Back to the canonical order: bare Express first, then the set-ups as the suite lists them.
        runners.sort((a, b) => all.findIndex((x) => x.id === a.server.id) - all.findIndex((x) => x.id === b.server.id));
        for (const r of runners) for (let i = 0; i < WARMUP_BLOCKS; i++) await block(r, size);
        const rounds = Math.min(perGeneration, flags.rounds - g * perGeneration);
        for (let round = 0; round < rounds; round++) {
          // The order rotates, so no set-up always follows the same one.
          for (let i = 0; i < runners.length; i++) {
            const r = runners[(i + round) % runners.length] as Runner;
            await measured(r, size, redis, lead);
          }
        }
        // Closes each process's last block.
        for (const r of runners) close(r, await childCpu(r.server));
        // Each set-up's own proof that it did its job, as the sustained runs ask for (its counters agree with the
        // requests it answered, its limiter refuses past its limit...): a set-up that silently skipped its work
        // would read cheap. After the last block is charged, so this costs no set-up anything.
        for (const r of runners) {
          const { setup, port, id } = r.server;
          // Copies of bare Express (the A/A control) have nothing of their own to prove, as in the sustained runs.
          if (id !== setup.name) continue;
          const where = `${id}, generation ${g + 1}`;
          // A limiter's verification route keeps its count in Redis from one generation to the next (same keys, same
          // run): it is asked once, in the last generation, as the sustained runs ask it once at the end.
          if (g === generations - 1) {
            const verified = await verify(r.server);
            if (verified) problems.push(`${verified} (generation ${g + 1})`);
          }
          if (!setup.check) continue;
          // Every block's responses are awaited, so none is cut short; the slack allows for requests a set-up's
          // prepare() made (a login) where its check counts them.
          const result = await setup.check(setupContext(setup, port, redisUrl, redis, r.answered, concurrency));
          for (const p of result.problems ?? []) problems.push(`${where}: ${p}`);
        }
        const [bareRunner, ...rest] = runners as [Runner, ...Runner[]];
        for (const r of rest) {
          ratios.get(r.server.id)?.push(r.perRequest.map((c, i) => c / (bareRunner.perRequest[i] as number)));
          appRatios.get(r.server.id)?.push(r.appPerRequest.map((c, i) => c / (bareRunner.appPerRequest[i] as number)));
          perRequest.get(r.server.id)?.push(median(r.perRequest));
          // A Redis set-up must have read Redis for its requests (as the HTTP runs check): one that silently
          // skipped its store would look cheap.
          if (r.server.setup.usesRedis && r.keyReads < 0.95 * r.requests) {
            problems.push(
              `${r.server.id}, generation ${g + 1}: ${r.keyReads} Redis key reads for ${r.requests} requests`,
            );
          }
        }
        bareInProcess.push(median(bareRunner.perRequest));
        if (overHttp) {
          // The blocks went over HTTP: their cost is the one a request has at saturation, k is 1 by definition.
          bareHttp.push(median(bareRunner.perRequest));
          console.log(
            `  generation ${g + 1}/${generations}: bare ${median(bareRunner.perRequest).toFixed(1)} µs/request over HTTP; ${rest.map((r) => `${r.server.id} ${median(r.perRequest).toFixed(1)}`).join(', ')}`,
          );
          continue;
        }
        // k: bare Express's CPU per request over HTTP (autocannon, the suite's connections), three runs, over its
        // in-process cost per request as charged in the rounds above (the cost the added work is measured against).
        const http: number[] = [];
        for (let i = 0; i < 3; i++) {
          const c0 = await childCpu(bareRunner.server);
          const result = await load(bareRunner.server.port, bareRunner.path, flags.duration, flags.connections);
          const c1 = await childCpu(bareRunner.server);
          if (result.non2xx || result.errors) throw new Error('bare Express answered errors over HTTP');
          http.push((c1 - c0) / result.requests.total);
        }
        bareHttp.push(median(http));
        console.log(
          `  generation ${g + 1}/${generations}: bare ${median(bareRunner.perRequest).toFixed(1)} µs/request in process, ${median(http).toFixed(1)} over HTTP (k ${(median(http) / median(bareRunner.perRequest)).toFixed(2)}); ${rest.map((r) => `${r.server.id} ${median(r.perRequest).toFixed(1)}`).join(', ')}`,
        );
      } finally {
        await stopServers(runners.map((r) => r.server));
      }
    }
  } finally {
    redis.disconnect();
    if (generator) generator.child.kill('SIGTERM');
  }

  const stored: StoredInProcess = {
    flags,
    ...(overHttp ? { transport: 'http' as const } : {}),
    block: size,
    ...(lead > 0 ? { lead } : {}),
    rotated: true,
    bareInProcessUs: bareInProcess,
    bareHttpUs: bareHttp,
    setups: compared.map(({ id, label, setup }) => ({
      id,
      label,
      usesRedis: setup.usesRedis,
      ratios: ratios.get(id) ?? [],
      appRatios: appRatios.get(id) ?? [],
      perRequestUs: perRequest.get(id) ?? [],
    })),
    problems,
  };
  const { markdown, summary } = inProcessReport(stored, targets, command);
  return { markdown, json: { ...stored, summary }, ok: problems.length === 0 };
}

/** What a run stores in its results JSON: enough to compute its section and summary rows again. */
export interface StoredInProcess {
  flags: Flags;
  /** 'http': an --http-blocks run (blocks over keep-alive connections; k is 1). Absent: in process. */
  transport?: 'http';
  /** Unmeasured requests sent to a process right before each of its measured blocks (--lead); absent: none. */
  lead?: number;
  /** Whether the processes started in an order rotated each generation (absent: bare Express always first). */
  rotated?: boolean;
  block: number;
  /** Per generation: bare Express's CPU µs per request in process (as charged in the rounds) and over HTTP. */
  bareInProcessUs: number[];
  bareHttpUs: number[];
  setups: Array<{
    id: string;
    label: string;
    /** Whether every request of the set-up calls Redis (absent in runs stored before 2026-11-27 19:50 UTC). */
    usesRedis?: boolean;
    /** Per generation, per round: the set-up's cost over bare Express's, app + Redis CPU and app CPU alone. */
    ratios: number[][];
    appRatios: number[][];
    perRequestUs: number[];
  }>;
  problems?: string[];
}

/**
 * A run's section and summary rows. Each generation's in-process ratio r becomes an implied ratio with that
 * generation's k (bare Express over HTTP / in process); the interval is over the generations. For a set-up that
 * calls Redis, two readings: with Redis's CPU counted as the app's, and the app's CPU alone. On this 2-core machine
 * Redis shares the cores with the app and the load generator: counting its CPU as the app's overstates what it
 * takes from the app's requests/s (over HTTP, the Redis set-ups' requests/s ratios sat above their app + Redis CPU
 * ratios), and leaving it out understates it. A reading under the target fails it (for a Redis set-up, when both
 * are under). A reading above it is an upper bound only (see the closing line of the section), so it decides
 * nothing by itself.
 */
export function inProcessReport(
  stored: StoredInProcess,
  targets: ThroughputTarget[],
  command: string,
): { markdown: string; summary: SummaryRow[] } {
  const { flags } = stored;
  const overHttp = stored.transport === 'http';
  // Over HTTP the blocks' cost is already the cost over HTTP: k is 1 whatever was stored.
  const kOf = stored.bareHttpUs.map((http, g) => (overHttp ? 1 : http / (stored.bareInProcessUs[g] as number)));
  const generations = kOf.length;
  const perGeneration = Math.min(flags.generation || flags.rounds, flags.rounds);
  const impliedOver = (groups: number[][]): Interval =>
    ratioInterval(groups.map((g, i) => implied(geometricMean(g), kOf[i] as number)));
  const rows = new Map<string, Row & { usesRedis: boolean }>();
  for (const x of stored.setups) {
    const r = clusteredRatioInterval(x.ratios);
    const ratio = impliedOver(x.ratios);
    const appRatio = impliedOver(x.appRatios);
    const added = x.ratios.map((g, i) => (geometricMean(g) - 1) * (stored.bareInProcessUs[i] as number));
    rows.set(x.id, {
      r,
      ratio,
      appRatio,
      addedUs: added.reduce((a, b) => a + b, 0) / added.length,
      // Runs stored before the flag: Redis made a difference of more than half a point.
      usesRedis: x.usesRedis ?? Math.abs(appRatio.mean - ratio.mean) > 0.005,
    });
  }
  const control = rows.get('control')?.ratio as Interval;
  const decides = generations >= 3 && control.low >= 1 - CONTROL_TOLERANCE && control.high <= 1 + CONTROL_TOLERANCE;
  const span = (x: Interval): string => `${fmt(x.mean)} (${fmt(x.low)}–${fmt(x.high)})`;
  const summary: SummaryRow[] = [];
  for (const t of targets) {
    const row = rows.get(t.setup);
    if (!row || (t.minRatio === undefined && t.reported === undefined)) continue;
    const readings = row.usesRedis ? [row.ratio, row.appRatio] : [row.ratio];
    const min = t.minRatio;
    // A Redis set-up holds (over HTTP) or reads as above (in process) only when both readings clear the target,
    // and fails only when both are under it.
    const under = min !== undefined && decides && readings.every((x) => x.high < min);
    const above = min !== undefined && decides && readings.every((x) => x.low >= min);
    const reading =
      min === undefined || under
        ? ''
        : above
          ? overHttp
            ? ''
            : ': above the target in process, an upper bound (no cache pressure), not a decision alone'
          : decides
            ? ': undecided'
            : ': control too wide, undecided';
    const appOnly = row.usesRedis ? `; from the app's CPU alone ${span(row.appRatio)}` : '';
    summary.push({
      feature: `${t.feature}${overHttp ? MODE_SUFFIX.httpBlocks : MODE_SUFFIX.inProcess}${flags.kitServer ? MODE_SUFFIX.kitServer : ''}`,
      target: min !== undefined ? `≥ ${min.toFixed(2)} × bare` : (t.reported ?? '–'),
      figure: `${fmt(row.ratio.mean)} × (95 % ${fmt(row.ratio.low)}–${fmt(row.ratio.high)}, ${generations} generations; ${row.addedUs < 0 ? '-' : '+'}${Math.abs(row.addedUs).toFixed(2)} µs of CPU per request${appOnly}; A/A control ${fmt(control.mean)} × (${fmt(control.low)}–${fmt(control.high)})${reading})`,
      ...(under ? { holds: false } : overHttp && above ? { holds: true } : {}),
    });
  }
  const lines = overHttp
    ? httpHeader(stored, command, generations, perGeneration)
    : [
        `Command: \`${command}\` (${generations} generations of fresh server processes, each up to ${perGeneration} rounds of ${stored.block} requests per set-up, ${flags.connections} in flight, taking turns in rotating order, all server processes on one CPU; k from ${flags.duration} s autocannon runs with ${flags.connections} connections).`,
        '',
        `Bare Express: ${fmt1(median(stored.bareInProcessUs))} µs of CPU per request in process, ${fmt1(median(stored.bareHttpUs))} over HTTP at saturation: k = ${median(kOf).toFixed(2)} (generations ${Math.min(...kOf).toFixed(2)}–${Math.max(...kOf).toFixed(2)}). Each generation's implied ratio is 1 / (1 + (r − 1) / k) with its own k; the intervals are over the generations. See "How the harness works", \`--in-process\`.`,
        '',
        "| set-up | in-process CPU ratio r, app + Redis (95 %) | CPU µs added per request | implied requests/s ratio (95 %) | implied from the app's CPU alone |",
        '|---|---|---|---|---|',
      ];
  for (const x of stored.setups) {
    const { r, ratio, appRatio, addedUs } = rows.get(x.id) as Row;
    lines.push(`| ${x.label} | ${span(r)} | ${addedUs.toFixed(2)} | ${span(ratio)} | ${span(appRatio)} |`);
  }
  lines.push(
    '',
    overHttp
      ? httpVerdict(decides)
      : decides
        ? `The A/A control lies within 1 ± ${CONTROL_TOLERANCE}. A set-up whose interval lies under its target fails it (a Redis set-up, when both readings do). Above its target, a figure is an upper bound only: without the network a request's code and data stay in the CPU's caches, so for a set-up that does not call Redis this mode finds the least a middleware costs, and an HTTP run has the last word.`
        : UNDECIDED,
  );
  if (stored.problems?.length) lines.push('', `Sanity check FAILED: ${stored.problems.join('; ')}.`);
  return { markdown: lines.join('\n'), summary };
}

/** The opening lines of an --http-blocks run's section: how it ran, and its table's head. */
function httpHeader(stored: StoredInProcess, command: string, generations: number, perGeneration: number): string[] {
  const { flags } = stored;
  return [
    `Command: \`${command}\` (${generations} generations of fresh server processes, each up to ${perGeneration} rounds of ${stored.block} requests per set-up sent over ${flags.connections} keep-alive connections by a load generator pinned to the other CPU, one request in flight per connection${stored.lead ? `, each measured block right after ${stored.lead} unmeasured requests to the same server (warm caches)` : ''}; the set-ups take turns in rotating order, all server processes on one CPU, ${stored.rotated ? 'started in an order rotated each generation' : 'bare Express started first in every generation'}${flags.kitServer ? "; every server, bare Express's too, made by the kit's createServer(app) instead of app.listen()" : ''}).`,
    '',
    `Bare Express: ${fmt1(median(stored.bareHttpUs))} µs of server CPU per request over HTTP (user + system: the kernel's share of the sockets is in it). A server's CPU per request is the inverse of the requests/s it reaches at saturation, so each ratio below is bare Express's CPU per request over the set-up's, the geometric mean of the rounds of a generation, with the interval over the generations. See "How the harness works", \`--http-blocks\`.`,
    '',
    "| set-up | CPU ratio to bare, app + Redis (95 %) | CPU µs added per request | requests/s ratio, counting Redis's CPU as the app's (95 %) | requests/s ratio from the app's CPU alone (95 %) |",
    '|---|---|---|---|---|',
  ];
}

/** The closing line of an --http-blocks run's section: what the run decides, and by which rule. */
function httpVerdict(decides: boolean): string {
  if (!decides) return UNDECIDED;
  return [
    `The A/A control lies within 1 ± ${CONTROL_TOLERANCE}, so the run decides: a set-up holds its target when its whole interval lies above it, fails when the whole interval lies under, and is undecided otherwise.`,
    "A set-up that calls Redis has two readings, one that charges Redis's CPU to the app and one from the app's CPU alone; it holds only when both clear the target and fails only when both are under it.",
    'Work a process does per second rather than per request (the usage flush) is overstated here, since each server serves only its share of the blocks (see the Observability section).',
  ].join(' ');
}
