// Memory bounds of the embedded store: a million distinct rate-limit keys, a million distinct cached URLs and a
// million new sessions, each through the real code path (the limiter's contract; the cache and session
// middleware inside Express, fed in-process without sockets). After every 100,000 operations it checks that the
// store holds no more keys than `memory.maxKeys` and that every per-feature map in process stays under its cap, and
// it records the heap after a forced GC.
//
//   node --expose-gc --import tsx bench/memory-bounds.ts [--count 1000000] [--max-keys 1000000]
//     [--phases rate-limit,response-cache,sessions,session-store]   (session-store: ids through the express-session
//     Store adapter, without Express; not in the default list)
//
// A script, not a CI test: its table goes into docs/reliability.md ("Memory bounds and soak").

import { IncomingMessage, ServerResponse } from 'node:http';
import { loadavg } from 'node:os';
import { Duplex } from 'node:stream';
import express, { type Express } from 'express';
import { createRedisKit } from '../plugin/index';

const args = process.argv.slice(2);
const arg = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const COUNT = arg('count', 1_000_000);
const PHASES = (
  args.includes('--phases') ? String(args[args.indexOf('--phases') + 1]) : 'rate-limit,response-cache,sessions'
)
  .split(',')
  .map((p) => p.trim());
const MAX_KEYS = arg('max-keys', 1_000_000);
const STEP = 100_000;
const BATCH = 100;

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  console.error('run with node --expose-gc --import tsx bench/memory-bounds.ts');
  process.exit(2);
}

/** A socket that accepts and drops whatever the response writes: enough for Express and 'finish'. */
class NullSocket extends Duplex {
  remoteAddress = '127.0.0.1';
  override _read(): void {}
  override _write(_chunk: unknown, _encoding: BufferEncoding, callback: () => void): void {
    callback();
  }
}

/** Runs one request through the app in process; resolves with the status once the response has finished. */
function inject(app: Express, method: string, url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new NullSocket();
    const req = new IncomingMessage(socket as never);
    req.method = method;
    req.url = url;
    req.headers = { host: 'bench.local', ...headers };
    req.push(null);
    const res = new ServerResponse(req);
    res.assignSocket(socket as never);
    res.on('finish', () => {
      res.detachSocket(socket as never);
      socket.destroy();
      resolve(res.statusCode);
    });
    res.on('error', reject);
    (app as unknown as (q: IncomingMessage, s: ServerResponse) => void)(req, res);
  });
}

const kit = createRedisKit({ store: 'memory', memory: { maxKeys: MAX_KEYS }, logger: false, env: {} });
const engine = (kit.store as unknown as { engine: { size: number; evictions: number; data: Map<string, unknown> } })
  .engine;

interface Row {
  phase: string;
  done: number;
  storeKeys: number;
  evictions: number;
  heapMB: number;
  rssMB: number;
  seconds: number;
  extra: string;
}
const rows: Row[] = [];
let worstRatio = 0;

function keysByFeature(): string {
  const counts = new Map<string, number>();
  for (const key of engine.data.keys()) {
    const feature = key.split(':')[1] ?? '?';
    counts.set(feature, (counts.get(feature) ?? 0) + 1);
  }
  return [...counts].map(([f, n]) => `${f}=${n}`).join(' ');
}

/** The largest Set or Map held under one key (tag member sets, session hashes): one key can still grow. */
function largestCollection(): string {
  let best = 0;
  let where = '';
  for (const [key, entry] of engine.data) {
    const value = (entry as { value?: unknown }).value;
    const size = value instanceof Set || value instanceof Map ? value.size : 0;
    if (size > best) {
      best = size;
      where = key;
    }
  }
  return `largest collection ${best} members (${where.slice(0, 60)})`;
}

