// The benchmark harness: `npm run bench` runs every suite (but the probes of NAMED_ONLY), `npm run bench -- rate-limit`
// one of them.
// It starts a private redis-server, one child process per set-up, drives load with autocannon from this process,
// interleaves the set-ups round by round (rotating the order), checks each set-up really did its job and served
// no errors, then writes bench/results/<suite>-<time>.json and regenerates the suite's table in
// docs/performance.md, then rebuilds the summary table (every feature's figure next to its target) from the latest
// results JSON of every suite. Flags: --rounds N (default 5), --duration S per run (default 3), --connections C
// (default 50), --warmup S (default 1), --settle S (unmeasured load before each timed run; default 0, 0.5 with
// --paired; these two apply to the sustained autocannon runs only, and the block modes below refuse them: see
// lib/flags.ts), --only a,b (a subset of the suite's set-ups, for quick looks), --paired
// (each set-up with a ratio target against bare Express run for run: see pairedReport), --generation N (paired
// mode: fresh server processes every N rounds; default 5, 0 never), --in-process (each set-up's requests go through
// its app without the network, in blocks of milliseconds taking turns, and the implied requests/s ratio to bare
// Express is reported: see lib/in-process-run.ts; --rounds then counts blocks, default 1,800, and --generation
// blocks per process generation, default 300), --http-blocks (the same, with each block's requests sent over real
// keep-alive connections by a load generator on the other CPU, lib/block-load.ts: the server's CPU per request over
// HTTP is compared directly, and this is the mode whose runs decide the ratio targets), --block N (requests per
// block in those two modes, default 200), --lead N (unmeasured requests sent to a server right before each of its
// measured blocks, so that the block meets warm caches; default 0), --kit-server (--http-blocks only: every server,
// bare Express's too, is the kit's createServer(app) rather than app.listen(); stored as <suite>-http-blocks-kit-server),
// --no-build
// (skip `npm run build`: the suites load the compiled package, see lib/kit.ts, and the harness builds it first so
// that what is measured is the code as it stands). A suite may
// declare its own defaults (`defaults`) so that `npm run bench` stays within its time budget; flags given on the
// command line win.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { startRedis } from '../test/support/redis-server';
import { parseFlags } from './lib/flags';
import { inProcessReport, runInProcess, type StoredInProcess } from './lib/in-process-run';
import {
  childCpu,
  clusteredRatioInterval,
  type LoadResult,
  load,
  median,
  pathOf,
  ratioInterval,
  type Server,
  setupContext,
  startServer,
  stopServers,
  verify,
} from './lib/harness';
import { MODE_SUFFIX, NAMED_ONLY, namedOnly, RUN_SUFFIX, type SummaryLine, supersede } from './lib/summary';
import type { CheckResult, Flags, Setup, SetupContext, Suite, SummaryRow, ThroughputTarget } from './lib/types';

const root = join(__dirname, '..');
const suitesDir = join(__dirname, 'suites');

// 5 rounds of 3 s: enough for steady medians of per-round ratios, and `npm run bench` stays under 15 minutes.
const DEFAULT_FLAGS: Flags = { rounds: 5, duration: 3, connections: 50, warmup: 1 };
/** Default of --settle in paired mode (seconds of unmeasured load before each timed run). */
const PAIRED_SETTLE_S = 0.5;
/** Default of --generation in paired mode: rounds after which every server process is replaced by a fresh one. */
const PAIRED_GENERATION_ROUNDS = 5;
/** In-process mode (--in-process): rounds of one block per set-up, in generations of this many (lib/in-process-run.ts). */
const IN_PROCESS_ROUNDS = 1800;
const IN_PROCESS_GENERATION_ROUNDS = 300;

/**
 * Defaults for suites that declare none of their own, chosen so that `npm run bench` stays within 15 minutes. A
 * suite's own `defaults` win, and flags given on the command line win over both.
 */
const SUITE_DEFAULTS: Record<string, Partial<Flags>> = {
  // Takes the least disturbed of its rounds; three are enough for that (it never runs fewer).
  'rate-limit-cpu': { rounds: 3 },
};

/** CPU time (µs) redis-server has used so far. */
async function redisCpu(redis: Redis): Promise<number> {
  const text = String(await redis.info('cpu'));
  const user = Number(/used_cpu_user:([\d.]+)/.exec(text)?.[1] ?? 0);
  const sys = Number(/used_cpu_sys:([\d.]+)/.exec(text)?.[1] ?? 0);
  return (user + sys) * 1e6;
}

interface Run {
  setup: string;
  round: number;
  requests: number;
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  redisCommands: number;
  scriptCalls: number;
  /** Keys looked up for reading (see keyReads()). */
  keyReads: number;
  /** CPU µs per request in the app process and in redis-server. */
  appCpuUs: number;
  redisCpuUs: number;
  /** Paired mode: which set of server processes ran it (see --generation); absent in runs stored before. */
  generation?: number;
}

/**
 * Keys the server looked up for reading (INFO stats: keyspace hits + misses), however the reads were grouped: a
 * batched read (one MGET or one script for the requests of a turn) still looks up each request's keys.
 */
async function keyReads(redis: Redis): Promise<number> {
  const text = String(await redis.info('stats'));
  const hits = Number(/keyspace_hits:(\d+)/.exec(text)?.[1] ?? 0);
  const misses = Number(/keyspace_misses:(\d+)/.exec(text)?.[1] ?? 0);
  return hits + misses;
}

/** Commands the server ran (including those run inside scripts) and script calls (EVAL/EVALSHA: round trips). */
async function commandCount(redis: Redis): Promise<{ all: number; scripts: number }> {
  const text = String(await redis.info('commandstats'));
  let all = 0;
  let scripts = 0;
  for (const m of text.matchAll(/^cmdstat_([a-z_|]+):calls=(\d+)/gm)) {
    all += Number(m[2]);
    if (m[1] === 'evalsha' || m[1] === 'eval') scripts += Number(m[2]);
  }
  return { all, scripts };
}

function machine(): string {
  const cpus = os.cpus();
  let redisVersion = '';
  try {
    redisVersion = execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).match(/v=(\S+)/)?.[1] ?? '';
  } catch {}
  return `${cpus.length} × ${cpus[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GB, ${os.type()} ${os.release()}, Node ${process.version}, Redis ${redisVersion}`;
}

