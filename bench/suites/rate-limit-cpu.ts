// Limiter cost without HTTP: CPU time this process spends per decision (50 concurrent callers, one key each),
// ours against the peers on the same Redis. CPU time per call barely moves when other work shares the machine,
// where requests/s do; it is the figure to compare on a busy box. Redis's own CPU per call is measured too.

import Redis from 'ioredis';
import { RateLimiterRedis, RateLimiterUnion } from 'rate-limiter-flexible';
import { createRedisKit } from '../lib/kit';
import type { CustomContext, Suite } from '../lib/types';

const CALLS = 20_000;
const CONCURRENCY = 50;
const HUGE = 1_000_000_000;

async function redisCpu(redis: Redis): Promise<number> {
  const text = String(await redis.info('cpu'));
  const user = Number(/used_cpu_user:([\d.]+)/.exec(text)?.[1] ?? 0);
  const sys = Number(/used_cpu_sys:([\d.]+)/.exec(text)?.[1] ?? 0);
  return (user + sys) * 1e6;
}

async function measure(redis: Redis, call: (i: number) => Promise<unknown>) {
  for (let i = 0; i < 500; i++) await call(i); // warm-up: scripts loaded, JIT warm
  const r0 = await redisCpu(redis);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < CALLS) await call(next++);
    }),
  );
  const elapsed = performance.now() - t0;
  const c = process.cpuUsage(c0);
  const r1 = await redisCpu(redis);
  return { appUs: (c.user + c.system) / CALLS, redisUs: (r1 - r0) / CALLS, perSecond: CALLS / (elapsed / 1000) };
}

export const suite: Suite = {
  name: 'rate-limit-cpu',
  description: 'CPU per limiter decision without HTTP, ours vs rate-limiter-flexible, same Redis',
  async custom(ctx: CustomContext) {
    const redis = new Redis(ctx.env.redisUrl);
    const peerClient = new Redis(ctx.env.redisUrl, { enableOfflineQueue: false });
    const kit = createRedisKit({ redis: ctx.env.redisUrl, logger: false });
    await kit.ready();
    const one = kit.rateLimiter({ name: 'one', limit: HUGE, window: '1 m' });
    const three = kit.rateLimiter({
      name: 'three',
      policies: [
        { name: 'burst', limit: HUGE, window: '1 s', algorithm: 'fixed-window' },
        { name: 'minute', limit: HUGE, window: '1 m' },
        { name: 'hour', limit: HUGE, window: '1 h', algorithm: 'gcra' },
      ],
    });
    // The embedded store: the programmatic limiter, and the middleware's whole per-request work (key from the
    // socket address, decision, header strings) on a minimal request/response pair, as an app would run it.
    const memoryKit = createRedisKit({ store: 'memory', logger: false, env: {} });
    const memoryOne = memoryKit.rateLimiter({ name: 'one', limit: HUGE, window: '1 m' });
    const memoryMw = memoryKit.rateLimit({ name: 'mw', limit: HUGE, window: '1 m' });
    const fakeReqs = Array.from({ length: CONCURRENCY }, (_, i) => ({
      headers: {},
      method: 'GET',
      socket: { remoteAddress: `10.0.0.${i}` },
      app: { settings: {} },
    }));
    const fakeRes = { statusCode: 200, setHeader: () => undefined };
    const runMiddleware = (i: number) =>
      new Promise<void>((resolve, reject) => {
        memoryMw(fakeReqs[i % CONCURRENCY] as never, fakeRes as never, (err?: unknown) =>
          err ? reject(err) : resolve(),
        );
      });
    const rlf = (points: number, duration: number, keyPrefix: string) =>
      new RateLimiterRedis({ storeClient: peerClient, points, duration, keyPrefix });
    const rlf1 = rlf(HUGE, 60, 'cpu1');
    const rlf3 = new RateLimiterUnion(rlf(HUGE, 1, 'cpu3a'), rlf(HUGE, 60, 'cpu3b'), rlf(HUGE, 3600, 'cpu3c'));
    const cases: Array<[string, (i: number) => Promise<unknown>]> = [
      ['kit.rateLimiter, 1 policy', (i) => one.limit(`c${i % CONCURRENCY}`)],
      ['rate-limiter-flexible, 1 limiter', (i) => rlf1.consume(`c${i % CONCURRENCY}`)],
      ['kit.rateLimiter, 3 policies', (i) => three.limit(`c${i % CONCURRENCY}`)],
      ['rate-limiter-flexible, union of 3', (i) => rlf3.consume(`c${i % CONCURRENCY}`)],
      ['kit.rateLimiter, embedded store, 1 policy', (i) => memoryOne.limit(`c${i % CONCURRENCY}`)],
      ['kit.rateLimit middleware, embedded store, 1 policy', runMiddleware],
    ];
    const rows: Array<{ name: string; appUs: number; redisUs: number; perSecond: number }> = [];
    // Interleaved rounds; the minimum per case is its least disturbed figure.
    const rounds = Math.max(3, Math.min(ctx.flags.rounds, 7));
    const samples = new Map<string, Array<{ appUs: number; redisUs: number; perSecond: number }>>();
    for (let round = 0; round < rounds; round++) {
      for (const [name, call] of cases) {
        const m = await measure(redis, call);
        samples.set(name, [...(samples.get(name) ?? []), m]);
        ctx.log(`round ${round + 1} ${name}: ${m.appUs.toFixed(1)} µs app, ${m.redisUs.toFixed(1)} µs redis per call`);
      }
    }
    for (const [name] of cases) {
      const list = samples.get(name) ?? [];
      const best = list.reduce((a, b) => (a.appUs + a.redisUs <= b.appUs + b.redisUs ? a : b));
      rows.push({ name, ...best });
    }
    await kit.close();
    await memoryKit.close();
    redis.disconnect();
    peerClient.disconnect();
    const lines = [
      `### rate-limit-cpu: ${this.description}`,
      '',
      `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC. Command: \`npm run bench -- rate-limit-cpu\`. ${CALLS} decisions per case and round, ${CONCURRENCY} concurrent callers, ${rounds} interleaved rounds; the least disturbed round of each case is shown.`,
      '',
      '| limiter | app CPU µs/decision | Redis CPU µs/decision | total | decisions/s in that round |',
      '|---|---|---|---|---|',
      ...rows.map(
        (r) =>
          `| ${r.name} | ${r.appUs.toFixed(1)} | ${r.redisUs.toFixed(1)} | ${(r.appUs + r.redisUs).toFixed(1)} | ${r.perSecond.toFixed(0)} |`,
      ),
    ];
    return { markdown: lines.join('\n'), json: { rows, samples: Object.fromEntries(samples) }, ok: true };
  },
};
