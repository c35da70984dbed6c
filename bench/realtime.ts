// Realtime benchmark: one server process holding N concurrent SSE clients, events published through Redis by
// another kit (as another instance would), publish→receive latency measured at every client, and the server's
// memory per client. Starts its own redis-server on a free port. Run: npx tsx bench/realtime.ts [clients] [events]

import { type ChildProcess, fork } from 'node:child_process';
import { request as httpRequest, Agent } from 'node:http';
import os from 'node:os';
import express from 'express';
import { createRedisKit } from '../plugin/index';
import { startRedis } from '../test/support/redis-server';

const CLIENTS = Number(process.env.CLIENTS ?? process.argv[2] ?? 1000);
const EVENTS = Number(process.env.EVENTS ?? process.argv[3] ?? 200);
const INTERVAL_MS = 50;

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Memory {
  rss: number;
  heapUsed: number;
  external: number;
}

// ---------------------------------------------------------------------------------------------------------------
// The server process: a kit on the given Redis, the realtime routes, and memory readings on request.
async function server(redisUrl: string, prefix: string): Promise<void> {
  const kit = createRedisKit({
    redis: redisUrl,
    prefix,
    logger: false,
    env: {},
    realtime: { authorize: () => true, heartbeat: '15 s' },
    ...(process.env.BENCH_DEBUG ? { logger: console } : {}),
  });
  await kit.ready();
  const app = express();
  kit.mount(app);
  const http = app.listen(0, '127.0.0.1', () => {
    const address = http.address();
    process.send?.({ port: typeof address === 'object' && address ? address.port : 0 });
  });
  http.maxConnections = 100_000;
  // Server-side probe: a listener attached after every SSE client sees each event once it has been written to all
  // of them; setImmediate then runs after the sockets' corked writes went out. This is the server's own fan-out
  // latency, free of the client processes' scheduling.
  const fanout: number[] = [];
  process.on('message', (message: { cmd: string; channels?: number }) => {
    if (message.cmd === 'probe') {
      for (let c = 0; c < (message.channels ?? 1); c++) {
        void kit.realtime.subscribe(`bench-${c}`, (event) => {
          const t = (event.data as { t: number; warm?: boolean }).t;
          if ((event.data as { warm?: boolean }).warm) return;
          setImmediate(() => fanout.push(now() - t));
        });
      }
      process.send?.({ probing: true });
    }
    if (message.cmd === 'fanout') process.send?.({ fanout });
    if (message.cmd === 'memory') {
      for (let i = 0; i < 3; i++) (globalThis as { gc?: () => void }).gc?.();
      const m = process.memoryUsage();
      process.send?.({
        memory: { rss: m.rss, heapUsed: m.heapUsed, external: m.external },
        stats: kit.realtime.stats(),
      });
    } else if (message.cmd === 'stop') {
      http.closeAllConnections();
      http.close();
      void kit.close().then(() => process.exit(0));
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------
// The driver: starts Redis and the server, connects the clients, publishes, and reports.
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

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

// A client process: opens its share of the SSE connections and records publish→receive latencies.
async function clients(port: number, count: number, offset: number, channels: number): Promise<void> {
  const latencies: number[] = [];
  const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  const requests: Array<ReturnType<typeof httpRequest>> = [];
  let refused = 0;
  let opened = 0;
  const progress = setInterval(() => {
    if (process.env.BENCH_DEBUG) console.error(`client ${process.pid}: ${opened}/${count} open, ${refused} refused`);
  }, 1000);
  progress.unref();
  // Like the browser client, a connection refused with 503 (store slow to answer under load) is retried.
  const open = (i: number, attempt: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port, path: `/api/v1/realtime/bench-${(offset + i) % channels}`, agent },
        (res) => {
          if (res.statusCode !== 200) {
            refused++;
            res.resume();
            if (attempt < 20) {
              setTimeout(() => open(i, attempt + 1).then(resolve, reject), 200 * (attempt + 1));
              return;
            }
            return reject(new Error(`HTTP ${res.statusCode}`));
          }
          res.setEncoding('utf8');
          let buffer = '';
          res.on('data', (chunk: string) => {
            const at = now();
            buffer += chunk;
            let end = buffer.indexOf('\n\n');
            while (end >= 0) {
              const block = buffer.slice(0, end);
              buffer = buffer.slice(end + 2);
              // The publish time is the first number of the event's data: read it without a full JSON.parse.
              const t = /"data":\{"t":([\d.]+)(,"warm")?/.exec(block);
              if (t && !t[2]) latencies.push(at - Number(t[1]));
              else if (block.includes(': connected')) {
                opened++;
                resolve();
              }
              end = buffer.indexOf('\n\n');
            }
          });
        },
      );
      req.on('error', reject);
      req.end();
      requests.push(req);
    });
  await Promise.all(Array.from({ length: count }, (_, i) => open(i, 0)));
  process.send?.({ ready: true });
  process.on('message', (message: { cmd: string }) => {
    if (message.cmd === 'count') process.send?.({ count: latencies.length });
    if (message.cmd === 'report') {
      for (const req of requests) req.destroy();
      agent.destroy();
      // Exit only once the (large) message has been handed over.
      process.send?.({ latencies }, () => process.exit(0));
    }
  });
}

const stage = (what: string) => {
  if (process.env.BENCH_DEBUG) console.error(`main: ${what}`);
};

async function main(): Promise<void> {
  const redis = await startRedis({ args: ['--maxclients', '10000'] });
  const prefix = `bench${process.pid}`;
  const channels = Number(process.env.CHANNELS ?? 1);
  const workers = Number(process.env.CLIENT_PROCESSES ?? 2);
  const execArgv = ['--import', 'tsx', '--expose-gc'];
  const child = fork(__filename, ['server', redis.url, prefix], {
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
      __filename,
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
  stage('connected');
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
  stage('publisher ready');
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
  stage('published');
  const expected = Math.round((EVENTS * CLIENTS) / channels);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const counts = await Promise.all(clientProcs.map((p) => ask<{ count: number }>(p, 'count', 'count')));
    if (counts.reduce((a, c) => a + c.count, 0) >= expected || Date.now() > deadline) break;
    await sleep(100);
  }
  const final = await ask<{ memory: Memory; stats: unknown }>(child, 'memory', 'memory');
  stage('final memory read');
  const latencies = (
    await Promise.all(clientProcs.map((p) => ask<{ latencies: number[] }>(p, 'report', 'latencies')))
  ).flatMap((r) => r.latencies);

  stage('reports in');
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
  console.log(JSON.stringify(report, null, 2));

  await publisher.close();
  child.send({ cmd: 'stop' });
  await new Promise((r) => child.once('exit', r));
  await redis.stop();
}

// Baseline without the kit or Redis: a bare http server writing one event to N SSE responses (readers in the
// same process), timed until the writes have gone out. `npx tsx bench/realtime.ts baseline [clients]`.
async function baseline(count: number): Promise<void> {
  const { createServer, get } = await import('node:http');
  const responses: Array<import('node:http').ServerResponse> = [];
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.flushHeaders();
    responses.push(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as import('node:net').AddressInfo;
  const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  for (let i = 0; i < count; i++) get({ host: '127.0.0.1', port, agent }, (r) => r.resume());
  while (responses.length < count) await sleep(20);
  const chunk = 'id: 1\ndata: {"type":"message","data":{"t":1795699999999.123,"i":1},"at":1795699999999}\n\n';
  const times: number[] = [];
  for (let k = 0; k < 60; k++) {
    const t = now();
    for (const res of responses) res.write(chunk);
    await new Promise((r) => setImmediate(r));
    times.push(now() - t);
    await sleep(50);
  }
  times.sort((a, b) => a - b);
  console.log(
    JSON.stringify({
      baseline: 'bare node:http, one event to every response',
      clients: count,
      fanoutMs: { p50: +percentile(times, 50).toFixed(2), p99: +percentile(times, 99).toFixed(2) },
      loadAverage: os.loadavg().map((n) => +n.toFixed(1)),
    }),
  );
  process.exit(0);
}

if (process.argv[2] === 'baseline') {
  void baseline(Number(process.argv[3] ?? 1000));
} else if (process.argv[2] === 'server') {
  void server(process.argv[3] as string, process.argv[4] as string);
} else if (process.argv[2] === 'clients') {
  const [port, count, offset, channels] = process.argv.slice(3).map(Number) as [number, number, number, number];
  void clients(port, count, offset, channels);
} else {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
