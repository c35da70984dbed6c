// Locks against redis-semaphore (Mutex) and redlock on the harness's Redis, in one process, rounds interleaved
// with the order rotated each round. Two measurements per contender and round:
//   - uncontended: 50 concurrent callers, each on its own key, acquire then release in a loop: ops/s, client CPU
//     µs per op (this process) and Redis CPU µs per op (INFO cpu deltas), Redis commands per op;
//   - contended handoff: 10 workers on one key; latency from a holder's release call to *another* worker's acquire
//     resolving (p50/p99), and handoffs per second.
// Every contender proves it really locked, in every run: the uncontended callers and the contended workers each
// bump a counter with a read, a yield to the event loop and a write while holding the lock (a lost increment or two
// holders at once fails the run), a second acquire of a held key must be refused, and each uncontended run must
// have reached Redis (at least one command per operation).
//   npm run bench -- locks [--rounds 5] [--duration 2]

import os from 'node:os';
import Redis, { type RedisOptions } from 'ioredis';
import { Mutex } from 'redis-semaphore';
import Redlock from 'redlock';
import { createRedisKit, type RedisKit } from '../lib/kit';
import type { CustomContext, Suite } from '../lib/types';

const CALLERS = 50;
const WORKERS = 10;
const TTL_MS = 10_000;
const PEER_RETRY_MS = 5;

/**
 * The options the kit gives the ioredis client it makes from a URL (plugin/connection/connect.ts): the peers get
 * a client made the same way, so the comparison is of the lock libraries, not of client settings.
 */
const KIT_LIKE_CLIENT: RedisOptions = {
  maxRetriesPerRequest: 1,
  enableAutoPipelining: false,
  connectTimeout: 5_000,
  commandTimeout: 5_000,
};

interface Contender {
  name: string;
  label: string;
  role: 'ours' | 'peer';
  /** Acquires `key` (waiting when `wait`), resolving to its release, or to undefined when refused at once. */
  lock(key: string, wait: boolean): Promise<(() => Promise<unknown>) | undefined>;
  close(): Promise<void>;
}

function ours(url: string, userClient: boolean): Contender {
  const client = userClient ? new Redis(url) : undefined;
  const kit: RedisKit = createRedisKit({
    redis: client ?? url,
    logger: false,
    env: {},
    prefix: 'bench',
    // As the peers' clients: a loaded machine must slow the run down, not fail it.
    commandTimeout: '5 s',
  });
  return {
    name: userClient ? 'kit-user-client' : 'kit',
    label: userClient
      ? 'express-redis-kit, handed `new Redis(url)`'
      : 'express-redis-kit (client made by the kit from the URL)',
    role: 'ours',
    async lock(key, wait) {
      try {
        const l = await kit.locks.acquire(key, { ttl: TTL_MS, waitTimeout: wait ? 60_000 : 0 });
        return () => l.release();
      } catch (error) {
        if (!wait && (error as { code?: string }).code === 'ERR_KIT_LOCK_TIMEOUT') return undefined;
        throw error;
      }
    },
    close: async () => {
      await kit.close();
      client?.disconnect();
    },
  };
}

function semaphore(url: string): Contender {
  const client = new Redis(url, KIT_LIKE_CLIENT);
  return {
    name: 'redis-semaphore',
    label: 'redis-semaphore Mutex',
    role: 'peer',
    async lock(key, wait) {
      const m = new Mutex(client, `rs:${key}`, {
        lockTimeout: TTL_MS,
        acquireTimeout: wait ? 60_000 : 1,
        retryInterval: PEER_RETRY_MS,
      });
      if (!wait) return (await m.tryAcquire()) ? () => m.release() : undefined;
      await m.acquire();
      return () => m.release();
    },
    close: async () => {
      client.disconnect();
    },
  };
}

function redlock(url: string): Contender {
  const client = new Redis(url, KIT_LIKE_CLIENT);
  const waiting = new Redlock([client], { retryCount: -1, retryDelay: PEER_RETRY_MS, retryJitter: 0 });
  const once = new Redlock([client], { retryCount: 0 });
  waiting.on('clientError', () => undefined);
  once.on('clientError', () => undefined);
  return {
    name: 'redlock',
    label: 'redlock (one server)',
    role: 'peer',
    async lock(key, wait) {
      try {
        const l = await (wait ? waiting : once).lock(`rl:${key}`, TTL_MS);
        return () => l.unlock();
      } catch (error) {
        if (!wait) return undefined;
        throw error;
      }
    },
    close: async () => {
      client.disconnect();
    },
  };
}

interface RedisCounters {
  cpuUs: number;
  commands: number;
}

async function redisCounters(admin: Redis): Promise<RedisCounters> {
  const text = String(await admin.info('all'));
  const user = Number(/used_cpu_user:([\d.]+)/.exec(text)?.[1] ?? 0);
  const sys = Number(/used_cpu_sys:([\d.]+)/.exec(text)?.[1] ?? 0);
  let commands = 0;
  for (const m of text.matchAll(/^cmdstat_[a-z_|]+:calls=(\d+)/gm)) commands += Number(m[1]);
  return { cpuUs: (user + sys) * 1e6, commands };
}

