// The demo host app: uses only the package's public entry point, wiring every feature the way a product would
// (sessions and login, rate limits, cached catalogue, semantic LLM cache, locks, jobs, usage, health, metrics).

import { randomBytes } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import {
  createRedisKit,
  KitError,
  type RedisKit,
  type RedisKitOptions,
  type Session,
  UsageQueryError,
} from '../plugin/index.js';
import { type Accounts, createAccounts, DEMO_ACCOUNTS, type DemoUser } from './accounts.js';
import { jobsRouter } from './jobs-routes.js';
import { createLlmRoutes } from './llm-routes.js';
import { locksDemoRoutes } from './locks-routes.js';
import { openApiRouter } from './openapi.js';
import { demoRealtimeOptions, realtimeDemoRoutes } from './realtime-routes.js';

export interface DemoApp {
  app: Express;
  kit: RedisKit;
}

export interface DemoOptions {
  /** Signs the session cookie. @default process.env.SESSION_SECRET, else random per run (sessions end on restart) */
  sessionSecret?: string;
  /** Requests per minute per client on the API. @default 300 */
  apiLimit?: number;
  /** Login attempts per minute per client. @default 10 */
  loginLimit?: number;
  /** Simulated LLM latency range in ms. @default [600, 1200] */
  llmLatencyMs?: [number, number];
  /**
   * Numbered catalogue items `1`..`catalogueSize`, answered by `GET /products/:id` besides the named products (the
   * load scenarios draw a Zipf-distributed mix of them). They are not listed by `GET /products`. @default 1000
   */
  catalogueSize?: number;
  /** Simulated database time of each catalogue read that reaches the handler (a cache miss), in ms. @default 0 */
  catalogueLatencyMs?: number;
  /** Simulated work of one report generation (`POST /reports/:id/generate`), in ms. @default 200 */
  reportMs?: number;
}

interface Product {
  id: string;
  name: string;
  price: number;
  updatedAt: string;
}

const PRODUCT_ID = /^[a-z0-9-]{1,40}$/;
const SESSION_ID = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The demo's knobs, for load tests (npm run load): DEMO_API_LIMIT and DEMO_LOGIN_LIMIT (requests a minute per
 * client), DEMO_LLM_LATENCY_MS ('lo,hi'), DEMO_CATALOGUE_SIZE, DEMO_CATALOGUE_MS and DEMO_REPORT_MS.
 */
export function demoOptionsFromEnv(env: Record<string, string | undefined>): DemoOptions {
  const int = (name: string, min: number): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === '') return undefined;
    const value = Number(raw);
    if (!Number.isSafeInteger(value) || value < min) throw new Error(`${name}: expected a whole number >= ${min}`);
    return value;
  };
  const options: DemoOptions = {};
  const apiLimit = int('DEMO_API_LIMIT', 1);
  const loginLimit = int('DEMO_LOGIN_LIMIT', 1);
  const catalogueSize = int('DEMO_CATALOGUE_SIZE', 0);
  const catalogueLatencyMs = int('DEMO_CATALOGUE_MS', 0);
  const reportMs = int('DEMO_REPORT_MS', 0);
  if (apiLimit !== undefined) options.apiLimit = apiLimit;
  if (loginLimit !== undefined) options.loginLimit = loginLimit;
  if (catalogueSize !== undefined) options.catalogueSize = catalogueSize;
  if (catalogueLatencyMs !== undefined) options.catalogueLatencyMs = catalogueLatencyMs;
  if (reportMs !== undefined) options.reportMs = reportMs;
  const llm = env.DEMO_LLM_LATENCY_MS;
  if (llm) {
    const [lo, hi = lo] = llm.split(',').map(Number);
    if (!Number.isFinite(lo) || !Number.isFinite(hi) || (lo as number) < 0 || (hi as number) < (lo as number)) {
      throw new Error("DEMO_LLM_LATENCY_MS: expected 'lo,hi' in ms, e.g. '20,60'");
    }
    options.llmLatencyMs = [lo as number, hi as number];
  }
  return options;
}

/** RFC 9457 problem details, the error body of every demo route that has no feature-specific one. */
function problem(res: Response, status: number, title: string, detail: string): void {
  res.status(status).type('application/problem+json').json({ type: 'about:blank', title, status, detail });
}

