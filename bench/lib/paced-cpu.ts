// Quick look, not a suite: CPU µs per request of a suite's set-ups at a fixed, unsaturated request rate (so the
// figure measures the work of a request rather than how two busy cores were shared), interleaved over rounds.
//   npx tsx bench/lib/paced-cpu.ts <suite> [rate=1000] [seconds=3] [rounds=5] [setup,setup...]

import { join } from 'node:path';
import autocannon from 'autocannon';
import Redis from 'ioredis';
import { startRedis } from '../../test/support/redis-server';
import { childCpu, pathOf, type Server, setupContext, startServer } from './harness';
import type { Suite } from './types';

async function main(): Promise<void> {
  const [name, rateArg, secondsArg, roundsArg, onlyArg] = process.argv.slice(2);
  const rate = Number(rateArg ?? 1000);
  const seconds = Number(secondsArg ?? 3);
  const rounds = Number(roundsArg ?? 5);
  const file = join(__dirname, '..', 'suites', `${name}.ts`);
  const { suite } = (await import(file)) as { suite: Suite };
  const setups = (suite.setups ?? []).filter((s) => !onlyArg || onlyArg.split(',').includes(s.name));
  const redisServer = await startRedis();
  const redis = new Redis(redisServer.url);
  const servers: Array<Server & { headers: Record<string, string>; samples: number[] }> = [];
  for (const setup of setups) {
    const server = await startServer(file, setup, redisServer.url);
    const headers = setup.prepare ? await setup.prepare(setupContext(setup, server.port, redisServer.url, redis)) : {};
    servers.push({ ...server, headers, samples: [] });
  }
  const run = (s: (typeof servers)[number], secs: number, overallRate?: number) =>
    new Promise((resolve, reject) =>
      autocannon(
        {
          url: `http://127.0.0.1:${s.port}${pathOf(s.setup, suite)}`,
          connections: 10,
          duration: secs,
          headers: s.headers,
          ...(overallRate ? { overallRate } : {}),
        },
        (e: Error | null, r: { requests: { total: number }; non2xx: number }) => (e ? reject(e) : resolve(r)),
      ),
    ) as Promise<{ requests: { total: number }; non2xx: number }>;
  for (const s of servers) await run(s, 2);
  for (let round = 0; round < rounds; round++) {
    for (const s of servers) {
      const c0 = await childCpu(s);
      const r = await run(s, seconds, rate);
      const c1 = await childCpu(s);
      s.samples.push((c1 - c0) / r.requests.total);
      if (r.non2xx) console.log(`${s.setup.name}: ${r.non2xx} non-2xx`);
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;
  const bare = servers.find((s) => s.setup.role === 'bare');
  for (const s of servers) {
    const m = med(s.samples);
    console.log(
      `${s.setup.name.padEnd(16)} ${m.toFixed(1).padStart(7)} µs/req (min ${Math.min(...s.samples).toFixed(1)})  CPU-bound ratio vs bare ${bare ? (med(bare.samples) / m).toFixed(2) : '-'}`,
    );
  }
  for (const s of servers) s.child.kill();
  redis.disconnect();
  await redisServer.stop();
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