function versions(): string {
  const v = (name: string) => {
    try {
      return JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version as string;
    } catch {
      return '?';
    }
  };
  return [
    'express',
    'ioredis',
    'autocannon',
    'rate-limiter-flexible',
    'express-rate-limit',
    'rate-limit-redis',
    'express-session',
    'connect-redis',
    'redis',
    'apicache',
    'prom-client',
    'bullmq',
    'redis-semaphore',
    'redlock',
  ]
    .map((n) => `${n} ${v(n)}`)
    .join(', ');
}

function writeDocs(suite: string, markdown: string): void {
  const file = join(root, 'docs', 'performance.md');
  mkdirSync(join(root, 'docs'), { recursive: true });
  let text = existsSync(file)
    ? readFileSync(file, 'utf8')
    : '# Performance\n\nFigures measured with `npm run bench` (see bench/). Ratios taken within one interleaved run are what count; absolute numbers drift between runs on shared machines.\n';
  const start = `<!-- bench:${suite}:start -->`;
  const end = `<!-- bench:${suite}:end -->`;
  const block = `${start}\n${markdown.trim()}\n${end}`;
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  text = i >= 0 && j > i ? text.slice(0, i) + block + text.slice(j + end.length) : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, text);
}

const fmtFigure = (x: number | undefined): string =>
  x === undefined ? '–' : Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2);

/**
 * Targets of suites that do not declare their own `targets` (written before the summary existed). A suite's own
 * `targets` win; this map only fills the gap so the summary shows every feature's target.
 */
const KNOWN_TARGETS: Record<string, ThroughputTarget[]> = {
  'rate-limit': [
    { feature: 'Rate limit, real Redis, 1 policy (vs bare Express)', setup: 'kit-redis-1', minRatio: 0.93 },
    { feature: 'Rate limit, real Redis, 3 policies (vs bare Express)', setup: 'kit-redis-3', minRatio: 0.9 },
    { feature: 'Rate limit, embedded store, 1 policy (vs bare Express)', setup: 'kit-memory-1', minRatio: 0.95 },
  ],
};

interface StatLike {
  name: string;
  role?: string;
  appCpuUs?: number;
  redisCpuUs?: number;
  ratios: Record<string, number>;
  ratioRange?: [number, number] | undefined;
  figures: Record<string, number>;
}

function throughputSummary(targets: ThroughputTarget[], stats: StatLike[]): SummaryRow[] {
  const rows: SummaryRow[] = [];
  for (const t of targets) {
    const s = stats.find((x) => x.name === t.setup);
    const bare = stats.find((x) => x.role === 'bare' || x.name === 'bare');
    // CPU per request (app + Redis) against bare's: what throughput would follow on a CPU-bound, unshared machine.
    const cpu =
      s?.appCpuUs !== undefined && bare?.appCpuUs !== undefined
        ? bare.appCpuUs / (s.appCpuUs + (s.redisCpuUs ?? 0))
        : undefined;
    if (t.minRatio !== undefined || t.reported !== undefined) {
      const ratio = s?.ratios.bare;
      rows.push({
        feature: t.feature,
        target: t.minRatio !== undefined ? `≥ ${t.minRatio.toFixed(2)} × bare` : (t.reported as string),
        figure:
          ratio === undefined
            ? 'not measured'
            : `${ratio.toFixed(2)} ×${s?.ratioRange ? ` (rounds ${s.ratioRange[0].toFixed(2)}–${s.ratioRange[1].toFixed(2)})` : ''}${cpu === undefined ? '' : `; by CPU per request ${cpu.toFixed(2)} ×`}`,
        ...(ratio === undefined || t.minRatio === undefined ? {} : { holds: ratio >= t.minRatio }),
      });
    }
    if (t.figure !== undefined && t.max !== undefined) {
      const value = s?.figures[t.figure];
      rows.push({
        feature: t.feature,
        target: `≤ ${t.max}${t.unit ? ` ${t.unit}` : ''}`,
        figure: value === undefined ? 'not measured' : `${fmtFigure(value)}${t.unit ? ` ${t.unit}` : ''}`,
        ...(value === undefined ? {} : { holds: value <= t.max }),
      });
    }
  }
  return rows;
}

/**
 * The features the summary table lists, in this order, with the suite whose results carry them. A suite that is
 * not here still shows up (after these) when its results JSON has `summary` rows.
 */
const SUMMARY_SUITES: Array<{ suite: string; what: string }> = [
  { suite: 'rate-limit', what: 'rate limit, 1 and 3 policies, embedded store' },
  { suite: 'session', what: 'sessions on Redis and embedded, untouched route, lookup/creation latency' },
  { suite: 'response-cache', what: 'response cache hit on Redis and with the hot layer' },
  { suite: 'full-stack', what: 'session + rate limit + cache hit + usage + metrics' },
  { suite: 'observability', what: 'usage + metrics cost' },
  { suite: 'locks', what: 'locks uncontended and contended' },
  { suite: 'queue', what: 'queue add, bulk add, process' },
  { suite: 'realtime', what: 'realtime fan-out' },
  { suite: 'semantic', what: 'semantic cache lookup p50/p99' },
  { suite: 'server', what: "Express served by the kit's createServer(app) vs app.listen()" },
];

interface StoredResult {
  suite: string;
  at?: string;
  command?: string;
  machine?: string;
  versions?: string;
  summary?: SummaryRow[];
  stats?: StatLike[];
  problems?: string[];
}

/** The newest results JSON of each suite in bench/results/ (file names sort by time within a suite). */
function latestResults(): Map<string, { file: string; data: StoredResult }> {
  const dir = join(__dirname, 'results');
  const out = new Map<string, { file: string; data: StoredResult }>();
  if (!existsSync(dir)) return out;
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()) {
    try {
      const data = JSON.parse(readFileSync(join(dir, file), 'utf8')) as StoredResult;
      if (typeof data.suite !== 'string') continue;
      const previous = out.get(data.suite);
      const stamp = (f: string) => f.slice(f.length - '2026-01-01T00-00-00-000Z.json'.length);
      if (!previous || stamp(file) >= stamp(previous.file)) out.set(data.suite, { file, data });
    } catch {
      // A half-written or foreign file: not a result.
    }
  }
  return out;
}

/** A suite's ratio and figure targets: its own, else the ones recorded here for it. */
const suiteTargets = (suite: Suite): ThroughputTarget[] => suite.targets ?? KNOWN_TARGETS[suite.name] ?? [];

