// Realtime: one server process holding 1000 concurrent SSE clients (held by two client processes), events
// published through Redis by another kit (as another instance would), publish→receive latency measured at every
// client, the server's own fan-out time and its memory per client. Two shapes: every event to all 1000 clients on
// one channel, and 1000 clients spread over 100 channels. Sanity: every event reaches every subscribed client
// (deliveries = events × clients ÷ channels), none twice.

import { type ChildProcess, fork } from 'node:child_process';
import os from 'node:os';
import { join } from 'node:path';
import { createRedisKit } from '../lib/kit';
import type { CustomContext, Suite, SummaryRow } from '../lib/types';

const WORKER = join(__dirname, '..', 'lib', 'realtime-worker.ts');
const CLIENTS = 1000;
const EVENTS = 200;
const INTERVAL_MS = 50;
const TARGET_P99_MS = 50;

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Memory {
  rss: number;
  heapUsed: number;
  external: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

function ask<T>(child: ChildProcess, cmd: string, key: string): Promise<T> {
  return new Promise((resolve) => {
    const onMessage = (message: Record<string, unknown>) => {
      if (key in message) {
        child.off('message', onMessage);
        resolve(message as T);
      }
    };
    child.on('message', onMessage);
    child.send({ cmd });
  });
}

async function runShape(redisUrl: string, CLIENTS: number, EVENTS: number, channels: number) {
  const redis = { url: redisUrl };
  const prefix = `bench${process.pid}c${channels}`;
  const workers = 2;
  const execArgv = ['--import', 'tsx', '--expose-gc'];
  const child = fork(WORKER, ['server', redis.url, prefix], {
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const { port } = await ask<{ port: number }>(child, 'hello', 'port');
  await sleep(300);
  const before = await ask<{ memory: Memory }>(child, 'memory', 'memory');

  const connectStart = now();
  const share = Math.ceil(CLIENTS / workers);
  const clientProcs = Array.from({ length: workers }, (_, w) =>
    fork(
      WORKER,
      ['clients', String(port), String(Math.min(share, CLIENTS - w * share)), String(w * share), String(channels)],
      { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
    ),
  );
  await Promise.all(
    clientProcs.map(
      (p) =>
        new Promise<void>((resolve, reject) => {
          p.once('message', () => resolve());
          p.once('exit', (code) => reject(new Error(`a client process exited (${code}) before connecting`)));
        }),
    ),
  );
  const connectMs = now() - connectStart;
  await sleep(500);
  const after = await ask<{ memory: Memory; stats: unknown }>(child, 'memory', 'memory');

  await new Promise<void>((resolve) => {
    child.once('message', () => resolve());
    child.send({ cmd: 'probe', channels });
  });
  // The publisher is another kit on the same Redis: the path of an event published by another instance.
  const publisher = createRedisKit({ redis: redis.url, prefix, logger: false, env: {} });
  await publisher.ready();
  const publishLatencies: number[] = [];
  // Warm-up (script load, JIT): delivered but not counted.
  for (let i = 0; i < 20; i++) {
    await publisher.realtime.publish(`bench-${i % channels}`, { data: { t: now(), warm: true } });
    await sleep(INTERVAL_MS);
  }
  for (let i = 0; i < EVENTS; i++) {
    const t = now();
    await publisher.realtime.publish(`bench-${i % channels}`, { data: { t, i } });
    publishLatencies.push(now() - t);
    await sleep(INTERVAL_MS);
  }
  const expected = Math.round((EVENTS * CLIENTS) / channels);
  // Generous: on a busy machine the client processes can lag far behind the publisher.
  const deadline = Date.now() + 30_000;
  for (;;) {
    const counts = await Promise.all(clientProcs.map((p) => ask<{ count: number }>(p, 'count', 'count')));
    if (counts.reduce((a, c) => a + c.count, 0) >= expected || Date.now() > deadline) break;
    await sleep(100);
  }
  const final = await ask<{ memory: Memory; stats: unknown }>(child, 'memory', 'memory');
  const latencies = (
    await Promise.all(clientProcs.map((p) => ask<{ latencies: number[] }>(p, 'report', 'latencies')))
  ).flatMap((r) => r.latencies);

  const { fanout } = await ask<{ fanout: number[] }>(child, 'fanout', 'fanout');
  fanout.sort((a, b) => a - b);
  latencies.sort((a, b) => a - b);
  publishLatencies.sort((a, b) => a - b);
  const mb = (n: number) => (n / 1024 / 1024).toFixed(1);
  const perClient = (key: keyof Memory) => ((after.memory[key] - before.memory[key]) / CLIENTS / 1024).toFixed(1);
  const report = {
    clients: CLIENTS,
    clientProcesses: workers,
    channels,
    events: EVENTS,
    deliveries: latencies.length,
    expectedDeliveries: expected,
    connectAllMs: Math.round(connectMs),
    // publish → parsed by a client process (includes the client processes' own CPU time and scheduling)
    latencyMs: {
      p50: +percentile(latencies, 50).toFixed(2),
      p95: +percentile(latencies, 95).toFixed(2),
      p99: +percentile(latencies, 99).toFixed(2),
      max: +percentile(latencies, 100).toFixed(2),
    },
    serverFanoutMs: {
      p50: +percentile(fanout, 50).toFixed(2),
      p99: +percentile(fanout, 99).toFixed(2),
      max: +percentile(fanout, 100).toFixed(2),
    },
    publishCallMs: {
      p50: +percentile(publishLatencies, 50).toFixed(2),
      p99: +percentile(publishLatencies, 99).toFixed(2),
    },
    serverMemory: {
      beforeClients: { rssMB: mb(before.memory.rss), heapMB: mb(before.memory.heapUsed) },
      withClients: { rssMB: mb(after.memory.rss), heapMB: mb(after.memory.heapUsed) },
      afterEvents: { rssMB: mb(final.memory.rss), heapMB: mb(final.memory.heapUsed) },
      perClientKB: { rss: perClient('rss'), heap: perClient('heapUsed') },
    },
    serverStats: final.stats,
    loadAverage: os.loadavg().map((n) => +n.toFixed(1)),
  };

  await publisher.close();
  child.send({ cmd: 'stop' });
  await new Promise((r) => child.once('exit', r));
  return report;
}

export const suite: Suite = {
  name: 'realtime',
  description: 'SSE fan-out: publish→receive latency with 1000 concurrent clients, server memory per client',
  async custom(ctx: CustomContext) {
    const shapes = [
      { channels: 1, label: '1 channel × 1000 clients (every event to 1000 sockets)' },
      { channels: 100, label: '100 channels × 10 clients (every event to 10 sockets)' },
    ];
    const reports = [];
    const problems: string[] = [];
    for (const shape of shapes) {
      const r = await runShape(ctx.env.redisUrl, CLIENTS, EVENTS, shape.channels);
      ctx.log(
        `${shape.label}: ${r.deliveries}/${r.expectedDeliveries} delivered, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms`,
      );
      if (r.deliveries !== r.expectedDeliveries) {
        problems.push(`${shape.label}: ${r.deliveries} deliveries, expected ${r.expectedDeliveries}`);
      }
      reports.push({ ...shape, ...r });
    }
    const rows = reports.map(
      (r) =>
        `| ${r.label} | ${r.deliveries.toLocaleString('en-US')} / ${r.expectedDeliveries.toLocaleString('en-US')} | ${r.latencyMs.p50} / ${r.latencyMs.p95} / **${r.latencyMs.p99}** / ${r.latencyMs.max} | ${r.serverFanoutMs.p50} / ${r.serverFanoutMs.p99} | ${r.publishCallMs.p50} / ${r.publishCallMs.p99} | ${r.serverMemory.perClientKB.rss} KB / ${r.serverMemory.perClientKB.heap} KB |`,
    );
    const summary: SummaryRow[] = reports.map((r) => ({
      feature: `Realtime publish→receive p99, ${r.label}`,
      target: `< ${TARGET_P99_MS} ms`,
      figure: `${r.latencyMs.p99} ms (p50 ${r.latencyMs.p50} ms)`,
      holds: r.latencyMs.p99 < TARGET_P99_MS,
    }));
    const markdown = [
      `### realtime: ${this.description}`,
      '',
      `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; command \`npm run bench -- realtime\`. ` +
        `${CLIENTS} SSE clients held by two client processes, one server process (a kit with the realtime routes), ` +
        `a publisher kit on the same Redis; after 20 uncounted warm-up events, ${EVENTS} events one every ${INTERVAL_MS} ms. ` +
        'Latency: publish → received and parsed in a client process; server fan-out: publish → written to every ' +
        `client socket by the server. Load average at the end ${os.loadavg()[0]?.toFixed(1)}.`,
      '',
      '| shape | deliveries | latency p50 / p95 / p99 / max (ms) | server fan-out p50 / p99 (ms) | publish call p50 / p99 (ms) | per-client RSS / heap |',
      '|---|---|---|---|---|---|',
      ...rows,
      '',
      problems.length
        ? `**Sanity check FAILED:** ${problems.join('; ')}`
        : 'Sanity check passed: every event reached every subscribed client exactly once.',
    ].join('\n');
    return { markdown, json: { reports, problems, summary }, ok: problems.length === 0 };
  },
};
