// A worker process for the no-loss test: runs jobs of one queue and records every run (job id → runs) in Redis,
// so the parent can tell which jobs ran more than once. Started with tsx; killed with SIGKILL by the parent.

import Redis from 'ioredis';
import { createRedisKit } from '../../plugin/index';

const [url, prefix, concurrency, jobMs] = process.argv.slice(2) as [string, string, string, string];
const recorder = new Redis(url);
const kit = createRedisKit({ redis: url, prefix, logger: false, env: {} });
const queue = kit.queue<{ n: number }>('noloss', { lease: '1 s', maxStalls: 10, keepCompleted: { count: -1, age: 0 } });
const runs = `${prefix}:test:runs`;

let first = true;
queue.process(
  async (job) => {
    await recorder.hincrby(runs, job.id, 1);
    if (first) {
      first = false;
      process.stdout.write('started\n');
    }
    // Long enough that a kill lands while jobs are running: jobMs ± 50%.
    await new Promise((resolve) => setTimeout(resolve, Number(jobMs) * (0.5 + (job.data.n % 10) / 10)));
    return job.data.n;
  },
  { concurrency: Number(concurrency) },
);
void kit.ready().then(() => process.stdout.write('ready\n'));