export function createDemoApp(options: RedisKitOptions = {}, demo: DemoOptions = {}): DemoApp {
  const kit = createRedisKit({ prefix: 'demo', realtime: demoRealtimeOptions, ...options });
  const accounts = createAccounts();
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');

  // Usage is counted per workspace and user, read from res.locals when each response finishes.
  app.use(kit.observe({ usage: { skip: (req) => req.path.startsWith('/docs') } }));

  const apiLimit = demo.apiLimit ?? 300;
  // One limiter for the whole API (health probes excepted: a load balancer must never be refused), and a
  // stricter one on login against password guessing.
  app.use(
    '/api/v1',
    kit.rateLimit({
      name: 'api',
      policies: [{ name: 'api', limit: apiLimit, window: '1 m' }],
      skip: (req) => req.path === '/health' || req.path.startsWith('/health/') || isLogin(req),
    }),
  );
  // Login is decided by one limiter holding both policies, so its answers list both in RateLimit-Policy (one
  // setHeader would otherwise overwrite the other). Its 'api' counter is its own: login requests do not use up
  // the rest of the API's quota.
  const loginLimit = kit.rateLimit({
    name: 'login',
    policies: [
      { name: 'api', limit: apiLimit, window: '1 m' },
      { name: 'login', limit: demo.loginLimit ?? 10, window: '1 m' },
    ],
  });

  const secret = demo.sessionSecret ?? process.env.SESSION_SECRET ?? randomBytes(32).toString('base64url');
  app.use('/api/v1', kit.session({ secret, idleTimeout: '2 h', absoluteTimeout: '1 d' }));
  app.use('/api/v1', (req, res, next) => {
    const user = currentUser(req, accounts);
    if (user) {
      res.locals.workspace = user.workspace;
      res.locals.userId = user.id;
    }
    next();
  });

  kit.mount(app, { basePath: '/api/v1' });
  app.use('/api/v1', authRoutes(kit, accounts, loginLimit));
  app.use('/api/v1', productRoutes(kit, accounts, demo));
  app.use('/api/v1', usageRoutes(kit, accounts));
  app.use(createLlmRoutes({ kit, latencyMs: demo.llmLatencyMs, cacheOptions: { threshold: 0.85 } }));
  app.use('/api/v1', jobsRouter(kit));
  // Last of the API routers: it parses JSON for every request that reaches it.
  app.use('/api/v1', locksDemoRoutes(kit, reportOptions(demo.reportMs)));

  // The realtime collaboration page (/realtime); its API (SSE, publish, presence) is served by kit.mount() above,
  // for `demo:` channels only (demoRealtimeOptions).
  app.use(realtimeDemoRoutes({ apiBase: '/api/v1' }));

  app.use(openApiRouter());
  app.get('/', (_req, res) => {
    res.type('html').send(landingPage(kit));
  });

  app.use('/api/v1', (req, res) => {
    problem(res, 404, 'Not Found', `no route ${req.method} ${req.baseUrl}${req.path}; see /docs`);
  });
  // Malformed JSON, oversized bodies and kit errors answer as problem details; nothing a client sends is a 500.
  app.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(error);
    const status = error instanceof KitError ? error.status : (error as { status?: unknown })?.status;
    if (typeof status === 'number' && status >= 400 && status < 600) {
      const detail = status >= 500 ? 'the store is unavailable, try again shortly' : (error as Error).message;
      return problem(res, status, STATUS_CODES[status] ?? 'Error', detail);
    }
    kit.logger.error({ err: error }, 'demo: unhandled error');
    problem(res, 500, 'Internal Server Error', 'unexpected error');
  });

  return { app, kit };
}

// req.session is typed by @types/express-session when that is installed; this is the kit's Session.
const sessionOf = (req: Request) => req.session as unknown as Session;

const isLogin = (req: Request) => req.method === 'POST' && req.path === '/auth/login';

function currentUser(req: Request, accounts: Accounts): DemoUser | undefined {
  const id = (req.session as unknown as Session | undefined)?.user;
  return typeof id === 'string' ? accounts.get(id) : undefined;
}

function requireUser(accounts: Accounts) {
  return (req: Request, res: Response, next: NextFunction) => {
    const user = currentUser(req, accounts);
    if (!user) return problem(res, 401, 'Unauthorized', 'log in first: POST /api/v1/auth/login');
    res.locals.user = user;
    next();
  };
}

