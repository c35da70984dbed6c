// Does the paired harness favour its reference? Starts copies of one suite's bare Express set-up (the bench's own
// child processes) and compares identical servers two ways, taking turns as `--paired` does:
//   shared: one reference runs every other run, and each compared copy sits idle while the others are measured
//           (how --paired worked until 2026-11-27 13:30 UTC);
//   own:    each compared copy runs right next to a reference copy of its own, in alternating order (how it works now).
// Identical servers should measure 1.00 x in both; a ratio below 1 is a bias against the compared set-ups. The two
// designs alternate round by round (which goes first alternates too), so a drift of the host meets both. Ratios are
// summarised by their geometric mean (the arithmetic mean of x/ref reads above 1 for identical servers).
//
//   npx tsx bench/reference-bias.ts [suite=session] [rounds=8] [copies=3] [duration=1.5] [settle=0.5]
//
// Uses the Redis at REDIS_URL (default redis://127.0.0.1:6379) only because the children expect one: bare Express
// never calls it.

import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import autocannon from 'autocannon';

interface Child {
  child: ChildProcess;
  port: number;
}

const [suite = 'session', roundsArg = '8', copiesArg = '3', durationArg = '1.5', settleArg = '0.5'] =
  process.argv.slice(2);
const rounds = Number(roundsArg);
const copies = Number(copiesArg);
const duration = Number(durationArg);
const settle = Number(settleArg);
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

function start(): Promise<Child> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(__dirname, 'lib', 'child.ts'),
        join(__dirname, 'suites', `${suite}.ts`),
        'bare',
        redisUrl,
      ],
      { stdio: ['ignore', 'pipe', 'inherit', 'ipc'], env: { ...process.env, NODE_ENV: 'production' } },
    );
    child.stdout?.on('data', (chunk: Buffer) => {
      const m = /READY (\d+)/.exec(chunk.toString());
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.once('exit', (code) => reject(new Error(`a bare server exited with ${code}`)));
  });
}

function load(s: Child, seconds: number): Promise<number> {
  return new Promise((resolve, reject) => {
    autocannon(
      { url: `http://127.0.0.1:${s.port}/ping`, connections: 50, duration: seconds },
      (error: Error | null, result: { requests: { average: number }; non2xx: number; errors: number }) => {
        if (error) reject(error);
        else if (result.non2xx || result.errors) reject(new Error('bare Express answered errors'));
        else resolve(result.requests.average);
      },
    );
  });
}

async function timed(s: Child): Promise<number> {
  if (settle) await load(s, settle);
  return load(s, duration);
}

function summary(name: string, ratios: number[]): string {
  const n = ratios.length;
  const logs = ratios.map(Math.log);
  const mean = logs.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(logs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  const half = (2 * sd) / Math.sqrt(n);
  const sorted = [...ratios].sort((a, b) => a - b);
  const median = n % 2 ? (sorted[n >> 1] as number) : ((sorted[n / 2 - 1] as number) + (sorted[n / 2] as number)) / 2;
  return `${name}: ${n} pairs, geometric mean ${Math.exp(mean).toFixed(3)} x (about ${Math.exp(mean - half).toFixed(3)}-${Math.exp(mean + half).toFixed(3)}), median ${median.toFixed(3)} x`;
}

async function main(): Promise<void> {
  // Shared design: one reference and `copies` compared servers. Own design: `copies` pairs.
  const started = await Promise.allSettled(Array.from({ length: 1 + 3 * copies }, start));
  const servers = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  if (servers.length < started.length) {
    for (const s of servers) s.child.kill('SIGTERM');
    throw new Error('a bare server did not start');
  }
  try {
    for (const s of servers) await load(s, 1);
    const [shared, ...rest] = servers as [Child, ...Child[]];
    const sharedCompared = rest.slice(0, copies);
    const ownPairs = Array.from({ length: copies }, (_, i) => [
      rest[copies + 2 * i],
      rest[copies + 2 * i + 1],
    ]) as Array<[Child, Child]>;
    const sharedRatios: number[] = [];
    const ownRatios: number[] = [];
    // Shared: ref, X1, ref, X2, ref, X3, ref; each X against the mean of the reference runs around it.
    const sharedRound = async (round: number) => {
      let before = await timed(shared);
      for (let i = 0; i < copies; i++) {
        const x = await timed(sharedCompared[(i + round) % copies] as Child);
        const after = await timed(shared);
        sharedRatios.push((2 * x) / (before + after));
        before = after;
      }
    };
    // Own: each copy right next to its own reference, in alternating order.
    const ownRound = async (round: number) => {
      for (let i = 0; i < copies; i++) {
        const [ref, x] = ownPairs[(i + round) % copies] as [Child, Child];
        const first = round % 2 === 0 ? ref : x;
        const one = await timed(first);
        const other = await timed(first === ref ? x : ref);
        ownRatios.push(first === ref ? other / one : one / other);
      }
    };
    for (let round = 0; round < rounds; round++) {
      if (round % 2 === 0) {
        await sharedRound(round);
        await ownRound(round);
      } else {
        await ownRound(round);
        await sharedRound(round);
      }
    }
    console.log(`identical bare Express servers of suite ${suite}, ${duration} s runs after ${settle} s of load`);
    console.log(summary('one shared reference', sharedRatios));
    console.log(summary('a reference of its own', ownRatios));
  } finally {
    for (const s of servers) s.child.kill('SIGTERM');
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
