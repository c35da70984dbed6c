// The app the fault-injection and Cluster suites drive, run as its own process (`node --import tsx`): every feature
// of the kit on one store (a Redis URL, the fault proxy's, or Cluster seed nodes), each on its own route so a request's wait is bounded by that feature's store
// calls alone. Each response names what the feature decided (`x-fault-reason`), and the process keeps per-route
// figures (count, status, reason, slowest) the suite reads and resets between phases. Unhandled rejections and
// uncaught exceptions are counted (and the exit code says so), never ignored.

import { randomBytes } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import { createRedisKit, KitError, LockTimeoutError, type RateLimitMiddleware, type Session } from '../../plugin/index';

const url = process.env.FAULT_REDIS_URL;
const clusterNodes = process.env.FAULT_CLUSTER_NODES?.split(',');
if (!url && !clusterNodes) throw new Error('FAULT_REDIS_URL or FAULT_CLUSTER_NODES is required');
const commandTimeoutMs = Number(process.env.FAULT_COMMAND_TIMEOUT_MS ?? 400);

const trouble = { unhandledRejections: 0, uncaughtExceptions: 0, last: '' };
process.on('unhandledRejection', (reason) => {
  trouble.unhandledRejections++;
  trouble.last = String((reason as Error)?.stack ?? reason);
  process.stderr.write(`fault-app: unhandled rejection: ${trouble.last}\n`);
});
process.on('uncaughtException', (error) => {
  trouble.uncaughtExceptions++;
  trouble.last = String(error?.stack ?? error);
  process.stderr.write(`fault-app: uncaught exception: ${trouble.last}\n`);
});

const warnings: Record<string, number> = {};
const kit = createRedisKit({
  ...(clusterNodes ? { cluster: clusterNodes } : { redis: url }),
  prefix: 'faults',
  commandTimeout: commandTimeoutMs,
  connectTimeout: 1000,
  circuitBreaker: { failureThreshold: 5, cooldown: 500 },
  health: { timeout: commandTimeoutMs },
  realtime: { authorize: () => true },
  logger: {
    info() {},
    warn(o: unknown) {
      const code = (o as { code?: string })?.code ?? 'warn';
      warnings[code] = (warnings[code] ?? 0) + 1;
    },
    error(o: unknown, msg?: string) {
      const code = (o as { code?: string })?.code ?? `error: ${msg ?? ''}`;
      warnings[code] = (warnings[code] ?? 0) + 1;
    },
  },
});

interface RouteFigures {
  count: number;
  maxMs: number;
  status: Record<string, number>;
  reason: Record<string, number>;
}
let figures: Record<string, RouteFigures> = {};
let usageRecorded = 0;

const app = express();
app.disable('x-powered-by');
app.use((req, res, next) => {
  if (req.path.startsWith('/_ctl')) return next();
  const started = performance.now();
  kit.usage.record({ workspace: 'faults', route: 'all' });
  usageRecorded++;
  res.on('close', () => {
    const label = (res.locals.label as string | undefined) ?? (req.originalUrl.split('?')[0] as string);
    const f = figures[label] ?? { count: 0, maxMs: 0, status: {}, reason: {} };
    figures[label] = f;
    f.count++;
    f.maxMs = Math.max(f.maxMs, performance.now() - started);
    const status = res.writableFinished ? String(res.statusCode) : 'aborted';
    f.status[status] = (f.status[status] ?? 0) + 1;
    const reason = String(res.getHeader('x-fault-reason') ?? res.getHeader('cache-status') ?? '-');
    f.reason[reason] = (f.reason[reason] ?? 0) + 1;
  });
  next();
});
const label = (name: string) => (_req: Request, res: Response, next: NextFunction) => {
  res.locals.label = name;
  next();
};

// Rate limits, one limiter per failure mode, all clients on one key; limits far above the load.
const limiters: Record<string, RateLimitMiddleware> = {};
for (const mode of ['open', 'closed', 'local'] as const) {
  limiters[mode] = kit.rateLimit({
    name: `faults-${mode}`,
    policies: [{ name: 'p', limit: 1_000_000, window: '1 m' }],
    keyBy: () => 'everyone',
    onStoreError: mode,
  });
  app.get(`/rl/${mode}`, label(`rl-${mode}`), limiters[mode], (req, res) => {
    const result = (req as Request & { rateLimit?: { reason?: string } }).rateLimit;
    res.setHeader('x-fault-reason', result?.reason ?? 'store');
    res.json({ reason: result?.reason ?? null });
  });
}

// Sessions: one middleware per failure mode, each with its own cookie.
const secret = randomBytes(32).toString('base64url');
for (const mode of ['fail', 'degrade'] as const) {
  const router = express.Router();
  router.use(kit.session({ secret, name: `s-${mode}`, onStoreError: mode }));
  router.post('/login', async (req, res, next) => {
    try {
      const session = req.session as unknown as Session;
      const user = randomBytes(6).toString('hex');
      session.user = user;
      await session.save();
      res.setHeader('x-fault-reason', req.sessionDegraded ? 'degraded' : 'saved');
      res.json({ user, degraded: req.sessionDegraded === true });
    } catch (error) {
      next(error);
    }
  });
  router.get('/me', (req, res) => {
    const user = (req.session as unknown as Session | undefined)?.user ?? null;
    res.setHeader('x-fault-reason', req.sessionDegraded ? 'degraded' : user ? 'loaded' : 'empty');
    res.json({ user, degraded: req.sessionDegraded === true });
  });
  app.use(`/s/${mode}`, label(`session-${mode}`), router);
}

