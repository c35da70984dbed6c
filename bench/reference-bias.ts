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

import { join } from 'node:path';
import { load as loadRun, median, ratioInterval, type Server, startServer } from './lib/harness';
import type { Suite } from './lib/types';

const [suite = 'session', roundsArg = '8', copiesArg = '3', durationArg = '1.5', settleArg = '0.5'] =
  process.argv.slice(2);
const rounds = Number(roundsArg);
const copies = Number(copiesArg);
const duration = Number(durationArg);
const settle = Number(settleArg);
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const suiteFile = join(__dirname, 'suites', `${suite}.ts`);

async function load(s: Server, seconds: number): Promise<number> {
  const result = await loadRun(s.port, '/ping', seconds, 50);
  if (result.non2xx || result.errors) throw new Error('bare Express answered errors');
  return result.requests.average;
}

async function timed(s: Server): Promise<number> {
  if (settle) await load(s, settle);
  return load(s, duration);
}

function summary(name: string, ratios: number[]): string {
  const r = ratioInterval(ratios);
  return `${name}: ${ratios.length} pairs, geometric mean ${r.mean.toFixed(3)} x (95 % ${r.low.toFixed(3)}-${r.high.toFixed(3)}), median ${median(ratios).toFixed(3)} x`;
}

async function main(): Promise<void> {
  // Shared design: one reference and `copies` compared servers. Own design: `copies` pairs.
  const { suite: loaded } = (await import(suiteFile)) as { suite: Suite };
  const bare = loaded.setups?.find((x) => x.role === 'bare');
  if (!bare) throw new Error(`suite ${suite} has no bare set-up`);
  const started = await Promise.allSettled(
    Array.from({ length: 1 + 3 * copies }, (_, i) => startServer(suiteFile, bare, redisUrl, `bare #${i}`)),
  );
  const servers = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  if (servers.length < started.length) {
    for (const s of servers) s.child.kill('SIGTERM');
    throw new Error('a bare server did not start');
  }
  try {
    for (const s of servers) await load(s, 1);
    const [shared, ...rest] = servers as [Server, ...Server[]];
    const sharedCompared = rest.slice(0, copies);
    const ownPairs = Array.from({ length: copies }, (_, i) => [
      rest[copies + 2 * i],
      rest[copies + 2 * i + 1],
    ]) as Array<[Server, Server]>;
    const sharedRatios: number[] = [];
    const ownRatios: number[] = [];
    // Shared: ref, X1, ref, X2, ref, X3, ref; each X against the mean of the reference runs around it.
    const sharedRound = async (round: number) => {
      let before = await timed(shared);
      for (let i = 0; i < copies; i++) {
        const x = await timed(sharedCompared[(i + round) % copies] as Server);
        const after = await timed(shared);
        sharedRatios.push((2 * x) / (before + after));
        before = after;
      }
    };
    // Own: each copy right next to its own reference, in alternating order.
    const ownRound = async (round: number) => {
      for (let i = 0; i < copies; i++) {
        const [ref, x] = ownPairs[(i + round) % copies] as [Server, Server];
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
