// What one usage flush costs the app in CPU: the observability suite's shape (30 users in 3 workspaces, one route)
// recorded, then flushed to a real Redis, again and again. A flush's cost is per second (one every
// `flushInterval`), not per request, so the throughput suites cannot show it apart from the middleware's work;
// docs/performance.md (Observability) turns this figure into a share of a saturated server.
//
//   taskset -c 1 npx tsx bench/usage-flush.ts [--redis redis://127.0.0.1:6379/0] [--flushes 300]
//
// Uses the source through tsx (not the compiled package): the flush path is the same code either way, and this is
// a figure in microseconds per flush, not a ratio. Keys go under a prefix of their own and expire with the usage
// retention; the script deletes nothing else.

import { createRedisKit } from '../plugin/index';
import { percentile } from './lib/http';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? String(args[i + 1]) : fallback;
};
const REDIS = arg('redis', process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/0');
const FLUSHES = Number(arg('flushes', '300'));
const WARMUP = 30;

async function main(): Promise<void> {
  if (!Number.isInteger(FLUSHES) || FLUSHES < 10) throw new Error('--flushes: a whole number of at least 10');
  const kit = createRedisKit({
    redis: REDIS,
    prefix: `bench-usage-flush-${process.pid}`,
    env: {},
    logger: false,
    usage: { flushInterval: '1 h' },
  });
  await kit.ready();
  const samples: number[] = [];
  for (let i = 0; i < WARMUP + FLUSHES; i++) {
    for (let u = 0; u < 30; u++) kit.usage.record({ workspace: `ws${u % 3}`, user: `user${u}`, route: '/ping' });
    const before = process.cpuUsage();
    await kit.usage.flush();
    const used = process.cpuUsage(before);
    if (i >= WARMUP) samples.push(used.user + used.system);
  }
  const stats = kit.usage.stats();
  await kit.close();
  if (stats.flushErrors > 0) throw new Error(`${stats.flushErrors} flushes failed: is Redis at ${REDIS}?`);
  // The mean is what a server pays per second (flushes per second × mean); the median and p10 resist the noise.
  const mean = Math.round(samples.reduce((a, b) => a + b, 0) / samples.length);
  console.log(
    `usage flush, 30 series in 3 workspaces, ${FLUSHES} flushes: app CPU per flush mean ${mean} µs, ` +
      `median ${percentile(samples, 50)} µs, p10 ${percentile(samples, 10)} µs, p90 ${percentile(samples, 90)} µs`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