/** The targets of the suite named `name` (none for a name that is no suite's, such as a paired run's). */
async function targetsOf(name: string): Promise<ThroughputTarget[]> {
  const file = join(suitesDir, `${name}.ts`);
  if (!existsSync(file)) return [];
  const { suite } = (await import(file)) as { suite?: Suite };
  return suite ? suiteTargets({ ...suite, name }) : [];
}

/** An in-process run's section and rows, computed again from what it stored; undefined for any other result. */
async function storedInProcessReport(name: string, data: StoredResult) {
  const suffix = /-(in-process|http-blocks(-kit-server)?)$/.exec(name)?.[0];
  if (!suffix || !Array.isArray((data as Partial<StoredInProcess>).setups)) return undefined;
  const base = name.slice(0, -suffix.length);
  return inProcessReport(data as StoredResult & StoredInProcess, await targetsOf(base), data.command ?? '');
}

/**
 * Summary rows of one stored result. A throughput result is recomputed from its stats with the suite's current
 * targets (so the table follows a change of target or of format); a custom one carries its own rows.
 */
async function rowsOf(name: string, data: StoredResult): Promise<SummaryRow[]> {
  const inProcess = await storedInProcessReport(name, data);
  if (inProcess) return inProcess.summary;
  if (Array.isArray(data.stats)) {
    // A paired run's name is no suite's: it keeps the rows it stored.
    const targets = await targetsOf(name);
    if (targets.length) return throughputSummary(targets, data.stats);
  }
  return Array.isArray(data.summary) ? data.summary : [];
}

/**
 * The summary rows docs/performance.md holds now, by suite (the name in backticks in the last column): a suite with
 * no results JSON here (a fresh clone that ran one suite) keeps the rows of its last recorded run, with their date.
 */
function recordedRows(): Map<string, string[]> {
  const file = join(root, 'docs', 'performance.md');
  const rows = new Map<string, string[]>();
  if (!existsSync(file)) return rows;
  const text = readFileSync(file, 'utf8');
  const i = text.indexOf('<!-- bench:summary:start -->');
  const j = text.indexOf('<!-- bench:summary:end -->');
  if (i < 0 || j < i) return rows;
  for (const line of text.slice(i, j).split('\n')) {
    const machine = /^Machines? and versions: (.*)\.$/.exec(line.trim());
    if (machine && machine[1] !== 'none yet') {
      // One machine is written bare, several as `(a); (b)`: back to the list of machines.
      const text = machine[1] as string;
      const list = text.startsWith('(') && text.endsWith(')') ? text.slice(1, -1).split('); (') : [text];
      rows.set('', list);
    }
    const m = /\| `([a-z0-9-]+)`[^|]*\|$/.exec(line.trim());
    if (!m || line.includes('not measured by the harness yet')) continue;
    const list = rows.get(m[1] as string) ?? [];
    list.push(line.trim());
    rows.set(m[1] as string, list);
  }
  return rows;
}

async function summaryMarkdown(): Promise<string> {
  const results = latestResults();
  const recorded = recordedRows();
  // A suite's paired runs (--paired) and in-process runs (--in-process) come right after it.
  const listed = SUMMARY_SUITES.flatMap((s) => [
    s.suite,
    `${s.suite}-paired`,
    `${s.suite}-in-process`,
    `${s.suite}-http-blocks`,
    `${s.suite}-http-blocks-kit-server`,
  ]);
  const derived = (n: string) => n.replace(RUN_SUFFIX, '') !== n;
  const names = [
    ...listed.filter((n) => !derived(n) || results.has(n) || recorded.has(n)),
    ...[...new Set([...results.keys(), ...recorded.keys()])]
      .filter((n) => n !== '' && !listed.includes(n) && !namedOnly(n))
      .sort(),
  ];
  // Each source's rows first, so that a feature measured over HTTP (--http-blocks) can hide its older readings.
  const gathered: Array<{ name: string; lines: SummaryLine[] }> = [];
  const sources = new Set<string>();
  for (const name of names) {
    const entry = results.get(name);
    const what = SUMMARY_SUITES.find((s) => s.suite === name)?.what ?? name;
    const out: SummaryLine[] = [];
    gathered.push({ name, lines: out });
    if (!entry) {
      const kept = recorded.get(name);
      if (kept) {
        for (const line of kept) out.push({ feature: line.split('|')[1]?.trim() ?? '', line });
        for (const machine of recorded.get('') ?? []) sources.add(machine);
      } else
        out.push({
          feature: '',
          line: `| ${what} | see its section | not measured by the harness yet | – | \`${name}\` |`,
          placeholder: true,
        });
      continue;
    }
    const when = (entry.data.at ?? '').slice(0, 16).replace('T', ' ');
    const failed = entry.data.problems?.length ? ' (sanity check FAILED)' : '';
    const rows = await rowsOf(name, entry.data);
    if (!rows.length)
      out.push({
        feature: '',
        line: `| ${what} | see its section | no target rows in its results | – | \`${name}\`, ${when}${failed} |`,
      });
    for (const r of rows) {
      const holds = r.holds === undefined ? '–' : r.holds ? 'yes' : '**no**';
      out.push({
        feature: r.feature,
        line: `| ${r.feature} | ${r.target} | ${r.figure} | ${holds} | \`${name}\`, ${when}${failed} |`,
      });
    }
    if (entry.data.machine) sources.add(`${entry.data.machine}; ${entry.data.versions ?? ''}`);
  }
  const { lines: kept, superseding } = supersede(gathered);
  const lines = ['| feature | target | figure | holds | suite, measured (UTC) |', '|---|---|---|---|---|', ...kept];
  const machines = [...sources];
  return [
    '### Summary: every target next to its latest figure',
    '',
    'Rebuilt by `npm run bench` (any suite) from the newest results JSON of each suite in `bench/results/` (a suite',
    'with none there keeps the rows recorded here); each row names the suite and when it ran. Reproduce all with',
    '`npm run bench`, one suite with `npm run bench -- <suite>`.',
    "Ratios are medians of per-round ratios (same round, interleaved), with the rounds' min–max; 'by CPU per request'",
    "is bare Express's app CPU µs per request over the set-up's app + Redis CPU µs per request (medians), which holds",
    'up better than req/s on a shared machine. `npm run bench -- --summary` rebuilds this table without running.',
    ...(superseding
      ? [
          'A target measured over HTTP in blocks (`--http-blocks`, the mode the ratio targets are decided in) shows that',
          'reading only, even when another mode ran later; its rows from the other modes are in their own sections.',
        ]
      : []),
    '',
    ...lines,
    '',
    machines.length === 1
      ? `Machine and versions: ${machines[0]}.`
      : `Machines and versions: ${machines.map((m) => `(${m})`).join('; ') || 'none yet'}.`,
  ].join('\n');
}

