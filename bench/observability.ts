// Benchmark: what kit.metrics() + kit.usage() cost on top of bare Express 5. Starts its own redis-server on a free
// port, runs the bare and the instrumented app each in its own process, and drives them with autocannon in
// interleaved rounds (order alternating), so drift on a shared machine hits both alike. Reports medians, min/max
// and the ratio. Run: npx tsx bench/observability.ts [--rounds 5] [--duration 8] [--connections 50]

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { startRedis } from '../test/support/redis-server';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const ROUNDS = arg('rounds', 5);
const DURATION = arg('duration', 8);
const CONNECTIONS = arg('connections', 50);
// Long enough for the JIT to settle in both apps (the instrumented one has more code to optimise).
const WARMUP = 5;
// What runs as "instrumented": the full pair by default; 'observe' (the pair as one middleware), 'kit' (kit created,
// no middleware), 'metrics', 'usage' or
// 'layers' (two no-op middlewares) isolate a part. E.g. --variant kit
const variantAt = process.argv.indexOf('--variant');
const VARIANT = variantAt > 0 ? (process.argv[variantAt + 1] as string) : 'instrumented';
const ROOT = join(__dirname, '..');

interface App {
  child: ChildProcess;
  port: number;
}

function startApp(mode: string, redisUrl: string): Promise<App> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(ROOT, 'node_modules', '.bin', 'tsx'), [join(__dirname, 'observability-app.ts')], {
      env: { ...process.env, BENCH_MODE: mode, BENCH_REDIS: redisUrl, NODE_ENV: 'production' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /PORT (\d+)/.exec(out);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.once('exit', (code) => reject(new Error(`${mode} app exited (${code})`)));
  });
}

// Three workspaces and users, as an app with tenants would see; the same requests go to both apps.
const requests = [0, 1, 2].map((i) => ({
  method: 'GET' as const,
  path: '/ping',
  headers: { 'x-ws': `ws${i}`, 'x-user': `u${i}` },
}));

interface Run {
  rps: number;
  p99: number;
  errors: number;
  /** CPU time the app process spent per request, in µs (user + system). */
  cpuPerRequest: number;
}

async function cpu(port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/__cpu`);
  return ((await res.json()) as { micros: number }).micros;
}

async function load(port: number, duration: number): Promise<Run> {
  const before = await cpu(port);
  const r = await autocannon({ url: `http://127.0.0.1:${port}`, connections: CONNECTIONS, duration, requests });
  const used = (await cpu(port)) - before;
  return {
    rps: r.requests.average,
    p99: r.latency.p99,
    errors: r.errors + r.non2xx,
    cpuPerRequest: used / r.requests.total,
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

async function main(): Promise<void> {
  const redis = await startRedis();
  const apps = { bare: await startApp('bare', redis.url), instrumented: await startApp(VARIANT, redis.url) };
  const results: Record<'bare' | 'instrumented', Run[]> = {
    bare: [],
    instrumented: [],
  };
  try {
    for (const mode of ['bare', 'instrumented'] as const) await load(apps[mode].port, WARMUP);
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? (['bare', 'instrumented'] as const) : (['instrumented', 'bare'] as const);
      for (const mode of order) {
        const r = await load(apps[mode].port, DURATION);
        results[mode].push(r);
        console.error(
          `round ${round + 1}/${ROUNDS} ${mode.padEnd(12)} ${Math.round(r.rps)} req/s  p99 ${r.p99} ms  ${r.cpuPerRequest.toFixed(1)} µs CPU/req`,
        );
      }
    }
  } finally {
    for (const a of Object.values(apps)) a.child.kill('SIGTERM');
    await redis.stop();
  }
  const summary = (mode: 'bare' | 'instrumented') => {
    const rps = results[mode].map((r) => r.rps);
    return {
      median: Math.round(median(rps)),
      min: Math.round(Math.min(...rps)),
      max: Math.round(Math.max(...rps)),
      p99: median(results[mode].map((r) => r.p99)),
      cpu: median(results[mode].map((r) => r.cpuPerRequest)),
      cpuMin: Math.min(...results[mode].map((r) => r.cpuPerRequest)),
      cpuMax: Math.max(...results[mode].map((r) => r.cpuPerRequest)),
      errors: results[mode].reduce((s, r) => s + r.errors, 0),
    };
  };
  const bare = summary('bare');
  const inst = summary('instrumented');
  const ratio = inst.median / bare.median;
  // Per-round ratios (paired runs) say how much of the spread is the machine rather than the kit.
  const paired = results.bare.map((b, i) => (results.instrumented[i]?.rps ?? 0) / b.rps);
  // CPU per request of the app process is what the middleware adds; its ratio is the throughput a CPU-bound
  // app keeps, and it is far less disturbed by other processes on the machine than req/s.
  const cpuRatio = bare.cpu / inst.cpu;
  const pairedCpu = results.bare.map(
    (b, i) => b.cpuPerRequest / (results.instrumented[i]?.cpuPerRequest ?? Number.NaN),
  );
  const f = (v: number) => v.toFixed(1);
  const table = [
    `| setup | req/s median (min-max) | p99 ms | CPU µs/request median (min-max) | req/s vs bare | CPU-bound throughput vs bare |`,
    `|---|---|---|---|---|---|`,
    `| bare Express 5, GET /ping (JSON) | ${bare.median} (${bare.min}-${bare.max}) | ${bare.p99} | ${f(bare.cpu)} (${f(bare.cpuMin)}-${f(bare.cpuMax)}) | 1.000 | 1.000 |`,
    `| ${VARIANT === 'instrumented' ? '+ kit.metrics() + kit.usage() (Redis, 250 ms flushes)' : `variant: ${VARIANT}`} | ${inst.median} (${inst.min}-${inst.max}) | ${inst.p99} | ${f(inst.cpu)} (${f(inst.cpuMin)}-${f(inst.cpuMax)}) | ${ratio.toFixed(3)} | ${cpuRatio.toFixed(3)} |`,
  ].join('\n');
  console.log(table);
  console.log(
    `\npaired per-round req/s ratios: ${paired.map((p) => p.toFixed(3)).join(', ')} (median ${median(paired).toFixed(3)})`,
  );
  console.log(
    `paired per-round CPU ratios (bare/instrumented): ${pairedCpu.map((p) => p.toFixed(3)).join(', ')} (median ${median(pairedCpu).toFixed(3)}); errors: bare ${bare.errors}, instrumented ${inst.errors}`,
  );
  console.log(
    `${ROUNDS} interleaved rounds of ${DURATION} s, ${CONNECTIONS} connections, autocannon in the same process tree; ${cpus().length} cores, Node ${process.version}`,
  );
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(
    join(ROOT, 'bench', 'results', 'observability.json'),
    JSON.stringify(
      {
        date: new Date().toISOString(),
        rounds: ROUNDS,
        duration: DURATION,
        results,
        bare,
        inst,
        ratio,
        cpuRatio,
        paired,
        pairedCpu,
      },
      null,
      2,
    ),
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
