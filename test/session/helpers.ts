// Shared pieces of the session tests: a small app over kit.session(), cookie helpers and a store-call counter.

import express, { type Express, type Request } from 'express';
import type { RedisKit, Session, SessionOptions } from '../../plugin/index';

/** req.session as the kit types it (the tests do not depend on @types/express-session's global augmentation). */
export const S = (req: Request): Session => (req as unknown as { session: Session }).session;

export const SECRET = 'test-secret-0123456789abcdef0123456789';
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function sessionApp(kit: RedisKit, options: Partial<SessionOptions> = {}, extra?: (app: Express) => void) {
  const app = express();
  app.set('trust proxy', false);
  extra?.(app);
  app.use(kit.session({ secret: SECRET, ...options }));
  app.get('/ping', (_req, res) => {
    res.json({ ok: true });
  });
  app.get('/get/:field', (req, res) => {
    res.json({ value: S(req)[req.params.field as string] ?? null, id: S(req).id });
  });
  app.get('/all', (req, res) => {
    res.json({ data: { ...S(req) }, id: S(req).id, degraded: req.sessionDegraded === true });
  });
  app.post('/set/:field/:value', async (req, res) => {
    const delay = Number(req.query.delay ?? 0);
    if (delay) await sleep(delay);
    S(req)[req.params.field as string] = req.params.value;
    res.json({ id: S(req).id });
  });
  const meet = pairBarrier();
  app.post('/race/:field/:value', async (req, res) => {
    const session = S(req);
    await meet(Number(req.query.after ?? 0));
    session[req.params.field as string] = req.params.value;
    res.json({ id: session.id });
  });
  app.post('/del/:field', (req, res) => {
    delete S(req)[req.params.field as string];
    res.json({ id: S(req).id });
  });
  app.post('/login/:user', async (req, res, next) => {
    try {
      await S(req).login(req.params.user as string);
      res.json({ id: S(req).id });
    } catch (error) {
      next(error);
    }
  });
  app.post('/destroy', (req, res, next) => {
    S(req).destroy((err) => (err ? next(err) : res.json({ session: S(req) ?? null })));
  });
  app.post('/regenerate', async (req: Request, res) => {
    const before = S(req).id;
    await S(req).regenerate();
    S(req).fresh = true;
    res.json({ before, after: S(req).id });
  });
  return app;
}

/**
 * A meeting point for two requests: each waits until both have arrived (both have loaded their session), so a
 * test of parallel writes really overlaps. `after` ms later the request goes on.
 */
export function pairBarrier(): (after: number) => Promise<void> {
  let waiting: Array<() => void> = [];
  return (after) =>
    new Promise<void>((resolve) => {
      waiting.push(resolve);
      if (waiting.length === 2) {
        for (const go of waiting) go();
        waiting = [];
      }
    }).then(() => sleep(after));
}

/** The `name=value` of the session cookie a response set, or undefined. */
export function setCookie(res: { headers: Record<string, unknown> }, name = 'rk.sid'): string | undefined {
  const raw = res.headers['set-cookie'];
  const list = Array.isArray(raw) ? (raw as string[]) : typeof raw === 'string' ? [raw] : [];
  const found = list.find((c) => c.startsWith(`${name}=`));
  return found?.split(';')[0];
}

export function fullSetCookie(res: { headers: Record<string, unknown> }, name = 'rk.sid'): string | undefined {
  const raw = res.headers['set-cookie'];
  const list = Array.isArray(raw) ? (raw as string[]) : [];
  return list.find((c) => c.startsWith(`${name}=`));
}

/** Records the store calls a kit makes (script names and commands on Redis, engine reads and writes on memory). */
export function recordStoreCalls(kit: RedisKit): string[] {
  const calls: string[] = [];
  const store = kit.store;
  if (store.mode === 'memory') {
    const engine = store.engine as unknown as Record<string, (...a: unknown[]) => unknown>;
    for (const method of ['get', 'set', 'delete', 'expire', 'update']) {
      const original = engine[method] as (...a: unknown[]) => unknown;
      engine[method] = (...args: unknown[]) => {
        calls.push(method);
        return original.apply(store.engine, args);
      };
    }
  } else {
    const s = store as unknown as Record<string, (...a: unknown[]) => unknown>;
    for (const method of ['script', 'command', 'pipeline']) {
      const original = s[method] as (...a: unknown[]) => unknown;
      s[method] = (...args: unknown[]) => {
        const first = args[0] as { name?: string } | string;
        calls.push(method === 'script' ? `script:${(first as { name: string }).name}` : `${method}:${String(first)}`);
        return original.apply(store, args);
      };
    }
  }
  return calls;
}