/** One timed run of one set-up: requests/s, latency, Redis commands and key reads, CPU per request; checks it. */
async function measure(
  s: Server,
  round: number,
  flags: Flags,
  redis: Redis,
  path: string,
  problems: string[],
): Promise<{ run: Run; result: LoadResult }> {
  const before = await commandCount(redis);
  const readsBefore = await keyReads(redis);
  const cpuBefore = [await childCpu(s), await redisCpu(redis)] as const;
  const r = await load(s.port, path, flags.duration, flags.connections, s.headers);
  const cpuAfter = [await childCpu(s), await redisCpu(redis)] as const;
  const after = await commandCount(redis);
  const readsAfter = await keyReads(redis);
  const run: Run = {
    setup: s.id,
    round,
    requests: r.requests.total,
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
    redisCommands: after.all - before.all - 1,
    scriptCalls: after.scripts - before.scripts,
    keyReads: readsAfter - readsBefore,
    appCpuUs: (cpuAfter[0] - cpuBefore[0]) / Math.max(1, r.requests.total),
    redisCpuUs: (cpuAfter[1] - cpuBefore[1]) / Math.max(1, r.requests.total),
  };
  console.log(
    `  round ${round + 1}/${flags.rounds} ${s.id.padEnd(14)} ${run.rps.toFixed(0).padStart(7)} req/s  p50 ${run.p50} ms  p99 ${run.p99} ms  ${(run.redisCommands / Math.max(1, run.requests)).toFixed(2)} cmd/req  ${(run.scriptCalls / Math.max(1, run.requests)).toFixed(2)} scripts/req  app ${run.appCpuUs.toFixed(0)} µs/req  redis ${run.redisCpuUs.toFixed(0)} µs/req`,
  );
  if (run.non2xx || run.errors)
    problems.push(`${s.id} round ${round + 1}: ${run.non2xx} non-2xx, ${run.errors} errors`);
  // Every request of a Redis set-up must reach Redis: one command each, or (the kit sends the reads of one
  // event-loop turn as one command) one key read each.
  const floor = run.requests * 0.95;
  if (s.setup.usesRedis && run.redisCommands < floor && run.keyReads < floor) {
    problems.push(`${s.id} round ${round + 1}: only ${run.keyReads} Redis key reads for ${run.requests} requests`);
  }
  return { run, result: r };
}

/**
 * The set-ups a paired run compares with bare Express: those named by --only, else those with a ratio target and
 * the suite's no-op reference (`noop`: what one more Express layer costs by itself, the floor under the others).
 */
function pairedSetups(suite: Suite, flags: Flags): Setup[] {
  const all = suite.setups ?? [];
  const targeted = new Set(
    suiteTargets(suite)
      .filter((t) => t.minRatio)
      .map((t) => t.setup),
  );
  const wanted = (s: Setup) => (flags.only ? flags.only.includes(s.name) : targeted.has(s.name) || s.name === 'noop');
  const bare = all.find((s) => s.role === 'bare');
  if (!bare) throw new Error(`suite ${suite.name}: --paired needs a bare set-up`);
  const others = all.filter((s) => s !== bare && wanted(s));
  if (all.some((s) => s.name === CONTROL)) throw new Error(`suite ${suite.name}: '${CONTROL}' names the A/A control`);
  if (!others.length)
    throw new Error(`suite ${suite.name}: --paired found no set-up with a ratio target (name some with --only)`);
  return [bare, ...others];
}

interface Pair {
  setup: string;
  /** The set-up's req/s over its reference's (its own copy of bare Express, run just before or just after). */
  ratio: number;
  /** The reference's app CPU µs per request over the set-up's app + Redis CPU µs per request. */
  cpuRatio: number;
  /** The process generation both runs came from (0 for runs stored before generations). */
  generation: number;
}

/** Paired mode's A/A control: a second copy of bare Express compared with its own reference, as any set-up is. */
const CONTROL = 'control';

/** How far the A/A control's interval may lie from 1 before the run's figures are called undecided. */
const CONTROL_TOLERANCE = 0.02;

/** Most a control's interval may spread (log half-width) for the run to decide anything. */
const CONTROL_MAX_HALF = 0.05;

/** One pair from its two runs: the set-up's over its reference's, req/s and CPU per request (app + Redis both). */
function pairOf(id: string, ref: Run, x: Run): Pair {
  return {
    setup: id,
    ratio: x.rps / ref.rps,
    cpuRatio: (ref.appCpuUs + ref.redisCpuUs) / (x.appCpuUs + x.redisCpuUs),
    generation: x.generation ?? 0,
  };
}

/**
 * A set-up's geometric-mean ratio with its 95 % interval. Pairs from several process generations are grouped by
 * generation and the interval is taken over the generations' means: two processes of the same code can differ by a
 * few percent for as long as they live (the embedded session read measured 0.949 (0.909-0.990) and 0.877
 * (0.839-0.917) in two runs of 30 pairs, 2026-11-27, each with one process per side), so pairs of one process pair
 * are not independent, and an interval over pairs would leave that difference out.
 */
function pairInterval(pairs: Pair[], field: 'ratio' | 'cpuRatio') {
  const byGeneration = new Map<number, number[]>();
  for (const p of pairs) {
    const list = byGeneration.get(p.generation) ?? [];
    list.push(p[field]);
    byGeneration.set(p.generation, list);
  }
  return byGeneration.size < 3
    ? ratioInterval(pairs.map((p) => p[field]))
    : clusteredRatioInterval([...byGeneration.values()]);
}

/** How the paired section's intervals were taken: over process generations only when there were at least 3. */
function generationsNote(flags: Flags, pairs: Pair[]): string {
  const generations = new Set(pairs.map((p) => p.generation)).size;
  if (generations >= 3) {
    return `; every server replaced by a fresh process every ${flags.generation} rounds, and the intervals taken over those ${generations} process generations`;
  }
  return generations === 2
    ? `; every server replaced by a fresh process every ${flags.generation} rounds, but with fewer than 3 process generations the intervals are over pairs, and leave out lasting differences between processes`
    : '; one process per server for the whole run: the intervals are over pairs, and leave out lasting differences between processes';
}