function authRoutes(kit: RedisKit, accounts: Accounts, loginLimit: express.RequestHandler): express.Router {
  const router = express.Router();
  const json = express.json({ limit: '4kb' });
  const signedIn = requireUser(accounts);

  router.post('/auth/login', loginLimit, json, async (req, res, next) => {
    try {
      const { username, password } = (req.body ?? {}) as { username?: unknown; password?: unknown };
      if (
        typeof username !== 'string' ||
        typeof password !== 'string' ||
        username.length > 100 ||
        password.length > 200
      ) {
        return problem(res, 400, 'Bad Request', 'expected JSON { "username": string, "password": string }');
      }
      const user = await accounts.verify(username, password);
      if (!user) return problem(res, 401, 'Unauthorized', 'unknown user or wrong password');
      const session = sessionOf(req);
      session.user = user.id;
      await session.login(user.id); // new session id (no fixation), indexed under the user
      res.json({ user, sessionId: session.id });
    } catch (error) {
      next(error);
    }
  });

  router.post('/auth/logout', signedIn, async (req, res, next) => {
    try {
      await sessionOf(req).destroy();
      res.status(204).end();
    } catch (error) {
      next(error);
    }
  });

  router.get('/me', signedIn, (req, res) => {
    res.json({ user: res.locals.user as DemoUser, sessionId: sessionOf(req).id });
  });

  router.get('/me/sessions', signedIn, async (req, res, next) => {
    try {
      const user = res.locals.user as DemoUser;
      const list = await kit.sessions.list(user.id);
      res.json({ sessions: list.map((s) => toSessionView(s, sessionOf(req).id)) });
    } catch (error) {
      next(error);
    }
  });

  router.delete('/me/sessions/:id', signedIn, async (req, res, next) => {
    try {
      const id = String(req.params.id);
      if (!SESSION_ID.test(id)) return problem(res, 400, 'Bad Request', 'id: not a session id');
      const user = res.locals.user as DemoUser;
      // Only one's own sessions: the id must be in this user's index, or it is "not found" (no probing).
      const mine = await kit.sessions.list(user.id);
      if (!mine.some((s) => s.id === id)) return problem(res, 404, 'Not Found', 'no such session of yours');
      await kit.sessions.revoke(id);
      res.status(204).end();
    } catch (error) {
      next(error);
    }
  });

  router.delete('/me/sessions', signedIn, async (req, res, next) => {
    try {
      const user = res.locals.user as DemoUser;
      const keepCurrent = req.query.keepCurrent === 'true';
      const revoked = await kit.sessions.revokeAll(user.id, keepCurrent ? { except: sessionOf(req).id } : undefined);
      res.json({ revoked });
    } catch (error) {
      next(error);
    }
  });
  return router;
}

function toSessionView(
  s: { id: string; created: number; lastSeen: number; ip?: string; userAgent?: string },
  current: string,
) {
  return {
    id: s.id,
    current: s.id === current,
    createdAt: new Date(s.created).toISOString(),
    lastSeenAt: new Date(s.lastSeen).toISOString(),
    ip: s.ip ?? null,
    userAgent: s.userAgent ?? null,
  };
}

/** Report generation that takes `ms` (the routes' own default, 200 ms, when unset). */
function reportOptions(ms: number | undefined) {
  if (ms === undefined) return {};
  return {
    generate: async (id: string) => {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return { title: `Report ${id}`, rows: 3 };
    },
  };
}

const NUMBERED_ID = /^[1-9][0-9]{0,6}$/;

function productRoutes(kit: RedisKit, accounts: Accounts, demo: DemoOptions): express.Router {
  const catalogue = new Map<string, Product>();
  const now = new Date().toISOString();
  for (const [id, name, price] of [
    ['espresso', 'Espresso beans, 1 kg', 24.5],
    ['grinder', 'Burr grinder', 129],
    ['kettle', 'Gooseneck kettle', 59.9],
  ] as const) {
    catalogue.set(id, { id, name, price, updatedAt: now });
  }
  const catalogueSize = demo.catalogueSize ?? 1000;
  const latencyMs = demo.catalogueLatencyMs ?? 0;
  const lookup = (id: string): Product | undefined => {
    const stored = catalogue.get(id);
    if (stored || !NUMBERED_ID.test(id) || Number(id) > catalogueSize) return stored;
    // Numbered items are made on read, the same every time, so a large catalogue costs no memory.
    const n = Number(id);
    return { id, name: `Catalogue item ${n}`, price: 5 + ((n * 37) % 200), updatedAt: now };
  };
  const database = () => (latencyMs > 0 ? new Promise((resolve) => setTimeout(resolve, latencyMs)) : undefined);
  const router = express.Router();
  const cached = kit.cache({ ttl: '30 s', tags: ['products'] });

  router.get('/products', cached, async (_req, res) => {
    await database();
    res.json({ products: [...catalogue.values()] });
  });

  router.get('/products/:id', cached, async (req, res) => {
    await database();
    const product = lookup(String(req.params.id));
    if (!product) return problem(res, 404, 'Not Found', 'no such product');
    res.json(product);
  });

  // Reads are public (and cached); writes need a logged-in user.
  router.put('/products/:id', requireUser(accounts), express.json({ limit: '4kb' }), async (req, res, next) => {
    try {
      const id = String(req.params.id);
      if (!PRODUCT_ID.test(id)) return problem(res, 400, 'Bad Request', 'id: 1-40 characters from a-z 0-9 -');
      const body = (req.body ?? {}) as { name?: unknown; price?: unknown };
      if (typeof body.name !== 'string' || body.name.length < 1 || body.name.length > 200) {
        return problem(res, 400, 'Bad Request', 'name: expected a string of 1 to 200 characters');
      }
      if (typeof body.price !== 'number' || !Number.isFinite(body.price) || body.price < 0) {
        return problem(res, 400, 'Bad Request', 'price: expected a number >= 0');
      }
      const product: Product = { id, name: body.name, price: body.price, updatedAt: new Date().toISOString() };
      const created = !lookup(id);
      catalogue.set(id, product);
      // Every cached list and item carries the 'products' tag: one call drops them on every instance.
      await kit.cache.invalidate({ tags: ['products'] });
      res.status(created ? 201 : 200).json(product);
    } catch (error) {
      next(error);
    }
  });
  return router;
}

