// Response cache: a handler that takes 20 ms (a simulated database), served warm from kit.cache on Redis and with
// the in-process hot layer, against bare Express `GET /ping`, the same handler uncached (reference), and apicache
// (its default in-process memory store, as its README shows). Sanity: every set-up counts its handler runs, and a
// cached set-up must have run the handler only to fill (a handful of times) however many requests it served; the
// kit's own counters must show hits. The Zipf key mix's hit ratio is measured on the Redis set-up after the rounds.

import apicache from 'apicache';
import autocannon from 'autocannon';
import express, { type Express, type RequestHandler } from 'express';
import { createRedisKit } from '../lib/kit';
import type { BenchEnv, CheckResult, Setup, SetupContext, Suite } from '../lib/types';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The app every set-up serves: /item/:id behind `mw` (a 20 ms "database"), /__runs counting handler runs. */
function itemApp(mw: RequestHandler[], extra?: (app: Express) => void): Express {
  const app = express();
  let runs = 0;
  app.get('/__runs', (_req, res) => {
    res.json({ runs });
  });
  extra?.(app);
  app.get('/item/:id', ...mw, async (req, res) => {
    runs++;
    await sleep(20);
    res.json({ id: req.params.id, name: `item ${req.params.id}`, price: 42 });
  });
  return app;
}

async function runsOf(base: string): Promise<number> {
  return ((await (await fetch(`${base}/__runs`)).json()) as { runs: number }).runs;
}

/** A cached set-up ran its handler only to fill the entry (a few times per TTL or hot-layer expiry at most). */
function cachedCheck(kitStats: boolean): (ctx: SetupContext) => Promise<CheckResult> {
  return async (ctx): Promise<CheckResult> => {
    const problems: string[] = [];
    const runs = await runsOf(ctx.base);
    // A cache without request coalescing (apicache) runs the handler once per connection that asked for the cold
    // key at the start: 50 here. What it must not do is run it for a sizeable share of the responses.
    const bound = Math.max(100, ctx.responses / 100);
    if (runs > bound) {
      problems.push(`the handler ran ${runs} times for ${ctx.responses} responses: the cache did not serve the load`);
    }
    if (!kitStats) return { problems, figures: { 'handler runs': runs } };
    const before = (await (await fetch(`${ctx.base}/stats`)).json()) as Record<string, number>;
    if (!(before.hits && before.hits > 100)) problems.push(`kit.cache counted ${before.hits} hits`);
    // Zipf mix (10,000 keys, s = 1.0) on a cold route of its own: the hit ratio from the kit's own counters.
    const next = zipfSampler(10_000, 1.0);
    const zipfBefore = (await (await fetch(`${ctx.base}/zipf-stats`)).json()) as Record<string, number>;
    await new Promise<void>((resolve, reject) => {
      autocannon(
        {
          url: ctx.base,
          connections: 50,
          amount: 20_000,
          requests: [{ setupRequest: (req: { path: string }) => ({ ...req, path: `/zipf/${next()}` }) } as never],
        },
        (error: Error | null) => (error ? reject(error) : resolve()),
      );
    });
    const zipf = (await (await fetch(`${ctx.base}/zipf-stats`)).json()) as Record<string, number>;
    const d = (k: string) => (zipf[k] ?? 0) - (zipfBefore[k] ?? 0);
    const served = d('hits') + d('collapsed') + d('staleHits');
    return {
      problems,
      figures: {
        'handler runs': runs,
        'Zipf 10k keys hit ratio %': (100 * served) / Math.max(1, served + d('misses')),
      },
    };
  };
}

/** Zipf(s) sampler over ranks 1..n by inverse CDF on a precomputed table. */
function zipfSampler(n: number, s: number): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 1; k <= n; k++) {
    sum += 1 / k ** s;
    cdf[k - 1] = sum;
  }
  return () => {
    const u = Math.random() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cdf[mid] as number) < u) lo = mid + 1;
      else hi = mid;
    }
    return lo + 1;
  };
}

function kitSetup(name: string, label: string, hot: boolean): Setup {
  return {
    name,
    label,
    role: 'ours',
    path: '/item/1',
    // The hot layer answers from process memory: most requests never reach Redis.
    usesRedis: !hot,
    check: cachedCheck(!hot),
    async build(env: BenchEnv) {
      const kit = createRedisKit({ redis: env.redisUrl, prefix: `bench-${name}`, logger: false, env: {} });
      await kit.ready();
      const cache = kit.cache({ ttl: '10 m', hotLayer: hot ? { maxEntries: 1000 } : false });
      // The Zipf route reads the same counters (kit.cache.stats() counts every kit.cache middleware); the check
      // takes the difference over the Zipf run only.
      const zipf = kit.cache({ ttl: '10 m' });
      return itemApp([cache], (app) => {
        app.get('/stats', (_req, res) => {
          res.json(kit.cache.stats());
        });
        app.get('/zipf-stats', (_req, res) => {
          res.json(kit.cache.stats());
        });
        app.get('/zipf/:id', zipf, async (req, res) => {
          await sleep(20);
          res.json({ id: req.params.id });
        });
      });
    },
  };
}

export const suite: Suite = {
  name: 'response-cache',
  description: 'a warm cache hit on a 20 ms handler vs bare Express GET /ping',
  defaults: { rounds: 5, duration: 3 },
  setups: [
    {
      name: 'bare',
      label: 'bare Express, GET /ping (JSON)',
      role: 'bare',
      usesRedis: false,
      build() {
        const app = express();
        app.get('/ping', (_req, res) => {
          res.json({ pong: true });
        });
        return app;
      },
    },
    kitSetup('kit-redis', 'kit.cache() warm hit, real Redis', false),
    kitSetup('kit-hot', 'kit.cache({ hotLayer }) warm hit', true),
    {
      name: 'apicache',
      label: 'apicache 1.6 (in-process memory) warm hit',
      role: 'peer',
      path: '/item/1',
      usesRedis: false,
      check: cachedCheck(false),
      build: () => itemApp([apicache.middleware('10 minutes')]),
    },
    {
      name: 'uncached',
      label: 'the same 20 ms handler, no cache (reference)',
      role: 'ours',
      path: '/item/1',
      usesRedis: false,
      build: () => itemApp([]),
    },
  ],
  targets: [
    { feature: 'Response cache hit, real Redis (vs bare /ping)', setup: 'kit-redis', minRatio: 0.85 },
    { feature: 'Response cache hit, hot layer (vs bare /ping)', setup: 'kit-hot', minRatio: 0.95 },
  ],
};
