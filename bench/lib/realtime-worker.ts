// The processes of the realtime suite (bench/suites/realtime.ts): `server <redisUrl> <prefix>` holds the SSE
// clients (a kit with the realtime routes), `clients <port> <count> <offset> <channels>` opens SSE connections and
// records publish→receive latencies. `baseline [clients]` times a bare node:http server writing one event to N
// SSE responses, for scale: `npx tsx bench/lib/realtime-worker.ts baseline 1000`.

import { request as httpRequest, Agent } from 'node:http';
import os from 'node:os';
import express from 'express';
import { createRedisKit } from './kit';

const CLIENTS_DEFAULT = 1000;
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
  void baseline(Number(process.argv[3] ?? CLIENTS_DEFAULT));
} else if (process.argv[2] === 'server') {
  void server(process.argv[3] as string, process.argv[4] as string);
} else if (process.argv[2] === 'clients') {
  const [port, count, offset, channels] = process.argv.slice(3).map(Number) as [number, number, number, number];
  void clients(port, count, offset, channels);
}