function checkpoint(phase: string, done: number, startedAt: number, extra = ''): void {
  gc?.();
  const m = process.memoryUsage();
  const external = Math.round(m.external / 1048576);
  worstRatio = Math.max(worstRatio, engine.size / MAX_KEYS);
  if (engine.size > MAX_KEYS) throw new Error(`${phase}: ${engine.size} keys, over memory.maxKeys ${MAX_KEYS}`);
  const row: Row = {
    phase,
    done,
    storeKeys: engine.size,
    evictions: engine.evictions,
    heapMB: Math.round(m.heapUsed / 1048576),
    rssMB: Math.round(m.rss / 1048576),
    seconds: Math.round((Date.now() - startedAt) / 100) / 10,
    extra: `external ${external} MB ${extra}`.trim(),
  };
  rows.push(row);
  console.log(
    `${phase.padEnd(15)} ${String(done).padStart(8)}  keys ${String(row.storeKeys).padStart(8)}  evicted ${String(row.evictions).padStart(8)}  heap ${String(row.heapMB).padStart(5)} MB  rss ${String(row.rssMB).padStart(5)} MB  ${row.seconds} s  ${row.extra}`,
  );
}

async function phase(name: string, op: (i: number) => Promise<void>, extra: () => string = () => ''): Promise<void> {
  const started = Date.now();
  for (let i = 0; i < COUNT; i += BATCH) {
    const batch: Array<Promise<void>> = [];
    for (let j = i; j < Math.min(COUNT, i + BATCH); j++) batch.push(op(j));
    await Promise.all(batch);
    if ((i + BATCH) % STEP === 0 || i + BATCH >= COUNT) checkpoint(name, Math.min(COUNT, i + BATCH), started, extra());
  }
}

async function main(): Promise<void> {
  console.log(
    `memory bounds: ${COUNT} operations per feature, memory.maxKeys ${MAX_KEYS}, node ${process.version}, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  checkpoint('start', 0, Date.now());

  // 1. Rate limiting: a million distinct clients, one in ten with a 1 kB key (hashed to a bounded id).
  const limiter = kit.rateLimiter({ name: 'mb', limit: 5, window: '1 h' });
  const long = 'x'.repeat(1024);
  if (PHASES.includes('rate-limit'))
    await phase('rate-limit', async (i) => {
      const result = await limiter.limit(i % 10 === 0 ? `${long}${i}` : `client-${i}`);
      if (!result.allowed) throw new Error('a first call for a fresh key was refused');
    });

  // 2. Response cache: a million distinct URLs through kit.cache() in Express (entries live an hour).
  const app = express();
  const cache = kit.cache({ ttl: '1 h' });
  app.get('/item/:id', cache, (req, res) => {
    res.json({ id: req.params.id, at: 'bench' });
  });
  const session = kit.session({ secret: 'memory-bounds-session-secret' });
  app.get('/login/:n', session, (req, res) => {
    (req.session as unknown as Record<string, unknown>).n = Number(req.params.n);
    res.json({ ok: true });
  });
  if (PHASES.includes('response-cache'))
    await phase(
      'response-cache',
      async (i) => {
        const status = await inject(app, 'GET', `/item/${i}?q=${i % 7}`);
        if (status !== 200) throw new Error(`GET /item/${i}: ${status}`);
      },
      () => `stored=${kit.cache.stats().stored}; ${largestCollection()}`,
    );

  // 3. Sessions: a million first visits that each write to a new session (no cookie sent: every one is new).
  if (PHASES.includes('sessions'))
    await phase('sessions', async (i) => {
      const status = await inject(app, 'GET', `/login/${i}`);
      if (status !== 200) throw new Error(`GET /login/${i}: ${status}`);
    });

  // 4. The same through the express-session Store adapter (no Express in the way): a million distinct session ids.
  if (PHASES.includes('session-store')) {
    const store = kit.sessionStore();
    await phase(
      'session-store',
      async (i) => {
        await store.set(`sid-${i}`, { cookie: { originalMaxAge: 3_600_000 }, n: i } as never);
      },
      largestCollection,
    );
  }

  console.log(`by feature at the end: ${keysByFeature()}; ${largestCollection()}`);
  console.log(
    JSON.stringify(
      {
        count: COUNT,
        maxKeys: MAX_KEYS,
        largestStoreKeys: Math.max(...rows.map((r) => r.storeKeys)),
        worstFillOfCap: Number(worstRatio.toFixed(4)),
        evictions: engine.evictions,
        heapMBPeak: Math.max(...rows.map((r) => r.heapMB)),
        rows: rows.map((r) => [r.phase, r.done, r.storeKeys, r.evictions, r.heapMB, r.rssMB, r.seconds]),
        loadAverage: loadavg().map((l) => Number(l.toFixed(1))),
      },
      null,
      1,
    ),
  );
  await kit.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
