// Queue: express-redis-kit's queue against BullMQ on the harness's Redis in the same run, interleaved (each
// scenario runs ours and BullMQ back to back, the order alternating by round; the add scenarios alternate in
// slices), plus what one idle worker costs on Upstash REST (requests per minute against the test emulator).
// Sanity: every added job is counted waiting in its queue, every job to process completes (a scenario that stalls
// fails after a minute instead of hanging), the idle worker ran its job.

import { cpus, loadavg } from 'node:os';
import { Queue as BullQueue, Worker as BullWorker } from 'bullmq';
import IORedis from 'ioredis';
import { createRedisKit, type RedisKit } from '../lib/kit';
import { startUpstashEmulator } from '../../test/support/upstash-emulator';
import type { CustomContext, Suite, SummaryRow } from '../lib/types';

const N_ONE = 3000;
const N_BULK = 10_000;
const N_PROCESS = 10_000;
const N_LATENCY = 300;
const BULK_CHUNK = 1000;
const CONCURRENCY = 50;
// The add scenarios alternate between the two libraries in slices (A B A B ...), so a burst of load from other
// processes hits both alike; each library's rate is its jobs over the sum of its slices' times.
const SLICES = 6;
const IDLE_SECONDS = 15;

interface Impl {
  name: string;
  /** Milliseconds to add n jobs one at a time, each add awaited before the next. */
  addOne(queue: string, n: number): Promise<number>;
  /** Milliseconds to add n jobs in chunks of 1000. */
  addBulk(queue: string, n: number): Promise<number>;
  /** Jobs/s processing n no-op jobs already in the queue, with 50 at a time. */
  process(queue: string, n: number): Promise<number>;
  /** Enqueue-to-start latencies (ms) with an idle worker, one job at a time. */
  latency(queue: string, n: number): Promise<number[]>;
  close(): Promise<void>;
}

const payload = (i: number) => ({ i, to: 'user@example.com', template: 'welcome' });
const rate = (n: number, ms: number) => n / (ms / 1000);
const JOB_TIMEOUT_MS = 60_000;