/** The pairs of a paired run from its runs in order (each pair's two runs are adjacent; the reference is `bare (id)`). */
function pairsFromRuns(runs: Run[]): Pair[] {
  const pairs: Pair[] = [];
  for (let i = 0; i + 1 < runs.length; i += 2) {
    const [a, b] = [runs[i], runs[i + 1]] as [Run, Run];
    const [ref, x] = a.setup.startsWith('bare (') ? [a, b] : [b, a];
    if (ref.setup !== `bare (${x.setup})`)
      throw new Error(`runs ${i} and ${i + 1} (${a.setup}, ${b.setup}) are not a pair`);
    pairs.push(pairOf(x.setup, ref, x));
  }
  return pairs;
}

/**
 * Paired mode's section: for each compared set-up, the mean of its per-pair ratios with a 95 % confidence interval,
 * the median, and the same for CPU per request; a summary row holds when the whole interval meets the target.
 */
function pairedReport(
  suite: Suite,
  setups: Setup[],
  flags: Flags,
  command: string,
  runs: Run[],
  pairs: Pair[],
  problems: string[],
  checks: Map<string, CheckResult>,
  at = new Date(),
): { markdown: string; json: unknown; ok: boolean } {
  const targets = suiteTargets(suite);
  const control = pairInterval(
    pairs.filter((p) => p.setup === CONTROL),
    'ratio',
  );
  // The control differs from its reference in nothing: an interval that stays clear of 1 ± the tolerance shows a
  // bias of the harness or the host in this run, and one too wide to exclude a bias of a few percent shows nothing;
  // either way no target is decided on it.
  const controlKnown = Number.isFinite(control.half);
  const controlWide = controlKnown && control.half > CONTROL_MAX_HALF;
  const biased =
    !controlKnown || controlWide || !(control.low <= 1 + CONTROL_TOLERANCE && control.high >= 1 - CONTROL_TOLERANCE);
  const lines = [
    `### ${suite.name}, paired: each set-up against bare Express, run for run`,
    '',
    `Measured ${at.toISOString().slice(0, 16).replace('T', ' ')} UTC on ${machine()}; ${versions()}.`,
    `Command: \`${command}\` (per set-up ${flags.rounds} pairs of ${flags.duration} s runs: the set-up and its own copy of bare Express, one right after the other, in alternating order; ${flags.connections} connections; the pairs take turns round by round, each run after ${flags.settle ?? 0} s of unmeasured load; the control is a further copy of bare Express paired the same way${generationsNote(flags, pairs)}).`,
    '',
    '| set-up | pairs | req/s ratio to bare: geometric mean (95 % CI) | median | min–max | CPU per request ratio: geometric mean (95 % CI) | target |',
    '|---|---|---|---|---|---|---|',
  ];
  const summary: SummaryRow[] = [];
  const stats = [];
  const bareSetup = setups.find((x) => x.role === 'bare');
  const rows: Array<{ name: string; label: string }> = [
    ...setups.filter((x) => x.role !== 'bare'),
    { name: CONTROL, label: `control (A/A): ${bareSetup?.label ?? 'bare Express'}, a second copy` },
  ];
  for (const setup of rows) {
    const mine = pairs.filter((p) => p.setup === setup.name);
    const ratios = mine.map((p) => p.ratio);
    const r = pairInterval(mine, 'ratio');
    const c = pairInterval(mine, 'cpuRatio');
    const target = targets.find((t) => t.setup === setup.name && t.minRatio !== undefined);
    const ci = (x: { mean: number; low: number; high: number }) =>
      `${x.mean.toFixed(3)} (${x.low.toFixed(3)}–${x.high.toFixed(3)})`;
    lines.push(
      `| ${setup.label} | ${mine.length} | ${ci(r)} | ${median(ratios).toFixed(3)} | ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)} | ${ci(c)} | ${target ? `≥ ${target.minRatio?.toFixed(2)}` : '–'} |`,
    );
    stats.push({ name: setup.name, label: setup.label, pairs: mine.length, ratio: r, median: median(ratios), cpu: c });
    if (target?.minRatio !== undefined) {
      // Holds when the whole interval is at or above the target, fails when it is all below; else undecided.
      const { low, high } = r;
      const decided = !biased && (low >= target.minRatio || high < target.minRatio);
      const why = biased
        ? `; the A/A control ${controlKnown ? `measured ${control.mean.toFixed(3)} × (${control.low.toFixed(3)}–${control.high.toFixed(3)})` : 'ran fewer than 3 pairs'}: undecided`
        : decided
          ? ''
          : '; the interval contains the target: undecided';
      summary.push({
        feature: `${target.feature}${MODE_SUFFIX.paired}`,
        target: `≥ ${target.minRatio.toFixed(2)} × bare`,
        figure: `${r.mean.toFixed(3)} × (95 % CI ${low.toFixed(3)}–${high.toFixed(3)}, ${mine.length} pairs${why}); by CPU per request ${c.mean.toFixed(3)} ×${biased ? '' : `; A/A control ${control.mean.toFixed(3)} ×`}`,
        ...(decided ? { holds: low >= target.minRatio } : {}),
      });
    }
  }
  // Figures the set-ups' checks measured after the runs (e.g. latency one request at a time), as in a normal run.
  const withFigures = setups.filter((x) => Object.keys(checks.get(x.name)?.figures ?? {}).length);
  const figureNames = [...new Set(withFigures.flatMap((x) => Object.keys(checks.get(x.name)?.figures ?? {})))];
  if (figureNames.length) {
    lines.push(
      '',
      `| set-up | ${figureNames.join(' | ')} |`,
      `|---|${figureNames.map(() => '---|').join('')}`,
      ...withFigures.map(
        (x) => `| ${x.label} | ${figureNames.map((f) => fmtFigure(checks.get(x.name)?.figures?.[f])).join(' | ')} |`,
      ),
    );
  }
  lines.push(
    '',
    !controlKnown
      ? '**The A/A control ran fewer than 3 pairs:** this run decides no target.'
      : controlWide
        ? `**The A/A control is too noisy to show the harness fair:** a copy of bare Express measured ${control.mean.toFixed(3)} × (${control.low.toFixed(3)}–${control.high.toFixed(3)}) against another, an interval wider than ±${CONTROL_MAX_HALF * 100} %: this run decides no target.`
        : biased
          ? `**The A/A control is off:** a copy of bare Express measured ${control.mean.toFixed(3)} × (${control.low.toFixed(3)}–${control.high.toFixed(3)}) against another, clear of ${1 - CONTROL_TOLERANCE}–${1 + CONTROL_TOLERANCE}: this run decides no target.`
          : `A/A control: a copy of bare Express measured ${control.mean.toFixed(3)} × (${control.low.toFixed(3)}–${control.high.toFixed(3)}) against another.`,
    '',
    problems.length
      ? `**Sanity check FAILED:** ${problems.join('; ')}`
      : `Sanity check passed: no errors or unexpected statuses in any run; ${suite.sanity ?? "every set-up passed its own verification (see the suite's file)."}`,
  );
  return {
    markdown: lines.join('\n'),
    json: { flags, runs, pairs, stats, control, problems, summary },
    ok: problems.length === 0,
  };
}

