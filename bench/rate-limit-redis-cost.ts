// What a rate-limit decision costs Redis itself, read from the server's own accounting (INFO commandstats,
// usec_per_call): the limiter's script as the kit sends it, one decision per call and in batches (the limiter sends
// the decisions started in one event-loop turn as one call), next to the floor of any one-script design on the
// server's clock: a script that only reads TIME, GETs the state and SETs it back with PX, and an empty script.
// The throughput suites count Redis's CPU in their "app + Redis" readings; this shows how much of it is the
// script's logic and how much is what every such script pays.
//
//   npx tsx bench/rate-limit-redis-cost.ts [--calls 20000]
//
// Starts a private redis-server on a free port (commandstats are reset there, never on a shared server), and
// uses the source through tsx: the figures are the server's microseconds, not the app's.

import { createHash } from 'node:crypto';
import type { Script } from '../plugin/connection/types';
import IORedis from 'ioredis';
import { createRedisKit, type RedisStore } from '../plugin/index';
import { type RedisProcess, startRedis } from '../test/support/redis-server';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? String(args[i + 1]) : fallback;
};
const CALLS = Number(arg('calls', '20000'));
const KEYS = 100;

/** The floor: the commands every decision needs on the server's clock, and nothing else. */
const FLOOR = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000.0 + tonumber(t[2]) / 1000.0
local raw = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], struct.pack('dddddddd', 0, 0, now + 60000, now, 1, 0, now, now), 'PX', 120000)
return { 0, 0, 1, 5, 60000, 0 }`;
const EMPTY = 'return { 0, 0, 1, 5, 60000, 0 }';

function script(name: string, source: string, keys: number): Script {
  return { name, source, keys, sha: createHash('sha1').update(source).digest('hex') };
}

type Kit = ReturnType<typeof createRedisKit>;

let admin: IORedis | undefined;

async function stats(): Promise<Record<string, { calls: number; usecPerCall: number }>> {
  const info = await (admin as IORedis).info('commandstats');
  const out: Record<string, { calls: number; usecPerCall: number }> = {};
  for (const m of info.matchAll(/cmdstat_(\w+):calls=(\d+),usec=\d+,usec_per_call=([\d.]+)/g)) {
    out[m[1] as string] = { calls: Number(m[2]), usecPerCall: Number(m[3]) };
  }
  return out;
}

async function measure(label: string, run: (i: number) => Promise<unknown>, batch: number): Promise<void> {
  for (let i = 0; i < 2000; i += batch) await Promise.all(Array.from({ length: batch }, (_, j) => run(i + j)));
  await (admin as IORedis).config('RESETSTAT');
  for (let i = 0; i < CALLS; i += batch) await Promise.all(Array.from({ length: batch }, (_, j) => run(i + j)));
  const s = await stats();
  const script = s.evalsha ?? s.eval;
  if (!script) throw new Error(`${label}: no script calls counted`);
  const decisions = CALLS;
  const perDecision = (script.calls * script.usecPerCall) / decisions;
  console.log(
    `${label.padEnd(58)} ${String(script.calls).padStart(6)} calls  ${script.usecPerCall.toFixed(2).padStart(6)} us/call  ${perDecision.toFixed(2).padStart(6)} us/decision`,
  );
}

async function main(): Promise<void> {
  if (!Number.isInteger(CALLS) || CALLS < 1000) throw new Error('--calls: a whole number of at least 1000');
  let redis: RedisProcess | undefined;
  const kits: Kit[] = [];
  try {
    redis = await startRedis();
    admin = new IORedis(redis.url);
    const make = (): Kit => {
      const kit = createRedisKit({ redis: redis?.url, prefix: `rlcost-${kits.length}`, env: {}, logger: false });
      kits.push(kit);
      return kit;
    };
    console.log(`Redis-side cost of a rate-limit decision, ${CALLS} decisions over ${KEYS} keys, private redis-server`);
    const one = make();
    const single = one.rateLimiter({ limit: 1e9, window: '1 m' });
    const three = one.rateLimiter({
      policies: [
        { name: 'burst', limit: 1e9, window: '1 s' },
        { name: 'minute', limit: 1e9, window: '1 m' },
        { name: 'hour', limit: 1e9, window: '1 h', algorithm: 'token-bucket' },
      ],
    });
    for (const batch of [1, 10, 50]) {
      await measure(
        `kit limiter, 1 policy, ${batch} decision(s) started per turn`,
        (i) => single.limit(`k${i % KEYS}`),
        batch,
      );
    }
    await measure('kit limiter, 3 policies, 1 decision per turn', (i) => three.limit(`k${i % KEYS}`), 1);
    const floorStore = make().store as RedisStore;
    const floor = script('floor', FLOOR, 1);
    const empty = script('empty', EMPTY, 0);
    await measure('floor: TIME + GET + SET PX, same reply', (i) => floorStore.script(floor, [`f${i % KEYS}`], []), 1);
    await measure('empty script, same reply', () => floorStore.script(empty, [], []), 1);
  } finally {
    for (const kit of kits) await kit.close();
    admin?.disconnect();
    await redis?.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