/** A scenario that does not finish within a minute fails the run instead of hanging it. */
function within<T>(work: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${JOB_TIMEOUT_MS / 1000} s`)), JOB_TIMEOUT_MS);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

function ours(url: string): Impl {
  // A generous command timeout: this measures throughput, and BullMQ has none; on a busy machine one add can take
  // longer than the default second.
  const kit: RedisKit = createRedisKit({
    redis: url,
    logger: false,
    env: {},
    prefix: 'bench',
    commandTimeout: '10 s',
  });
  return {
    name: 'express-redis-kit',
    async addOne(name, n) {
      const q = kit.queue(name);
      const t = performance.now();
      for (let i = 0; i < n; i++) await q.add(payload(i));
      return performance.now() - t;
    },
    async addBulk(name, n) {
      const q = kit.queue(name);
      const t = performance.now();
      for (let i = 0; i < n; i += BULK_CHUNK) {
        await q.addBulk(Array.from({ length: Math.min(BULK_CHUNK, n - i) }, (_, k) => ({ data: payload(i + k) })));
      }
      return performance.now() - t;
    },
    async process(name, n) {
      const filler = kit.queue(name);
      for (let i = 0; i < n; i += BULK_CHUNK) {
        await filler.addBulk(Array.from({ length: Math.min(BULK_CHUNK, n - i) }, (_, k) => ({ data: payload(i + k) })));
      }
      const q = kit.queue(name);
      let done = 0;
      const t = performance.now();
      await within(
        new Promise<void>((resolve) => {
          q.on('completed', () => {
            if (++done === n) resolve();
          });
          q.process(() => undefined, { concurrency: CONCURRENCY });
        }),
        `express-redis-kit did not process ${n} jobs`,
      );
      const r = rate(n, performance.now() - t);
      await q.close();
      return r;
    },
    async latency(name, n) {
      const q = kit.queue(name);
      let started: (() => void) | undefined;
      q.process(() => started?.());
      await new Promise((r) => setTimeout(r, 100));
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        await within(
          new Promise<void>((resolve) => {
            started = resolve;
            void q.add(payload(i));
          }),
          'express-redis-kit: an added job never started',
        );
        out.push(performance.now() - t);
        await new Promise((r) => setTimeout(r, 2));
      }
      await q.close();
      return out;
    },
    close: () => kit.close(),
  };
}

function bullmq(url: string): Impl {
  const connections: IORedis[] = [];
  const connection = () => {
    const c = new IORedis(url, { maxRetriesPerRequest: null });
    connections.push(c);
    return c;
  };
  const shared = connection();
  return {
    name: 'BullMQ',
    async addOne(name, n) {
      const q = new BullQueue(name, { connection: shared });
      const t = performance.now();
      for (let i = 0; i < n; i++) await q.add('job', payload(i));
      const ms = performance.now() - t;
      await q.close();
      return ms;
    },
    async addBulk(name, n) {
      const q = new BullQueue(name, { connection: shared });
      const t = performance.now();
      for (let i = 0; i < n; i += BULK_CHUNK) {
        await q.addBulk(
          Array.from({ length: Math.min(BULK_CHUNK, n - i) }, (_, k) => ({ name: 'job', data: payload(i + k) })),
        );
      }
      const ms = performance.now() - t;
      await q.close();
      return ms;
    },
    async process(name, n) {
      const q = new BullQueue(name, { connection: shared });
      for (let i = 0; i < n; i += BULK_CHUNK) {
        await q.addBulk(
          Array.from({ length: Math.min(BULK_CHUNK, n - i) }, (_, k) => ({ name: 'job', data: payload(i + k) })),
        );
      }
      let done = 0;
      let worker: BullWorker | undefined;
      const t = performance.now();
      await within(
        new Promise<void>((resolve) => {
          worker = new BullWorker(name, async () => undefined, { connection: connection(), concurrency: CONCURRENCY });
          worker.on('completed', () => {
            if (++done === n) resolve();
          });
        }),
        `BullMQ did not process ${n} jobs`,
      );
      const r = rate(n, performance.now() - t);
      await worker?.close();
      await q.close();
      return r;
    },
    async latency(name, n) {
      const q = new BullQueue(name, { connection: shared });
      let started: (() => void) | undefined;
      const worker = new BullWorker(name, async () => started?.(), { connection: connection(), concurrency: 1 });
      await worker.waitUntilReady();
      await new Promise((r) => setTimeout(r, 100));
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        await within(
          new Promise<void>((resolve) => {
            started = resolve;
            void q.add('job', payload(i));
          }),
          'BullMQ: an added job never started',
        );
        out.push(performance.now() - t);
        await new Promise((r) => setTimeout(r, 2));
      }
      await worker.close();
      await q.close();
      return out;
    },
    async close() {
      for (const c of connections) c.disconnect();
    },
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
};

type Scenario = 'addOne' | 'addBulk' | 'process' | 'latencyP50' | 'latencyP99';
const LABELS: Record<Scenario, string> = {
  addOne: `add one at a time (each awaited), ${N_ONE} jobs`,
  addBulk: `addBulk, chunks of ${BULK_CHUNK}, ${N_BULK} jobs`,
  process: `process ${N_PROCESS} no-op jobs, concurrency ${CONCURRENCY}`,
  latencyP50: `enqueue-to-start p50, idle worker (${N_LATENCY} jobs)`,
  latencyP99: 'enqueue-to-start p99, idle worker',
};

/** Requests one idle worker with default options makes on Upstash REST, per minute, after its only job. */
async function idleCost(redisUrl: string, seconds: number): Promise<{ perMinute: number; ran: number }> {
  const emulator = await startUpstashEmulator(redisUrl);
  // A generous command timeout: on a busy machine the emulator's first answers can take longer than the default.
  const kit = createRedisKit({
    upstash: { url: emulator.url, token: emulator.token },
    logger: false,
    env: {},
    commandTimeout: '10 s',
  });
  try {
    const queue = kit.queue(`idle${Date.now()}`);
    let ran = 0;
    queue.process(() => {
      ran++;
    });
    await queue.add({ warm: true });
    // The worker ramps its polling down to idlePoll once the queue is empty; measure after the ramp.
    await new Promise((r) => setTimeout(r, 2000));
    const at = () => emulator.requests.single + emulator.requests.pipeline;
    const start = at();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    return { perMinute: ((at() - start) / seconds) * 60, ran };
  } finally {
    await kit.close();
    await emulator.close();
  }
}

async function waitingOf(impl: string, url: string, name: string): Promise<number> {
  if (impl === 'BullMQ') {
    const connection = new IORedis(url, { maxRetriesPerRequest: null });
    const q = new BullQueue(name, { connection });
    const n = await q.getWaitingCount();
    await q.close();
    connection.disconnect();
    return n;
  }
  const kit = createRedisKit({ redis: url, logger: false, env: {}, prefix: 'bench', commandTimeout: '10 s' });
  const n = (await kit.queue(name).counts()).waiting;
  await kit.close();
  return n;
}

export const suite: Suite = {
  name: 'queue',
  description: 'queue add, bulk add, process and enqueue-to-start latency, ours vs BullMQ on the same Redis',
  defaults: { rounds: 5 },
  async custom(ctx: CustomContext) {
    const url = ctx.env.redisUrl;
    const ROUNDS = ctx.flags.rounds;
    const admin = new IORedis(url);
    const results: Record<string, Record<Scenario, number[]>> = {};
    const problems: string[] = [];
    const impls = [ours(url), bullmq(url)];
    for (const impl of impls) {
      results[impl.name] = { addOne: [], addBulk: [], process: [], latencyP50: [], latencyP99: [] };
    }
    const load: number[] = [];
    let idle = { perMinute: Number.NaN, ran: 0 };
    try {
      for (let round = 1; round <= ROUNDS; round++) {
        const order = round % 2 === 1 ? impls : [...impls].reverse();
        for (const scenario of ['addOne', 'addBulk'] as const) {
          // The harness's Redis is ours while this suite runs (suites run one after another).
          await admin.flushall();
          const total = scenario === 'addOne' ? N_ONE : N_BULK;
          const slice = Math.ceil(total / SLICES);
          const ms = new Map<string, number>(impls.map((i) => [i.name, 0]));
          for (let k = 0; k < SLICES; k++) {
            for (const impl of k % 2 === 0 ? order : [...order].reverse()) {
              ms.set(impl.name, (ms.get(impl.name) as number) + (await impl[scenario](`q${round}${scenario}`, slice)));
            }
          }
          for (const impl of impls) {
            const waiting = await waitingOf(impl.name, url, `q${round}${scenario}`);
            if (waiting !== slice * SLICES) {
              problems.push(
                `${impl.name} ${scenario} round ${round}: ${waiting} jobs waiting, ${slice * SLICES} added`,
              );
            }
            (results[impl.name] as Record<Scenario, number[]>)[scenario].push(
              rate(slice * SLICES, ms.get(impl.name) as number),
            );
          }
        }
        for (const scenario of ['process', 'latency'] as const) {
          for (const impl of order) {
            await admin.flushall();
            const name = `q${round}${scenario}`;
            const r = results[impl.name] as Record<Scenario, number[]>;
            try {
              if (scenario === 'latency') {
                const lat = await impl.latency(name, N_LATENCY);
                r.latencyP50.push(quantile(lat, 0.5));
                r.latencyP99.push(quantile(lat, 0.99));
              } else {
                r.process.push(await impl.process(name, N_PROCESS));
              }
            } catch (error) {
              problems.push(`round ${round}: ${(error as Error).message}`);
            }
          }
        }
        load.push(loadavg()[0] as number);
        const line = impls
          .map((i) => {
            const r = results[i.name] as Record<Scenario, number[]>;
            return `${i.name}: one ${r.addOne.at(-1)?.toFixed(0)}/s, bulk ${r.addBulk.at(-1)?.toFixed(0)}/s, process ${r.process.at(-1)?.toFixed(0)}/s, p50 ${r.latencyP50.at(-1)?.toFixed(2)} ms`;
          })
          .join(' | ');
        ctx.log(`round ${round}/${ROUNDS}: ${line}`);
      }
      await admin.flushall();
      try {
        idle = await idleCost(url, IDLE_SECONDS);
      } catch (error) {
        problems.push(`idle worker on Upstash REST: ${(error as Error).message}`);
      }
      if (idle.ran !== 1) problems.push(`the idle worker ran ${idle.ran} jobs, expected 1`);
      ctx.log(`idle worker on Upstash REST: ${idle.perMinute.toFixed(1)} requests/min`);
    } finally {
      for (const impl of impls) await impl.close();
      await admin.flushall();
      admin.disconnect();
    }

    const kit = results['express-redis-kit'] as Record<Scenario, number[]>;
    const bull = results.BullMQ as Record<Scenario, number[]>;
    const fmt = (xs: number[], ms: boolean) => {
      if (!xs.length) return 'not measured';
      const f = (x: number) => (ms ? x.toFixed(2) : Math.round(x).toLocaleString('en-US'));
      return `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`;
    };
    const paired = (s: Scenario) => {
      const ms = s.startsWith('latency');
      return kit[s].map((k, i) => (ms ? (bull[s][i] as number) / k : k / (bull[s][i] as number)));
    };
    const rows = (Object.keys(LABELS) as Scenario[]).map((s) => {
      const ms = s.startsWith('latency');
      const ratio = ms ? median(bull[s]) / median(kit[s]) : median(kit[s]) / median(bull[s]);
      const perRound = paired(s);
      return `| ${LABELS[s]} | ${fmt(kit[s], ms)} | ${fmt(bull[s], ms)} | ${ratio.toFixed(2)} × | ${median(perRound).toFixed(2)} × (${Math.min(...perRound).toFixed(2)}–${Math.max(...perRound).toFixed(2)}) |`;
    });
    const summary: SummaryRow[] = (['addOne', 'addBulk', 'process'] as const).map((s) => {
      const r = median(paired(s));
      return {
        feature: `Queue: ${LABELS[s]}, ours vs BullMQ`,
        target: 'ahead of BullMQ (> 1.00 ×; the issue sets no number)',
        figure: `${r.toFixed(2)} × (${fmt(kit[s], false)} jobs/s)`,
        holds: r > 1,
      };
    });
    summary.push({
      feature: 'Queue: idle worker on Upstash REST, requests per minute',
      target: 'reported (no number in the issue)',
      figure: idle.perMinute.toFixed(1),
    });
    const markdown = [
      `### queue: ${this.description}`,
      '',
      `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; command \`npm run bench -- queue\`. ` +
        `${ROUNDS} rounds; each scenario runs both libraries back to back, the order alternating by round; the add ` +
        `scenarios alternate them in ${SLICES} slices. Medians with min–max over the rounds; throughput in jobs/s, ` +
        'latency in ms. Ratios: ours ÷ BullMQ for throughput, BullMQ ÷ ours for latency, so above 1 means ours is ' +
        `ahead. ${cpus().length} cores, 1-minute load average ${Math.min(...load).toFixed(1)}–${Math.max(...load).toFixed(1)} during the run.`,
      '',
      '| scenario | express-redis-kit | BullMQ | ratio of medians | median of per-round ratios (min–max) |',
      '|---|---|---|---|---|',
      ...rows,
      '',
      `One idle worker with default options on Upstash REST (the test suite's emulator): ${idle.perMinute.toFixed(1)} ` +
        `requests per minute, measured over ${IDLE_SECONDS} s after its only job and the ramp-down.`,
      '',
      'Both with their default retention: ours keeps the newest 1000 completed jobs, BullMQ keeps every completed ' +
        'job. No-op handlers; "add one at a time" awaits each add before the next (one round trip each).',
      '',
      problems.length
        ? `**Sanity check FAILED:** ${problems.join('; ')}`
        : 'Sanity check passed: every added job was counted waiting, every job to process completed, the idle worker ran its job.',
    ].join('\n');
    return {
      markdown,
      json: { results, idle, load, problems, summary },
      ok: problems.length === 0,
    };
  },
};
