// No job lost: three worker processes, one killed with SIGKILL twice mid-run; every job must complete, and only
// jobs that were running in a killed worker may run twice. Scaled down for CI; the full-size run is
//   QUEUE_NO_LOSS_JOBS=10000 npx jest test/queue/no-loss.test.ts

import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import Redis from 'ioredis';
import { createRedisKit } from '../../plugin/index';
import { standaloneUrl, uniquePrefix } from '../support/stores';

const JOBS = Number(process.env.QUEUE_NO_LOSS_JOBS ?? 3000);
const CONCURRENCY = 10;
// Handler time: the run must outlast a worker's restart (a few seconds here) so that both kills land mid-run.
const JOB_MS = Number(process.env.QUEUE_NO_LOSS_JOB_MS ?? 60);
const root = join(__dirname, '..', '..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Worker {
  child: ChildProcess;
  /** Resolves when the worker has started its first job. */
  started: Promise<void>;
}

function startWorker(url: string, prefix: string): Promise<Worker> {
  // node --import tsx rather than the tsx binary: one process, so SIGKILL kills the worker itself.
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(__dirname, 'worker-child.ts'), url, prefix, String(CONCURRENCY), String(JOB_MS)],
    { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let onStarted: () => void = () => undefined;
  const started = new Promise<void>((resolve) => {
    onStarted = resolve;
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.stdout?.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      if (text.includes('started')) onStarted();
      if (text.includes('ready')) resolve({ child, started });
    });
  });
}

function kill({ child }: Worker): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

const url = standaloneUrl();
(url ? test : test.skip)(
  `${JOBS} jobs, 3 workers, one SIGKILLed twice: every job completes, duplicates only after a kill`,
  async () => {
    const prefix = uniquePrefix();
    const kit = createRedisKit({ redis: url as string, prefix, logger: false, env: {} });
    const redis = new Redis(url as string);
    const workers: Worker[] = [];
    try {
      const queue = kit.queue<{ n: number }>('noloss', { keepCompleted: { count: -1, age: 0 } });
      const ids: string[] = [];
      for (let i = 0; i < JOBS; i += 1000) {
        const chunk = Array.from({ length: Math.min(1000, JOBS - i) }, (_, k) => ({ data: { n: i + k } }));
        ids.push(...(await queue.addBulk(chunk)));
      }
      const started = Date.now();
      workers.push(...(await Promise.all([0, 1, 2].map(() => startWorker(url as string, prefix)))));
      const completed = async () => (await queue.counts()).completed;
      const killedWhileRunning: number[] = [];
      // Kill 1 at 15% done; kill 2 once the restarted worker is running jobs again (and at least 40% are done).
      for (const share of [0.15, 0.4]) {
        await Promise.race([(workers[0] as Worker).started, sleep(30_000)]);
        while ((await completed()) < JOBS * share) await sleep(20);
        await sleep(JOB_MS);
        const before = await queue.counts();
        await kill(workers[0] as Worker);
        killedWhileRunning.push(before.active);
        workers[0] = await startWorker(url as string, prefix);
      }
      const deadline = Date.now() + 90_000;
      while ((await completed()) < JOBS && Date.now() < deadline) await sleep(50);
      const elapsed = Date.now() - started;

      const counts = await queue.counts();
      // Both kills happened with work still going on (otherwise the test proves nothing).
      expect(killedWhileRunning.every((active) => active > 0)).toBe(true);
      expect(counts.completed).toBe(JOBS);
      expect(counts).toMatchObject({ completed: JOBS, waiting: 0, active: 0, delayed: 0, dead: 0 });
      const runs = await redis.hgetall(`${prefix}:test:runs`);
      const missing = ids.filter((id) => !runs[id]);
      expect(missing).toEqual([]);
      const duplicated = ids.filter((id) => Number(runs[id]) > 1);
      // Every extra run must be explained by a stall (a lease that ran out because its worker was killed).
      for (const id of duplicated) {
        const job = await queue.getJob(id);
        expect(job?.stalls).toBeGreaterThanOrEqual(Number(runs[id]) - 1);
      }
      // At most the jobs a killed worker held: CONCURRENCY per kill.
      expect(duplicated.length).toBeLessThanOrEqual(2 * CONCURRENCY);
      const jobKey = (id: string) => `${prefix}:queue:{noloss}:j:${id}`;
      const stallReplies = (await redis.pipeline(ids.map((id) => ['hget', jobKey(id), 's'])).exec()) ?? [];
      const stalled = stallReplies.filter(([, s]) => Number(s ?? 0) > 0);
      expect(stalled.length).toBeGreaterThanOrEqual(2);
      console.log(
        `no-loss: ${JOBS} jobs in ${elapsed} ms, 2 kills, ${stalled.length} jobs recovered after a stall, ` +
          `${duplicated.length} ran twice (their worker died mid-run), 0 lost`,
      );
    } finally {
      await Promise.all(workers.map(kill));
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
      await kit.close();
    }
  },
  120_000,
);
