// Demo routes for kit.locks, built only on the public entry point: a report generated once however many clients
// ask at the same time, and a document store that accepts a write only with a fencing token newer than the last.

import express, { type NextFunction, type Request, type Response, Router } from 'express';
import { KitError, LockTimeoutError, type RedisKit } from '../plugin/index';

export interface LocksDemoOptions {
  /** The expensive work. Gets the report id and a signal that aborts if the lock is lost. */
  generate?: (id: string, signal: AbortSignal) => Promise<unknown>;
  /** How long a generated report is kept, in ms. @default 60_000 */
  reportTtlMs?: number;
  /** Longest a client waits for another client's generation, in ms. @default 30_000 */
  waitTimeoutMs?: number;
}

interface StoredReport {
  id: string;
  /** How many times the generation ran for this id: 1 however many clients asked at once. */
  runs: number;
  fencingToken: number;
  generatedAt: string;
  data: unknown;
}

const ID = /^[A-Za-z0-9_-]{1,64}$/;
const defaultGenerate = async (id: string): Promise<unknown> => {
  await new Promise((resolve) => setTimeout(resolve, 200)); // stands for a slow query or an LLM call
  return { title: `Report ${id}`, rows: 3 };
};

/**
 * `POST /reports/:id/generate[?wait=false]` and `GET|PUT /documents/:id`. Mount under the app's API base path.
 * The document store is in this process's memory: it stands for any resource that checks fencing tokens
 * (a database row with a `fencing_token` column and a conditional UPDATE does the same across processes).
 */
export function locksDemoRoutes(kit: RedisKit, options: LocksDemoOptions = {}): Router {
  const generate = options.generate ?? defaultGenerate;
  const reportTtlMs = options.reportTtlMs ?? 60_000;
  const waitTimeoutMs = options.waitTimeoutMs ?? 30_000;
  const documents = new Map<string, { content: string; fencingToken: number; updatedAt: string }>();
  const router = Router();
  router.use(express.json({ limit: '64kb' }));

  const checkId = (req: Request, res: Response): string | undefined => {
    const id = String(req.params.id);
    if (ID.test(id)) return id;
    res.status(400).json({ error: 'id: 1-64 characters from A-Z a-z 0-9 _ -' });
    return undefined;
  };

  router.post('/reports/:id/generate', async (req, res, next) => {
    try {
      const id = checkId(req, res);
      if (!id) return;
      const wait = req.query.wait !== 'false';
      const { store } = kit;
      const reportKey = store.keys.key('demo-report', id, 'body');
      const runsKey = store.keys.key('demo-report', id, 'runs');
      const cached = await store.get(reportKey);
      if (cached) return void res.json({ ...(JSON.parse(cached) as StoredReport), cached: true });
      const report = await kit.locks.withLock(
        `report:${id}`,
        async ({ signal, fencingToken }) => {
          // Whoever waited for the lock finds the report the holder before it generated.
          const done = await store.get(reportKey);
          if (done) return { ...(JSON.parse(done) as StoredReport), cached: true };
          const data = await generate(id, signal);
          signal.throwIfAborted(); // the lease was lost: another generation may be under way; do not store
          const { value: runs } = await store.incrBy(runsKey, 1, reportTtlMs);
          const fresh: StoredReport = { id, runs, fencingToken, generatedAt: new Date().toISOString(), data };
          await store.set(reportKey, JSON.stringify(fresh), reportTtlMs);
          return { ...fresh, cached: false };
        },
        { waitTimeout: wait ? waitTimeoutMs : 0 },
      );
      res.json(report);
    } catch (error) {
      if (error instanceof LockTimeoutError) {
        res.set('Retry-After', '1');
        return void res.status(409).json({ error: 'this report is being generated; retry or ask with wait=true' });
      }
      next(error);
    }
  });

  router.get('/documents/:id', (req, res) => {
    const id = checkId(req, res);
    if (!id) return;
    const doc = documents.get(id);
    if (!doc) return void res.status(404).json({ error: 'no such document' });
    res.json({ id, ...doc });
  });

  router.put('/documents/:id', (req, res) => {
    const id = checkId(req, res);
    if (!id) return;
    const header = req.get('fencing-token');
    const raw: unknown = header ?? (req.body as { fencingToken?: unknown } | undefined)?.fencingToken;
    const token = typeof raw === 'string' && /^\d{1,16}$/.test(raw) ? Number(raw) : raw;
    if (typeof token !== 'number' || !Number.isSafeInteger(token) || token < 1) {
      return void res
        .status(400)
        .json({ error: 'a positive integer fencing token is required (Fencing-Token header)' });
    }
    const content = (req.body as { content?: unknown } | undefined)?.content;
    if (typeof content !== 'string') return void res.status(400).json({ error: 'content: expected a string' });
    const current = documents.get(id);
    // The whole point: a writer whose lease ended (paused, partitioned) holds an older token and is turned away.
    if (current && token <= current.fencingToken) {
      return void res.status(409).json({ error: 'stale fencing token', lastFencingToken: current.fencingToken });
    }
    const doc = { content, fencingToken: token, updatedAt: new Date().toISOString() };
    documents.set(id, doc);
    res.json({ id, ...doc });
  });

  router.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (error instanceof KitError)
      return void res.status(error.status).json({ error: error.message, code: error.code });
    next(error);
  });
  return router;
}
