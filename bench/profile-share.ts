// What share of a saturated server's CPU a set-up's own code takes, over real HTTP: each named set-up of a suite is
// started alone under Node's sampling profiler, loaded with autocannon, stopped, and the samples of its main thread
// whose own frame lies in the kit's compiled code (`dist/cjs`) or in a named package are counted.
//
//   npx tsx bench/profile-share.ts <suite> <set-up>[,<set-up>...] [--runs 2] [--seconds 10] [--code dist/cjs]
//   e.g. npx tsx bench/profile-share.ts observability kit-observe,kit-two --runs 3
//        npx tsx bench/profile-share.ts observability prom-client --code node_modules/prom-client/
//   PROFILE_TOP=20 lists that many of the code's functions by their share (default 5).
//
// Why. A share of samples does not move with the host's speed, which made every requests/s ratio here noisy: with
// about 40,000 samples its sampling error is under 0.1 points (from one server process to the next it moves about
// ±0.1). Only the samples of the counted load are used (the last --seconds before the stop). What it leaves out:
// what the code does to the rest of the request (caches evicted, more garbage), so 1 − share is an upper bound on
// the set-up's requests/s ratio to bare Express. And work the code only moves is counted as its own (the first read
// of `req.headers` builds that object, which bare Express builds later anyway).
//
// Starts its own redis-server (as `npm run bench` does); measures the compiled package (`npm run build` first).

import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { startRedis } from '../test/support/redis-server';
import { load, pathOf, setupContext, startServer, stopServers } from './lib/harness';
import type { Setup, Suite } from './lib/types';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  /** µs between samples; with startTime and endTime (µs, the profiler's clock) they place each sample in time. */
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/**
 * The samples of the counted load only: the last `seconds` before the server was stopped (it exits at once on
 * SIGTERM), less a margin at each end. Startup would otherwise count too: loading the kit's own modules put its share
 * about 0.2 points high.
 */
function windowed(profile: Profile, seconds: number): number[] {
  const from = profile.endTime - (seconds - 0.25) * 1e6;
  const to = profile.endTime - 0.1e6;
  const kept: number[] = [];
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    if (t >= from && t <= to) kept.push(profile.samples[i] as number);
  }
  return kept;
}

const args = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? String(args[i + 1]) : fallback;
};
const [suiteName, setupList] = args;
const RUNS = Number(flag('runs', '2'));
const SECONDS = Number(flag('seconds', '10'));
const CODE = flag('code', '/dist/cjs/');

/** The profile of the thread that served the requests: the one with the most busy samples. */
function mainThread(dir: string, seconds: number): { profile: Profile; samples: number[]; busy: number } {
  let best: { profile: Profile; samples: number[]; busy: number } | undefined;
  for (const file of readdirSync(dir)) {
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile;
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const samples = windowed(profile, seconds).filter((s) => byId.get(s)?.callFrame.functionName !== '(idle)');
    if (!best || samples.length > best.busy) best = { profile, samples, busy: samples.length };
  }
  if (!best) throw new Error(`no profile written in ${dir}`);
  return best;
}

function shares(profile: Profile, samples: number[], busy: number): { share: number; top: Array<[string, number]> } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const frames = new Map<string, number>();
  let own = 0;
  for (const s of samples) {
    const frame = byId.get(s)?.callFrame;
    if (!frame?.url.includes(CODE)) continue;
    own++;
    const key = `${frame.functionName || '(anonymous)'} ${frame.url.slice(frame.url.indexOf(CODE) + CODE.length)}:${frame.lineNumber + 1}`;
    frames.set(key, (frames.get(key) ?? 0) + 1);
  }
  const top = [...frames].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.PROFILE_TOP ?? 5));
  return { share: own / busy, top: top.map(([k, n]) => [k, n / busy]) };
}

/**
 * Loads the set-up as the harness does (its own path, and the headers its prepare() gives: a session cookie), stops
 * its server and reads the profile it wrote to `dir`. A set-up that answered errors ran another path than the one
 * measured elsewhere (e.g. a 401 without its session cookie), so its share would describe that path: refused.
 */
async function loadAndStop(
  server: Awaited<ReturnType<typeof startServer>>,
  setup: Setup,
  path: string,
  redisUrl: string,
  dir: string,
): Promise<{ result: Awaited<ReturnType<typeof load>> } & ReturnType<typeof mainThread>> {
  const client = new Redis(redisUrl);
  let result: Awaited<ReturnType<typeof load>>;
  try {
    const headers = setup.prepare ? await setup.prepare(setupContext(setup, server.port, redisUrl, client)) : {};
    await load(server.port, path, 3, 50, headers); // warm-up: not counted (see windowed())
    result = await load(server.port, path, SECONDS, 50, headers);
  } finally {
    client.disconnect();
    await stopServers([server]); // SIGTERM: the child exits at once, and its profile is written
  }
  if (result.non2xx > 0 || result.errors > 0) {
    throw new Error(`${setup.name}: ${result.non2xx} non-2xx answers and ${result.errors} errors under load`);
  }
  return { result, ...mainThread(dir, SECONDS) };
}

async function main(): Promise<void> {
  if (!suiteName || !setupList)
    throw new Error(
      'usage: npx tsx bench/profile-share.ts <suite> <set-up>[,<set-up>...] [--runs 2] [--seconds 10] [--code dist/cjs]',
    );
  if (!(RUNS >= 1 && SECONDS >= 2)) throw new Error('--runs at least 1, --seconds at least 2');
  const suiteFile = join(__dirname, 'suites', `${suiteName}.ts`);
  const redis = await startRedis();
  const pct = (x: number): string => `${(100 * x).toFixed(2)} %`;
  try {
    const { suite } = (await import(suiteFile)) as { suite: Suite };
    for (const name of setupList.split(',')) {
      const setup = suite.setups?.find((s) => s.name === name);
      if (!setup)
        throw new Error(`no set-up ${name} in ${suiteName}; available: ${suite.setups?.map((s) => s.name).join(', ')}`);
      for (let run = 1; run <= RUNS; run++) {
        const dir = mkdtempSync(join(tmpdir(), 'rk-prof-'));
        const server = await startServer(suiteFile, setup, redis.url, setup.name, [
          '--cpu-prof',
          '--cpu-prof-dir',
          dir,
          '--cpu-prof-interval',
          '100',
        ]);
        let counted: { result: Awaited<ReturnType<typeof load>> } & ReturnType<typeof mainThread>;
        try {
          counted = await loadAndStop(server, setup, pathOf(setup, suite), redis.url, dir);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
        const { result, profile, samples, busy } = counted;
        if (busy === 0) throw new Error(`${name}: no busy samples in the counted load`);
        const { share, top } = shares(profile, samples, busy);
        console.log(
          `${name} run ${run}: ${pct(share)} of ${busy} busy samples in ${CODE} (${Math.round(result.requests.average)} req/s; ` +
            `${result.requests.total} responses, all 2xx)\n${top.map(([k, x]) => `    ${pct(x).padStart(7)}  ${k}`).join('\n')}`,
        );
      }
    }
  } finally {
    await redis.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