async function runThroughput(suiteFile: string, suite: Suite, flags: Flags, redisUrl: string, command: string) {
  const setups = flags.paired
    ? pairedSetups(suite, flags)
    : (suite.setups ?? []).filter((s) => !flags.only || flags.only.includes(s.name));
  const pathOfServer = (s: Server) => pathOf(s.setup, suite);
  const redis = new Redis(redisUrl);
  const servers: Server[] = [];
  const runs: Run[] = [];
  const pairs: Pair[] = [];
  const problems: string[] = [];
  const checks = new Map<string, CheckResult>();
  // Responses each set-up answered over the whole run (warm-up and settle loads included), for its check(), and
  // how many loads they came from (each may leave one response per connection uncounted: see SetupContext.slack).
  const answered = new Map<Server, number>();
  const loads = new Map<Server, number>();
  const count = (s: Server, r: LoadResult) => {
    answered.set(s, (answered.get(s) ?? 0) + r.requests.total);
    loads.set(s, (loads.get(s) ?? 0) + 1);
  };
  const ctxOf = (s: Server): SetupContext =>
    setupContext(s.setup, s.port, redisUrl, redis, answered.get(s) ?? 0, flags.connections * (loads.get(s) ?? 0));
  try {
    // Paired mode: every compared set-up, and the A/A control, gets a copy of bare Express of its own (see below).
    const bareSetup = setups.find((x) => x.role === 'bare') as Setup;
    const plan = flags.paired
      ? [
          ...setups.filter((x) => x !== bareSetup).map((x) => ({ id: x.name, setup: x })),
          { id: CONTROL, setup: bareSetup },
        ]
      : [];
    const wanted: Array<{ setup: Setup; id: string }> = flags.paired
      ? plan.flatMap((p) => [p, { id: `bare (${p.id})`, setup: bareSetup }])
      : setups.map((setup) => ({ setup, id: setup.name }));
    let generation = 0;
    // Every server of the run, started together: each child compiles the suite on start, which is most of a
    // suite's fixed cost. Paired mode starts them again, as fresh processes, every --generation rounds.
    const startAll = async () => {
      // Their ports must be free and their CPU idle before the next generation starts.
      await stopServers(servers.splice(0));
      const started = await Promise.allSettled(wanted.map((w) => startServer(suiteFile, w.setup, redisUrl, w.id)));
      for (const r of started) if (r.status === 'fulfilled') servers.push(r.value);
      const failedStart = started.find((r) => r.status === 'rejected');
      if (failedStart) throw (failedStart as PromiseRejectedResult).reason;
      for (const s of servers) if (s.setup.prepare) s.headers = await s.setup.prepare(ctxOf(s));
      console.log(
        `  started ${servers.length} servers${generation ? ` (process generation ${generation + 1})` : ''}; warming up`,
      );
      for (const s of servers)
        count(s, await load(s.port, pathOfServer(s), flags.warmup, flags.connections, s.headers));
    };
    await startAll();
    const timed = async (s: Server, round: number): Promise<Run> => {
      if (flags.settle) count(s, await load(s.port, pathOfServer(s), flags.settle, flags.connections, s.headers));
      const { run, result } = await measure(s, round, flags, redis, pathOfServer(s), problems);
      count(s, result);
      if (flags.paired) run.generation = generation;
      runs.push(run);
      return run;
    };
    if (flags.paired) {
      // Each compared set-up runs against a copy of bare Express of its own, one run right after the other (in
      // alternating order from round to round, so neither always goes first), and the pairs take turns round by
      // round (the host's speed drifts over minutes). Why a copy each: with one bare server shared by all, it ran
      // every other run while each compared server sat idle through several, and a server measured after sitting
      // idle runs slower even after a settle load. An identical copy of bare Express, compared with the shared one,
      // measured 0.85-0.97 x (2026-11-27, seven runs of 8 rounds); paired with a copy of its own, 0.97-1.04 x (four).
      // The control repeats that check in every run (see pairedReport). Every --generation rounds all the servers are
      // replaced by fresh processes, and the intervals are taken over the generations (see pairInterval): a lasting
      // difference between two processes of the same code is then part of the interval instead of hidden in it.
      const pairsOfServers = () => {
        const byId = new Map(servers.map((x) => [x.id, x]));
        return plan.map((p) => ({
          id: p.id,
          x: byId.get(p.id) as Server,
          ref: byId.get(`bare (${p.id})`) as Server,
        }));
      };
      let pairsOf = pairsOfServers();
      const every = flags.generation ?? 0;
      for (let round = 0; round < flags.rounds; round++) {
        if (round > 0 && every > 0 && round % every === 0) {
          generation++;
          await startAll();
          pairsOf = pairsOfServers();
        }
        for (let i = 0; i < pairsOf.length; i++) {
          const p = pairsOf[(i + round) % pairsOf.length] as (typeof pairsOf)[number];
          let ref: Run;
          let x: Run;
          if (round % 2 === 0) {
            ref = await timed(p.ref, round);
            x = await timed(p.x, round);
          } else {
            x = await timed(p.x, round);
            ref = await timed(p.ref, round);
          }
          pairs.push(pairOf(p.id, ref, x));
        }
      }
    } else {
      for (let round = 0; round < flags.rounds; round++) {
        // Rotate the order each round so no set-up always runs first (or right after the heaviest one).
        const order = servers.map((_, i) => servers[(i + round) % servers.length] as Server);
        for (const s of order) await timed(s, round);
      }
    }
    for (const s of servers) {
      const problem = await verify(s);
      if (problem) problems.push(problem);
      // A copy of bare Express (paired mode) has nothing of its own to check.
      if (s.setup.check && s.id === s.setup.name) {
        const result = await s.setup.check(ctxOf(s));
        checks.set(s.setup.name, result);
        for (const p of result.problems ?? []) problems.push(`${s.setup.name}: ${p}`);
      }
    }
  } finally {
    for (const s of servers) s.child.kill('SIGTERM');
    redis.disconnect();
  }
  if (flags.paired) return pairedReport(suite, setups, flags, command, runs, pairs, problems, checks);

  const stats = setups.map((setup) => {
    const mine = runs.filter((r) => r.setup === setup.name);
    const rps = mine.map((r) => r.rps);
    return {
      name: setup.name,
      label: setup.label,
      role: setup.role,
      rps: median(rps),
      min: Math.min(...rps),
      max: Math.max(...rps),
      p50: median(mine.map((r) => r.p50)),
      p99: median(mine.map((r) => r.p99)),
      cmdPerReq: median(mine.map((r) => r.redisCommands / Math.max(1, r.requests))),
      scriptsPerReq: median(mine.map((r) => r.scriptCalls / Math.max(1, r.requests))),
      appCpuUs: median(mine.map((r) => r.appCpuUs)),
      redisCpuUs: median(mine.map((r) => r.redisCpuUs)),
      // The least contended round: CPU time per request inflates when other processes share the cores.
      bestCpuUs: Math.min(...mine.map((r) => r.appCpuUs + r.redisCpuUs)),
      // Ratio per round (same round, adjacent in time), then the median: steadier than a ratio of medians.
      ratios: {} as Record<string, number>,
      /** Min and max of the per-round ratios to bare Express. */
      ratioRange: undefined as [number, number] | undefined,
      figures: checks.get(setup.name)?.figures ?? {},
    };
  });
  const bare = stats.find((s) => s.role === 'bare');
  const peers = stats.filter((s) => s.role === 'peer');
  for (const s of stats) {
    for (const other of [bare, ...peers]) {
      if (!other || other === s) continue;
      const per = [];
      for (let round = 0; round < flags.rounds; round++) {
        const a = runs.find((r) => r.setup === s.name && r.round === round);
        const b = runs.find((r) => r.setup === other.name && r.round === round);
        if (a && b) per.push(a.rps / b.rps);
      }
      s.ratios[other.name] = median(per);
      if (other === bare && per.length) s.ratioRange = [Math.min(...per), Math.max(...per)];
    }
  }
  const peerCols = peers.map((p) => `vs ${p.name}`);
  const lines = [
    `### ${suite.name}: ${suite.description}`,
    '',
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${machine()}; ${versions()}.`,
    `Command: \`${command}\` (${flags.rounds} interleaved rounds of ${flags.duration} s, ${flags.connections} connections, GET ${suite.path ?? '/ping'}${setups.some((x) => x.path) ? ' unless the set-up names another route' : ''}).`,
    '',
    `| set-up | req/s (median) | min–max | vs bare | ${peerCols.join(' | ')} | p50 ms | p99 ms | p50 / p99 added | Redis cmd/req | script calls/req | app CPU µs/req | Redis CPU µs/req | CPU vs bare | CPU vs bare, best rounds |`,
    `|---|---|---|---|${peerCols.map(() => '---|').join('')}---|---|---|---|---|---|---|---|---|`,
  ];
  for (const s of stats) {
    const r = (name: string) => (s.ratios[name] === undefined ? '–' : s.ratios[name]!.toFixed(2));
    const added = bare && s !== bare ? `${(s.p50 - bare.p50).toFixed(1)} / ${(s.p99 - bare.p99).toFixed(1)}` : '–';
    lines.push(
      `| ${s.label} | ${s.rps.toFixed(0)} | ${s.min.toFixed(0)}–${s.max.toFixed(0)} | ${s === bare ? '1.00' : r(bare?.name ?? '')} | ${peers.map((p) => r(p.name)).join(' | ')} | ${s.p50} | ${s.p99} | ${added} | ${s.cmdPerReq.toFixed(2)} | ${s.scriptsPerReq.toFixed(2)} | ${s.appCpuUs.toFixed(0)} | ${s.redisCpuUs.toFixed(0)} | ${bare ? (bare.appCpuUs / (s.appCpuUs + s.redisCpuUs)).toFixed(2) : '–'} | ${bare ? (bare.bestCpuUs / s.bestCpuUs).toFixed(2) : '–'} |`,
    );
  }
  const figureNames = [...new Set(stats.flatMap((s) => Object.keys(s.figures)))];
  if (figureNames.length) {
    lines.push(
      '',
      `| set-up | ${figureNames.join(' | ')} |`,
      `|---|${figureNames.map(() => '---|').join('')}`,
      ...stats
        .filter((s) => Object.keys(s.figures).length)
        .map((s) => `| ${s.label} | ${figureNames.map((f) => fmtFigure(s.figures[f])).join(' | ')} |`),
    );
  }
  const summary = throughputSummary(suiteTargets(suite), stats);
  lines.push(
    '',
    problems.length
      ? `**Sanity check FAILED:** ${problems.join('; ')}`
      : `Sanity check passed: no errors or unexpected statuses in any run; ${suite.sanity ?? (setups.some((x) => x.verifyPath || x.check) ? "every set-up passed its own verification (see the suite's file)." : 'no set-up has a verification of its own.')}`,
  );
  return {
    markdown: lines.join('\n'),
    json: { flags, runs, stats, problems, summary },
    ok: problems.length === 0,
  };
}