// Response cache: a short TTL so misses (and stores) keep happening during the run.
let cacheFills = 0;
// Coalescing waits at most 1 s here (5 s by default): when the filler's result cannot be stored or announced (a
// reset storm), a waiter runs the handler itself after that wait, and its whole answer must fit the probe's bound.
app.get('/cache/item', label('cache'), kit.cache({ ttl: '1 s', coalesce: { wait: '1 s' } }), (_req, res) => {
  cacheFills++;
  res.json({ fill: cacheFills });
});

// Semantic cache: ten questions asked over and over; the "model" answers at once.
const llm = kit.semanticCache({ threshold: 0.85 });
app.post('/llm', label('semantic'), express.json(), async (req, res, next) => {
  try {
    const q = Number((req.body as { q?: unknown })?.q ?? 0) % 10;
    const result = await llm.wrap(
      { model: 'fault-model', messages: [{ role: 'user', content: `What is the capital of country number ${q}?` }] },
      async () => ({ answer: `capital ${q}` }),
    );
    res.setHeader('x-fault-reason', `${result.status}:${result.reason ?? result.kind ?? ''}`);
    res.json(result.response);
  } catch (error) {
    next(error);
  }
});

// Locks: one exclusive resource; holders must never overlap and fencing tokens must only grow.
let holders = 0;
let lockOverlaps = 0;
let lastToken = 0;
let tokenRegressions = 0;
app.post('/lock', label('lock'), async (_req, res, next) => {
  try {
    const token = await kit.locks.withLock(
      'faults:resource',
      async ({ fencingToken }) => {
        holders++;
        if (holders > 1) lockOverlaps++;
        if (fencingToken <= lastToken) tokenRegressions++;
        lastToken = Math.max(lastToken, fencingToken);
        await new Promise((r) => setTimeout(r, 5));
        holders--;
        return fencingToken;
      },
      { ttl: '3 s', waitTimeout: 200 },
    );
    res.setHeader('x-fault-reason', 'granted');
    res.json({ token });
  } catch (error) {
    if (error instanceof LockTimeoutError) {
      res.setHeader('x-fault-reason', 'busy');
      return void res.status(409).json({ error: 'busy' });
    }
    next(error);
  }
});

// Queue: jobs acknowledged with 202 must exist after any outage; a worker in this process completes them.
// A short lease: a job fetched by a call whose reply was lost (reset, timeout) stays active on the server until its
// lease ends, then is taken over; 3 s keeps that within the suite's wait (the default is 30 s).
const queue = kit.queue<{ n: number }>('faults', { attempts: 5, backoff: '100 ms', lease: '3 s' });
const completed = new Set<string>();
queue.process(
  async (job) => {
    completed.add(job.id);
    return { ok: true };
  },
  { concurrency: 4 },
);
app.post('/jobs', label('queue-add'), express.json(), async (req, res, next) => {
  try {
    const id = await queue.add({ n: Number((req.body as { n?: unknown })?.n ?? 0) });
    res.setHeader('x-fault-reason', 'added');
    res.status(202).json({ id });
  } catch (error) {
    next(error);
  }
});
app.get('/jobs/:id', label('queue-get'), async (req, res, next) => {
  try {
    const job = await queue.getJob(String(req.params.id));
    res.json(job ? { id: job.id, state: job.state, stalls: job.stalls, error: job.error ?? null } : null);
  } catch (error) {
    next(error);
  }
});

// Realtime: a server-side subscription made at start (it must survive the outages) and a publish route.
const received = new Set<number>();
app.post('/rt/publish', label('realtime-publish'), express.json(), async (req, res, next) => {
  try {
    const n = Number((req.body as { n?: unknown })?.n ?? 0);
    const { id } = await kit.realtime.publish('faults.events', { data: { n } });
    res.setHeader('x-fault-reason', 'published');
    res.json({ id });
  } catch (error) {
    next(error);
  }
});

kit.mount(app, { basePath: '/api/v1' });

app.get('/_ctl/stats', (_req, res) => {
  res.json({
    figures,
    trouble,
    warnings,
    lockOverlaps,
    tokenRegressions,
    completed: [...completed],
    received: [...received],
    circuit: kit.store.circuitState,
    queue: queue.localStats().local,
    limiters: Object.fromEntries(Object.entries(limiters).map(([k, v]) => [k, v.limiter.stats])),
  });
});
app.post('/_ctl/reset', (_req, res) => {
  figures = {};
  res.json({ ok: true });
});
app.post('/_ctl/usage', async (_req, res) => {
  try {
    await kit.usage.flush();
    const report = await kit.usage.query({ workspace: 'faults' });
    res.json({ recorded: usageRecorded, stored: report.totals.requests, stats: kit.usage.stats() });
  } catch (error) {
    res.status(503).json({ error: String(error) });
  }
});

app.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
  if (res.headersSent) return next(error);
  const status = error instanceof KitError ? error.status : 500;
  res.setHeader('x-fault-reason', error instanceof KitError ? error.code : 'unexpected');
  res.status(status).json({ error: String(error) });
});

async function main(): Promise<void> {
  // On a busy machine the first PING (connection set-up included) can outlast the command timeout: try again.
  for (let attempt = 1; ; attempt++) {
    try {
      await kit.ready();
      break;
    } catch (error) {
      if (attempt >= 20) throw error;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  await kit.realtime.subscribe('faults.events', (event) => {
    received.add(Number((event.data as { n?: unknown })?.n));
  });
  const server = app.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`);
  });
  process.on('SIGTERM', () => {
    server.close();
    server.closeAllConnections();
    void kit.close().finally(() => {
      process.exit(trouble.unhandledRejections + trouble.uncaughtExceptions > 0 ? 3 : 0);
    });
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`fault-app: start failed: ${String(error)}\n`);
  process.exit(2);
});
