// Soak: the demo under steady mixed load for a long time (10 minutes by default), its heap sampled every 10 s after
// a forced GC. A flat heap after warm-up (slope near zero) means nothing grows per request: keys, maps, listeners.
// The load mixes every route a product would see: cached reads, semantic-cache chat, locks, jobs, login -> /me ->
// logout, realtime publishes, metrics; client addresses are drawn from a large pool so rate-limit keys churn.
//
//   nice -n 10 npx tsx bench/soak.ts [--minutes 10] [--rate 100] [--store memory|redis] [--warmup 2] [--questions 100]
//
// It is a script, not a CI test: it prints a table and a JSON summary to paste into docs/reliability.md.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? String(args[i + 1]) : fallback;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ADMIN = 'soak-admin-token-0123456789';

interface HeapSample {
  heapUsed: number;
  heapTotal: number;
  rss: number;
  external: number;
  storeKeys: number;
}

// ---------------------------------------------------------------------------------------------------------------
// Child: the demo app in its own process (started with --expose-gc), answering heap questions over IPC.
// ---------------------------------------------------------------------------------------------------------------

async function child(store: string, redisUrl: string): Promise<void> {
  const { createDemoApp } = await import('../demo/app');
  const { app, kit } = createDemoApp(
    {
      ...(store === 'redis' ? { redis: redisUrl } : { store: 'memory' as const }),
      logger: false,
      admin: { token: ADMIN },
      env: {},
    },
    { sessionSecret: 'soak-session-secret', llmLatencyMs: [5, 20] },
  );
  await kit.ready();
  const server = app.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.send?.({ port: typeof address === 'object' && address ? address.port : 0 });
  });
  server.keepAliveTimeout = 60_000;
  const gc = (globalThis as { gc?: () => void }).gc;
  process.on('message', (message) => {
    if (message !== 'heap') return;
    gc?.();
    const m = process.memoryUsage();
    const engine = (kit.store as { engine?: { size: number } }).engine;
    const sample: HeapSample = {
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      rss: m.rss,
      external: m.external,
      storeKeys: engine ? engine.size : -1,
    };
    process.send?.({ sample });
  });
  process.on('SIGTERM', () => {
    server.close();
    void kit.close().finally(() => process.exit(0));
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Parent: Redis (optional), the child, the load loop and the sampling.
// ---------------------------------------------------------------------------------------------------------------

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

async function startRedis(): Promise<{ url: string; dbsize: () => number; stop: () => void }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'rk-soak-'));
  const proc = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' },
  );
  const cli = (...a: string[]) =>
    execFileSync('redis-cli', ['-p', String(port), ...a], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  // Up to 30 s: on a loaded machine a new redis-server can take seconds to answer.
  for (let i = 0; i < 600; i++) {
    try {
      if (cli('PING').trim() === 'PONG') break;
    } catch {
      // not up yet
    }
    await sleep(50);
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    dbsize: () => Number(cli('DBSIZE').trim()),
    stop: () => {
      proc.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

const agent = new Agent({ keepAlive: true, maxSockets: 64 });
let port = 0;

function send(method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent,
        headers: payload ? { ...headers, 'content-type': 'application/json' } : headers,
        timeout: 15_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(payload);
  });
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)] as T;
const randomIp = () => `10.${Math.floor(Math.random() * 80)}.${Math.floor(Math.random() * 250)}.1`; // 20,000 clients
const TOPICS = ['refund', 'shipping', 'password', 'invoice', 'warranty', 'delivery', 'account', 'discount'];
// The semantic cache keeps up to 10,000 entries per namespace by design: a small pool of questions fills it during
// warm-up, so the heap measured afterwards is the steady state (--questions 3000 shows the cache filling instead).
const QUESTIONS = Number(arg('questions', '100'));
const question = (n: number) => `How do I handle ${pick(TOPICS)} case number ${n % QUESTIONS} for my order?`;

const statuses = new Map<string, number>();
const count = (label: string) => statuses.set(label, (statuses.get(label) ?? 0) + 1);

/** One scenario, chosen by weight: a few requests in a row, as one client would send them. */
async function scenario(): Promise<void> {
  const ip = { 'x-forwarded-for': randomIp() };
  const r = Math.random() * 100;
  const track = (name: string, reply: Reply) => {
    count(reply.status >= 500 ? `${name} ${reply.status}` : `${Math.floor(reply.status / 100)}xx`);
    return reply;
  };
  if (r < 30) track('products', await send('GET', '/api/v1/products', ip));
  else if (r < 40) track('product', await send('GET', `/api/v1/products/${pick(['espresso', 'grinder', 'x'])}`, ip));
  else if (r < 48) track('health', await send('GET', '/api/v1/health', ip));
  else if (r < 52) track('ready', await send('GET', '/api/v1/health/redis', ip));
  else if (r < 66) {
    const body = { model: 'demo', messages: [{ role: 'user', content: question(Math.floor(Math.random() * 1e9)) }] };
    track('llm', await send('POST', '/api/v1/llm/chat', { ...ip, 'x-tenant': pick(['a', 'b', 'c']) }, body));
  } else if (r < 76) {
    track('report', await send('POST', `/api/v1/reports/r${Math.floor(Math.random() * 5000)}/generate?wait=false`, ip));
  } else if (r < 80) {
    track('job', await send('POST', '/api/v1/jobs', ip, { type: 'welcome-email', to: 'soak@example.com' }));
  } else if (r < 83) {
    const user = pick(['alice', 'bob']);
    const login = track(
      'login',
      await send('POST', '/api/v1/auth/login', ip, { username: user, password: `${user}-password` }),
    );
    const cookie = String(login.headers['set-cookie'] ?? '').split(';')[0] ?? '';
    if (login.status === 200 && cookie) {
      track('me', await send('GET', '/api/v1/me', { ...ip, cookie }));
      track('sessions', await send('GET', '/api/v1/me/sessions', { ...ip, cookie }));
      track('logout', await send('POST', '/api/v1/auth/logout', { ...ip, cookie }));
    }
  } else if (r < 90) {
    track('me-anon', await send('GET', '/api/v1/me', { ...ip, cookie: `rk.sid=s%3A${Math.random()}` }));
  } else if (r < 96) {
    track('publish', await send('POST', '/api/v1/realtime/demo:soak', ip, { type: 'tick', data: { n: r } }));
  } else {
    track('metrics', await send('GET', '/api/v1/metrics', { ...ip, authorization: `Bearer ${ADMIN}` }));
  }
}