async function main(): Promise<void> {
  if (process.argv.includes('--summary')) {
    // Only rebuild the summary from the stored results (e.g. after running suites one by one).
    const summary = await summaryMarkdown();
    writeDocs('summary', summary);
    console.log(summary);
    return;
  }
  if (process.argv.includes('--rebuild-in-process')) {
    // Recompute the in-process sections and their summary rows from the stored runs (after a change of reading).
    for (const [name, { data }] of latestResults()) {
      const report = await storedInProcessReport(name, data);
      if (!report) continue;
      writeDocs(name, report.markdown);
      console.log(report.markdown);
    }
    writeDocs('summary', await summaryMarkdown());
    return;
  }
  if (process.argv.includes('--rebuild-paired')) {
    // Recompute the paired sections and their summary rows from the stored runs (after a change of statistics).
    for (const [name, { file, data }] of latestResults()) {
      if (!name.endsWith('-paired')) continue;
      const stored = data as StoredResult & { flags: Flags; runs: Run[]; pairs?: Pair[]; control?: unknown };
      if (!stored.control || !stored.pairs) {
        // Runs before 2026-11-27 13:30 UTC shared one bare server among all set-ups and had no A/A control.
        console.log(`${file}: taken with one shared bare server and no control; its section is left as it was`);
        continue;
      }
      const base = name.slice(0, -'-paired'.length);
      const { suite } = (await import(join(suitesDir, `${base}.ts`))) as { suite: Suite };
      const setups = pairedSetups(suite, stored.flags).filter(
        (x) => x.role === 'bare' || stored.pairs?.some((p) => p.setup === x.name),
      );
      const at = new Date(stored.at ?? Date.now());
      const report = pairedReport(
        suite,
        setups,
        stored.flags,
        stored.command ?? '',
        stored.runs,
        pairsFromRuns(stored.runs),
        stored.problems ?? [],
        new Map(),
        at,
      );
      writeFileSync(
        join(__dirname, 'results', file),
        JSON.stringify({ ...stored, ...(report.json as object) }, null, 2),
      );
      writeDocs(name, report.markdown);
      console.log(report.markdown);
    }
    writeDocs('summary', await summaryMarkdown());
    return;
  }
  const started = performance.now();
  const { names, flags: given, build } = parseFlags(process.argv.slice(2));
  // Read by every server process (lib/child.ts), which inherits this environment; always set, so that a value left
  // in the caller's shell cannot change the server of a run stored under the app.listen() name.
  process.env.BENCH_SERVER = given.kitServer ? 'kit' : 'listen';
  const available = readdirSync(suitesDir)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => f.replace(/\.ts$/, ''))
    .sort();
  const chosen = names.length ? names : available.filter((n) => !NAMED_ONLY.has(n));
  if (names.length === 0) {
    // The whole run stays within 15 minutes: the dense (HNSW) rows run at 10,000 entries, and their 100,000-entry
    // rows (a graph build of about a minute each) are kept, dated, from the last run that had them. Run them with
    // `npm run bench -- semantic semantic-dense`; an environment variable given by the caller wins.
    process.env.BENCH_DENSE_SIZES ??= '10000';
    process.env.BENCH_SEMANTIC_DENSE_SIZES ??= '10000';
    console.log(
      'a full run measures the dense semantic rows at 10,000 entries (100,000: npm run bench -- semantic semantic-dense)',
    );
  }
  for (const n of chosen)
    if (!available.includes(n)) throw new Error(`no suite '${n}'; available: ${available.join(', ')}`);
  if (build) {
    console.log('building the package (npm run build): the suites measure the compiled code');
    execFileSync('npm', ['run', 'build'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const redisServer = await startRedis();
  const command = `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim().replace(/ --$/, '');
  const failed: string[] = [];
  const timings: string[] = [];
  try {
    for (const name of chosen) {
      const suiteStarted = performance.now();
      const suiteFile = join(suitesDir, `${name}.ts`);
      const { suite } = (await import(suiteFile)) as { suite: Suite };
      const flags: Flags = { ...DEFAULT_FLAGS, ...(suite.defaults ?? SUITE_DEFAULTS[name]), ...given };
      // Paired runs take turns, so each set-up sits idle while the others are measured: half a second of load
      // before each run puts it back where a busy server is (without it, a no-op middleware measured 0.91 x bare
      // in one run and 0.98 x with it, 2026-11-27).
      // (Paired runs stored before this record no settle, which is how their sections say they ran one set-up after
      // the other.)
      if (flags.paired && flags.settle === undefined) flags.settle = PAIRED_SETTLE_S;
      if (flags.paired && flags.generation === undefined) flags.generation = PAIRED_GENERATION_ROUNDS;
      if (flags.inProcess) {
        // The suite's own round count is for HTTP runs of seconds; in-process rounds are blocks of milliseconds.
        flags.rounds = given.rounds ?? IN_PROCESS_ROUNDS;
        flags.generation = given.generation ?? IN_PROCESS_GENERATION_ROUNDS;
        flags.duration = given.duration ?? 1.5;
      }
      if (flags.inProcess && !flags.httpBlocks && suite.setups?.some((s) => s.server !== undefined)) {
        // In process there is no server: set-ups that differ only in theirs would measure the same thing.
        throw new Error(`suite ${name}: its set-ups name their servers, so it runs over HTTP only (not --in-process)`);
      }
      const suiteCommand = names.length ? command : `npm run bench -- ${name}`;
      // A paired run is stored and shown beside the suite's interleaved figures, not in their place.
      const resultName = suite.custom
        ? name
        : flags.paired
          ? `${name}-paired`
          : flags.httpBlocks
            ? `${name}-http-blocks${flags.kitServer ? '-kit-server' : ''}`
            : flags.inProcess
              ? `${name}-in-process`
              : name;
      console.log(`suite ${name}: ${suite.description}`);
      const env = { redisUrl: redisServer.url };
      let outcome: { markdown: string; json: unknown; ok: boolean };
      try {
        outcome = suite.custom
          ? await suite.custom({ env, flags, log: (l) => console.log(`  ${l}`) })
          : flags.inProcess
            ? await runInProcess(suiteFile, suite, flags, redisServer.url, suiteCommand, await targetsOf(name))
            : await runThroughput(suiteFile, suite, flags, redisServer.url, suiteCommand);
      } catch (error) {
        // One broken suite must not hide the others' figures: record it and go on.
        console.error(error);
        failed.push(`${name} (threw)`);
        continue;
      }
      mkdirSync(join(__dirname, 'results'), { recursive: true });
      const at = new Date().toISOString();
      const stamp = at.replace(/[:.]/g, '-');
      writeFileSync(
        join(__dirname, 'results', `${resultName}-${stamp}.json`),
        JSON.stringify(
          {
            suite: resultName,
            at,
            command: suiteCommand,
            machine: machine(),
            versions: versions(),
            loadAverage: os.loadavg(),
            ...(outcome.json as object),
          },
          null,
          2,
        ),
      );
      writeDocs(resultName, outcome.markdown);
      const seconds = (performance.now() - suiteStarted) / 1000;
      timings.push(`${resultName} ${seconds.toFixed(0)} s`);
      console.log(`\n${outcome.markdown}\n`);
      console.log(`suite ${resultName} took ${seconds.toFixed(0)} s`);
      if (!outcome.ok) failed.push(resultName);
    }
  } finally {
    await redisServer.stop();
  }
  const summary = await summaryMarkdown();
  writeDocs('summary', summary);
  console.log(`\n${summary}\n`);
  console.log(`total ${((performance.now() - started) / 1000).toFixed(0)} s (${timings.join(', ')})`);
  if (failed.length) {
    console.error(`benchmark sanity check failed: ${failed.join(', ')} (see above)`);
    process.exit(1);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