/** A counter bumped non-atomically under the lock: read, yield, write. Two holders at once lose an increment. */
class Guarded {
  value = 0;
  holders = 0;
  overlaps = 0;

  async bump(): Promise<void> {
    if (++this.holders > 1) this.overlaps++;
    const seen = this.value;
    await Promise.resolve();
    this.value = seen + 1;
    this.holders--;
  }
}

interface Uncontended {
  ops: number;
  clientCpuUs: number;
  redisCpuUs: number;
  commandsPerOp: number;
  problem?: string;
}

async function uncontended(c: Contender, admin: Redis, seconds: number): Promise<Uncontended> {
  const guards = Array.from({ length: CALLERS }, () => new Guarded());
  let ops = 0;
  const before = await redisCounters(admin);
  const cpu0 = process.cpuUsage();
  const until = performance.now() + seconds * 1000;
  await Promise.all(
    guards.map(async (guard, i) => {
      const key = `u${i}`;
      while (performance.now() < until) {
        const release = await c.lock(key, true);
        if (!release) throw new Error(`${c.name}: a waiting acquire returned nothing`);
        await guard.bump();
        await release();
        ops++;
      }
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  const after = await redisCounters(admin);
  const counted = guards.reduce((s, g) => s + g.value, 0);
  const overlaps = guards.reduce((s, g) => s + g.overlaps, 0);
  const commands = after.commands - before.commands - 1;
  let problem: string | undefined;
  if (counted !== ops || overlaps > 0)
    problem = `${c.name}: ${ops} ops but ${counted} increments, ${overlaps} overlaps`;
  else if (commands < ops) problem = `${c.name}: only ${commands} Redis commands for ${ops} lock operations`;
  return {
    ops: ops / seconds,
    clientCpuUs: (cpu.user + cpu.system) / ops,
    redisCpuUs: (after.cpuUs - before.cpuUs) / ops,
    commandsPerOp: commands / ops,
    problem,
  };
}

interface Handoff {
  perSecond: number;
  p50: number;
  p99: number;
  problem?: string;
}

async function contended(c: Contender, seconds: number, key: string): Promise<Handoff> {
  const latencies: number[] = [];
  const guard = new Guarded();
  let grants = 0;
  let releasedAt = -1;
  let releasedBy = -1;
  const until = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: WORKERS }, async (_, worker) => {
      while (performance.now() < until) {
        const release = await c.lock(key, true);
        if (!release) throw new Error(`${c.name}: a waiting acquire returned nothing`);
        const now = performance.now();
        // A handoff is the lock passing to *another* worker; a releaser taking it straight back is not one.
        if (releasedAt >= 0 && releasedBy !== worker) latencies.push(now - releasedAt);
        grants++;
        await guard.bump();
        releasedAt = performance.now();
        releasedBy = worker;
        await release();
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? Number.NaN;
  const problem =
    guard.value !== grants || guard.overlaps > 0
      ? `${c.name}: ${grants} grants but ${guard.value} increments, ${guard.overlaps} overlaps (contended)`
      : latencies.length === 0
        ? `${c.name}: no handoff between workers`
        : undefined;
  return { perSecond: latencies.length / seconds, p50: q(0.5), p99: q(0.99), problem };
}

/** A held key must refuse a second acquire, and be free again once released. */
async function exclusive(c: Contender): Promise<string | undefined> {
  const key = `x${Date.now()}`;
  const first = await c.lock(key, false);
  if (!first) return `${c.name}: could not take a free lock`;
  const second = await c.lock(key, false);
  await first();
  if (second) return `${c.name}: a held lock was granted twice`;
  const third = await c.lock(key, false);
  if (!third) return `${c.name}: the lock was not free after its release`;
  await third();
  return undefined;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const range = (xs: number[], digits: number) => `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;

interface Rows {
  ops: number[];
  clientCpu: number[];
  redisCpu: number[];
  commands: number[];
  ratio: number[];
  perSecond: number[];
  p50: number[];
  p99: number[];
}

async function run(ctx: CustomContext) {
  const { flags, env } = ctx;
  const loadBefore = os.loadavg()[0] ?? 0;
  const seconds = Math.min(flags.duration, 2);
  const admin = new Redis(env.redisUrl);
  const contenders = [ours(env.redisUrl, false), semaphore(env.redisUrl), redlock(env.redisUrl)];
  if (!flags.only || flags.only.includes('kit-user-client')) contenders.push(ours(env.redisUrl, true));
  const chosen = contenders.filter((c) => !flags.only || flags.only.includes(c.name) || c.name === 'redis-semaphore');
  const rows = new Map<string, Rows>();
  for (const c of chosen) {
    rows.set(c.name, {
      ops: [],
      clientCpu: [],
      redisCpu: [],
      commands: [],
      ratio: [],
      perSecond: [],
      p50: [],
      p99: [],
    });
  }
  const problems: string[] = [];
  const runs: unknown[] = [];
  try {
    for (const c of chosen) {
      const problem = await exclusive(c);
      if (problem) problems.push(problem);
    }
    // Warm-up, not measured: connections, script caches, the JIT.
    for (const c of chosen) {
      await uncontended(c, admin, Math.min(1, seconds));
      await contended(c, Math.min(1, seconds), 'warm');
    }
    for (let round = 0; round < flags.rounds; round++) {
      const order = chosen.map((_, i) => chosen[(i + round) % chosen.length] as Contender);
      const opsThisRound = new Map<string, number>();
      for (const c of order) {
        const r = rows.get(c.name) as Rows;
        const u = await uncontended(c, admin, seconds);
        const h = await contended(c, seconds, `hot${round}`);
        for (const p of [u.problem, h.problem]) if (p) problems.push(`round ${round + 1}: ${p}`);
        r.ops.push(u.ops);
        r.clientCpu.push(u.clientCpuUs);
        r.redisCpu.push(u.redisCpuUs);
        r.commands.push(u.commandsPerOp);
        r.perSecond.push(h.perSecond);
        r.p50.push(h.p50);
        r.p99.push(h.p99);
        opsThisRound.set(c.name, u.ops);
        runs.push({ round, contender: c.name, uncontended: u, handoff: h });
        ctx.log(
          `round ${round + 1}/${flags.rounds} ${c.name.padEnd(16)} ${u.ops.toFixed(0).padStart(6)} ops/s  client ` +
            `${u.clientCpuUs.toFixed(1)} µs/op  redis ${u.redisCpuUs.toFixed(1)} µs/op  ${u.commandsPerOp.toFixed(1)} cmd/op | ` +
            `handoff ${h.perSecond.toFixed(0)}/s p50 ${h.p50.toFixed(2)} ms p99 ${h.p99.toFixed(2)} ms`,
        );
      }
      // Ratios within a round: a slow patch of the machine hits both sides of each ratio.
      const peer = opsThisRound.get('redis-semaphore') as number;
      for (const [name, ops] of opsThisRound) rows.get(name)?.ratio.push(ops / peer);
    }
  } finally {
    for (const c of contenders) await c.close();
    admin.disconnect();
  }

  const lines = [
    '### locks: uncontended acquire + release (50 callers) and contended handoff (10 workers on one lock)',
    '',
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, Node ${process.version}; command: ` +
      `\`npm run bench -- locks\` (${flags.rounds} interleaved rounds of ${seconds} s per case, one process, the ` +
      `harness's own redis-server; 1-minute load average ${loadBefore.toFixed(1)} before, ` +
      `${(os.loadavg()[0] ?? 0).toFixed(1)} after, on ${os.cpus().length} cores). Medians over the rounds; ratios ` +
      'are taken per round, then their median.',
    '',
    '| library | acquire + release ops/s | min–max | vs redis-semaphore | client CPU µs/op | Redis CPU µs/op | Redis commands/op | handoffs/s | handoff p50 ms | handoff p99 ms |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const c of chosen) {
    const r = rows.get(c.name) as Rows;
    lines.push(
      `| ${c.label} | ${median(r.ops).toFixed(0)} | ${range(r.ops, 0)} | ${median(r.ratio).toFixed(2)} | ` +
        `${median(r.clientCpu).toFixed(1)} | ${median(r.redisCpu).toFixed(1)} | ${median(r.commands).toFixed(1)} | ` +
        `${median(r.perSecond).toFixed(0)} | ${median(r.p50).toFixed(2)} | ${median(r.p99).toFixed(2)} |`,
    );
  }
  lines.push(
    '',
    `- Uncontended: ${CALLERS} concurrent callers, each on its own key, acquire then release in a loop (lease ` +
      `${TTL_MS / 1000} s). The peers get an ioredis client made with the options the kit gives its own ` +
      '(`maxRetriesPerRequest: 1`, no auto-pipelining); the last row is the kit handed a plain `new Redis(url)`. ' +
      "Client CPU is this process's CPU time per operation; Redis CPU is redis-server's (INFO used_cpu deltas); " +
      'commands include those run inside scripts.',
    `- Contended: ${WORKERS} workers loop on one key. A handoff is the lock passing to *another* worker, timed from ` +
      "the holder's release call to the other worker's acquire resolving. redis-semaphore and redlock retry every " +
      `${PEER_RETRY_MS} ms, so the releasing worker nearly always takes the lock straight back (few handoffs/s) ` +
      "and the handoffs that happen are lucky polls; ours are woken by the release's pub/sub notification.",
    '',
    problems.length
      ? `**Sanity check FAILED:** ${problems.join('; ')}`
      : 'Sanity check passed: in every run each lock holder bumped a counter with a read, a yield and a write, and ' +
          'no increment was lost and no two holders overlapped; a held key refused a second acquire; every ' +
          'uncontended run sent at least one Redis command per operation.',
  );
  return {
    markdown: lines.join('\n'),
    json: { seconds, callers: CALLERS, workers: WORKERS, runs, problems },
    ok: problems.length === 0,
  };
}

export const suite: Suite = {
  name: 'locks',
  description: 'acquire + release throughput and contended handoff vs redis-semaphore and redlock',
  custom: run,
};