function slope(points: Array<[number, number]>): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, p) => s + p[0], 0) / n;
  const my = points.reduce((s, p) => s + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

async function parent(): Promise<void> {
  const minutes = Number(arg('minutes', '10'));
  const rate = Number(arg('rate', '100'));
  const warmupMin = Number(arg('warmup', '2'));
  const store = arg('store', 'memory');
  const redis = store === 'redis' ? await startRedis() : undefined;
  const proc: ChildProcess = spawn(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', __filename, '--child', store, '--redis', redis?.url ?? ''],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
  port = await new Promise<number>((resolve, reject) => {
    proc.once('message', (m) => resolve((m as { port: number }).port));
    proc.once('exit', (code) => reject(new Error(`demo exited with ${code}`)));
  });
  const heap = () =>
    new Promise<HeapSample>((resolve) => {
      const on = (m: unknown) => {
        const s = (m as { sample?: HeapSample }).sample;
        if (s) {
          proc.off('message', on);
          resolve(s);
        }
      };
      proc.on('message', on);
      proc.send('heap');
    });

  console.log(
    `soak: ${minutes} min at ${rate} scenarios/s on the ${store} store; load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  const start = Date.now();
  const end = start + minutes * 60_000;
  let inFlight = 0;
  let started = 0;
  let skipped = 0;
  let failed = 0;
  const ticker = setInterval(() => {
    for (let i = 0; i < rate / 10; i++) {
      if (inFlight >= 128) {
        skipped++;
        continue;
      }
      inFlight++;
      started++;
      scenario()
        .catch(() => {
          failed++;
        })
        .finally(() => {
          inFlight--;
        });
    }
  }, 100);

  const samples: Array<{ t: number } & HeapSample> = [];
  const mb = (b: number) => (b / 1048576).toFixed(1);
  console.log('  t(s)  heapUsed(MB)  heapTotal(MB)  rss(MB)  storeKeys  scenarios');
  while (Date.now() < end) {
    await sleep(10_000);
    const s = { t: Math.round((Date.now() - start) / 1000), ...(await heap()) };
    if (redis) s.storeKeys = redis.dbsize();
    samples.push(s);
    console.log(
      `${String(s.t).padStart(6)}  ${mb(s.heapUsed).padStart(12)}  ${mb(s.heapTotal).padStart(13)}  ${mb(s.rss).padStart(7)}  ${String(s.storeKeys).padStart(9)}  ${started}`,
    );
  }
  clearInterval(ticker);
  while (inFlight > 0) await sleep(100);

  const after = samples.filter((s) => s.t >= warmupMin * 60);
  const perMin = (field: 'heapUsed' | 'rss') =>
    slope(after.map((s) => [s.t / 60, s[field] / 1048576] as [number, number]));
  const first = after[0];
  const last = after[after.length - 1];
  const summary = {
    store,
    minutes,
    questionsPerTopic: QUESTIONS,
    rateTarget: rate,
    scenarios: started,
    skippedOverloaded: skipped,
    clientErrors: failed,
    responses: Object.fromEntries([...statuses].sort()),
    warmupMinutes: warmupMin,
    heapUsedMB: { afterWarmup: first && mb(first.heapUsed), end: last && mb(last.heapUsed) },
    heapSlopeMBPerMin: perMin('heapUsed').toFixed(3),
    rssSlopeMBPerMin: perMin('rss').toFixed(3),
    heapMaxMB: mb(Math.max(...after.map((s) => s.heapUsed))),
    heapMinMB: mb(Math.min(...after.map((s) => s.heapUsed))),
    storeKeys: { afterWarmup: first?.storeKeys, end: last?.storeKeys },
    loadAverage: loadavg().map((l) => Number(l.toFixed(1))),
  };
  console.log(JSON.stringify(summary, null, 2));
  proc.kill('SIGTERM');
  await new Promise((r) => proc.once('exit', r));
  redis?.stop();
  agent.destroy();
}

if (args[0] === '--child') {
  child(String(args[1]), arg('redis', '')).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
} else {
  parent().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