function usageRoutes(kit: RedisKit, accounts: Accounts): express.Router {
  const router = express.Router();
  router.get('/usage', requireUser(accounts), async (req, res, next) => {
    try {
      const { from, to, granularity } = req.query;
      for (const [name, value] of Object.entries({ from, to, granularity })) {
        if (value !== undefined && typeof value !== 'string') {
          return problem(res, 400, 'Bad Request', `${name}: expected a single value`);
        }
      }
      const report = await kit.usage.query({
        workspace: (res.locals.user as DemoUser).workspace,
        ...(from === undefined ? {} : { from: from as string }),
        ...(to === undefined ? {} : { to: to as string }),
        ...(granularity === undefined ? {} : { granularity: granularity as 'hour' }),
      });
      res.json(report);
    } catch (error) {
      if (error instanceof UsageQueryError) return problem(res, 400, 'Bad Request', error.message);
      next(error);
    }
  });
  return router;
}

function landingPage(kit: RedisKit): string {
  const accounts = DEMO_ACCOUNTS.map((a) => `<code>${a.id}</code> / <code>${a.password}</code>`).join(' and ');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>express-redis-kit demo</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}code{background:#f3f3f3;padding:.1em .3em;border-radius:3px}</style>
</head><body>
<h1>express-redis-kit demo</h1>
<p>Store: <strong>${kit.mode}</strong>${kit.mode === 'memory' ? ' (embedded; set <code>REDIS_URL</code> to use Redis)' : ''}.</p>
<p>Demo accounts: ${accounts}.</p>
<h2>Try it</h2>
<ul>
<li><a href="/docs">/docs</a>: Swagger UI for every route (try them from the browser; the session cookie is sent along).</li>
<li><strong>Sessions</strong>: <code>POST /api/v1/auth/login</code> with <code>{"username":"alice","password":"alice-password"}</code>, then <code>GET /api/v1/me/sessions</code>; log in again from another browser and revoke one session, or all with <code>DELETE /api/v1/me/sessions</code>.</li>
<li><strong>Rate limits</strong>: every API answer carries <code>RateLimit</code> and <code>RateLimit-Policy</code>; login allows 10 attempts a minute, then 429.</li>
<li><strong>Response cache</strong>: <a href="/api/v1/products">GET /api/v1/products</a> twice and watch <code>Cache-Status</code> turn to a hit; <code>PUT /api/v1/products/{id}</code> drops it.</li>
<li><strong>Semantic LLM cache</strong>: <code>POST /api/v1/llm/chat</code>, then ask the same question in other words: the second answer comes from the cache (<code>X-LLM-Cache</code>).</li>
<li><strong>Locks</strong>: call <code>POST /api/v1/reports/{id}/generate</code> many times at once: it runs once.</li>
<li><strong>Jobs</strong>: <code>POST /api/v1/jobs</code> queues a simulated e-mail; <code>GET /api/v1/jobs/{id}</code> follows it.</li>
<li><strong>Usage</strong>: <code>GET /api/v1/usage</code> (logged in) shows your workspace's requests.</li>
<li><a href="/api/v1/health">GET /api/v1/health</a>: liveness, no store call.</li>
<li><a href="/api/v1/health/redis">GET /api/v1/health/redis</a>: store readiness in <code>application/health+json</code>.</li>
<li><a href="/realtime">Realtime collaboration</a>: open it in two windows to see presence and live messages (Server-Sent Events through the kit; the browser never talks to Redis).</li>
<li><a href="/api/v1/admin/dashboard">Live metrics dashboard</a> (asks for the admin token; <code>npm start</code> prints a link carrying it).</li>
</ul>
</body></html>`;
}
