// What an idle worker costs on Upstash REST: counts the HTTP requests one idle worker with default options makes
// in one minute (against the test suite's Upstash emulator in front of a local redis-server).
//
//   npx tsx bench/queue-idle.ts            (60 s; IDLE_SECONDS=20 for a shorter look)

import { createRedisKit } from '../plugin/index';
import { startRedis } from '../test/support/redis-server';
import { startUpstashEmulator } from '../test/support/upstash-emulator';

const SECONDS = Number(process.env.IDLE_SECONDS ?? 60);

async function main(): Promise<void> {
  const redis = await startRedis();
  const emulator = await startUpstashEmulator(redis.url);
  const kit = createRedisKit({ upstash: { url: emulator.url, token: emulator.token }, logger: false, env: {} });
  const queue = kit.queue('idle');
  let ran = 0;
  queue.process(() => {
    ran++;
  });
  await queue.add({ warm: true }); // one job, then silence: the worker ramps its polling down to idlePoll
  const t0 = Date.now();
  const at = () => emulator.requests.single + emulator.requests.pipeline;
  const start = at();
  const marks: string[] = [];
  for (let s = 10; s <= SECONDS; s += 10) {
    await new Promise((r) => setTimeout(r, 10_000 - ((Date.now() - t0) % 10_000)));
    marks.push(`${s} s: ${at() - start}`);
  }
  const total = at() - start;
  console.log(`jobs run: ${ran}; requests in ${SECONDS} s after the last job: ${total} (${marks.join(', ')})`);
  console.log(`≈ ${((total / SECONDS) * 60).toFixed(1)} requests per minute, of which the ramp-down is the first ~8`);
  await kit.close();
  await emulator.close();
  await redis.stop();
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
