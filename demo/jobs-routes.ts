// Demo routes for the job queue: POST /jobs enqueues a (simulated) e-mail and answers 202 with the job's id; GET
// /jobs/:id reports its state. Mount the router under the API base path: app.use('/api/v1', jobsRouter(kit)).

import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { KitError, type Queue, type RedisKit } from '../plugin/index.js';

export interface EmailJob {
  type: 'welcome-email';
  to: string;
  name?: string;
}

export interface JobsRoutesOptions {
  /** The queue jobs go to. @default kit.queue('emails', { attempts: 3 }) */
  queue?: Queue<EmailJob>;
  /** Run a simulated sender in this process. @default true */
  process?: boolean;
  /** How long the simulated send takes. @default 50 */
  sendDelayMs?: number;
}

const TYPES = new Set(['welcome-email']);
// Deliberately simple: the demo checks shape and size, a real sender would verify the address by mailing it.
const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,189}\.[^\s@]{1,63}$/;
const JOB_ID = /^[A-Za-z0-9_.:@=+-]{1,128}$/;

function problem(res: Response, status: number, detail: string): void {
  res.status(status).json({ error: detail });
}

export function jobsRouter(kit: RedisKit, options: JobsRoutesOptions = {}): Router {
  const queue = options.queue ?? kit.queue<EmailJob>('emails', { attempts: 3, backoff: { delay: '500 ms' } });
  const sendDelayMs = options.sendDelayMs ?? 50;
  if (options.process !== false) {
    queue.process(
      async (job) => {
        await new Promise((resolve) => setTimeout(resolve, sendDelayMs));
        return { sentTo: job.data.to, messageId: `demo-${job.id}` };
      },
      { concurrency: 5 },
    );
  }

  const router = express.Router();
  router.use('/jobs', express.json({ limit: '16kb' }));

  router.post('/jobs', async (req: Request, res: Response, next: NextFunction) => {
    try {
      const body = req.body as Record<string, unknown> | undefined;
      if (!body || typeof body !== 'object' || Array.isArray(body)) {
        return problem(res, 400, 'expected a JSON object: { "type": "welcome-email", "to": "someone@example.com" }');
      }
      if (typeof body.type !== 'string' || !TYPES.has(body.type)) {
        return problem(res, 400, `type: expected one of ${[...TYPES].join(', ')}`);
      }
      if (typeof body.to !== 'string' || body.to.length > 254 || !EMAIL.test(body.to)) {
        return problem(res, 400, 'to: expected an e-mail address');
      }
      if (body.name !== undefined && (typeof body.name !== 'string' || body.name.length > 100)) {
        return problem(res, 400, 'name: expected a string of at most 100 characters');
      }
      // A client retrying the same request sends the same Idempotency-Key and gets the same job.
      const key = req.get('idempotency-key');
      if (key !== undefined && (!JOB_ID.test(key) || /^\d+$/.test(key))) {
        return problem(res, 400, 'Idempotency-Key: 1-128 characters from A-Z a-z 0-9 _ . : @ = + -, not all digits');
      }
      const data: EmailJob = { type: 'welcome-email', to: body.to };
      if (typeof body.name === 'string') data.name = body.name;
      const id = await queue.add(data, key ? { jobId: key } : undefined);
      const href = `${req.baseUrl}/jobs/${encodeURIComponent(id)}`;
      res.status(202).location(href).json({ id, state: 'waiting', href });
    } catch (error) {
      next(error);
    }
  });

  router.get('/jobs/:id', async (req: Request, res: Response, next: NextFunction) => {
    try {
      const id = String(req.params.id);
      if (!JOB_ID.test(id)) return problem(res, 400, 'id: not a job id');
      const job = await queue.getJob(id);
      if (!job) return problem(res, 404, 'no such job (finished jobs are kept for an hour)');
      res.json({
        id: job.id,
        type: job.data.type,
        state: job.state,
        attemptsMade: job.attemptsMade,
        attempts: job.attempts,
        addedAt: new Date(job.addedAt).toISOString(),
        finishedAt: job.finishedAt === null ? null : new Date(job.finishedAt).toISOString(),
        ...(job.result === undefined ? {} : { result: job.result }),
        ...(job.error === undefined ? {} : { error: job.error }),
      });
    } catch (error) {
      next(error);
    }
  });

  // Malformed JSON and kit errors (store unavailable: 503; bad job input: 400) answer as JSON, never a bare 500.
  router.use('/jobs', (error: unknown, _req: Request, res: Response, next: NextFunction) => {
    const status = error instanceof KitError ? error.status : (error as { status?: number; type?: string }).status;
    if (typeof status !== 'number' || status < 400 || status > 599) return next(error);
    problem(res, status, status >= 500 ? 'the job store is unavailable, try again shortly' : (error as Error).message);
  });
  return router;
}
