// One "app process" of the accuracy suite: from a shared start time, calls limiter.limit() on one key at a steady
// rate for a number of seconds and prints how many calls were admitted.

import { createRedisKit } from './kit';
import type { RateLimitAlgorithm } from './kit';

async function main(): Promise<void> {
  const [redisUrl, algorithm, rate, seconds, key, startAt] = process.argv.slice(2) as string[];
  const kit = createRedisKit({ redis: redisUrl as string, logger: false });
  await kit.ready();
  const rl = kit.rateLimiter({
    name: 'accuracy',
    limit: 100,
    window: '1 s',
    algorithm: algorithm as RateLimitAlgorithm,
    blockCache: false,
  });
  await rl.peek('warm-up'); // loads the script before the clock starts
  await new Promise((r) => setTimeout(r, Math.max(0, Number(startAt) - Date.now())));
  const total = Number(rate) * Number(seconds);
  const started = performance.now();
  let sent = 0;
  let firstAt = 0;
  let lastAt = 0;
  let lastDone = 0;
  let admitted = 0;
  let failed = 0;
  const inflight = new Set<Promise<void>>();
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * Number(rate)));
      for (; sent < due; sent++) {
        lastAt = Date.now();
        if (sent === 0) firstAt = lastAt;
        const p = rl.limit(key as string).then(
          (r) => {
            lastDone = Date.now();
            if (r.reason) failed++;
            else if (r.allowed) admitted++;
          },
          () => {
            failed++;
          },
        );
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
      }
      if (sent >= total) {
        clearInterval(tick);
        resolve();
      }
    }, 2);
  });
  await Promise.all(inflight);
  process.stdout.write(`${JSON.stringify({ sent, admitted, failed, firstAt, lastAt, lastDone })}\n`);
  await kit.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
