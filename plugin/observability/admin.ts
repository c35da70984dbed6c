// The protected routes: Prometheus `/metrics`, the JSON `/admin/redis-metrics` and the `/admin/dashboard` page.
// Data routes need `Authorization: Bearer <token>` (admin.token or REDIS_KIT_ADMIN_TOKEN), compared in constant
// time; `admin: { open: true }` lifts that, with a warning. With neither, they answer 403 and say how to configure.
// The dashboard page itself carries no data, so it is served to anyone and asks for the token in the browser.

import { createHash, timingSafeEqual } from 'node:crypto';
import { type NextFunction, type Request, type Response, Router } from 'express';
import { ConfigError } from '../core/errors.js';
import type { KitLogger } from '../core/logger.js';
import { assertKnownKeys, assertPlainObject } from '../core/options.js';
import { dashboardPage } from './dashboard.js';
import type { MetricsRegistry } from './metrics.js';
import type { RedisMetrics } from './redis-metrics.js';

export interface AdminOptions {
  /**
   * Bearer token the admin and metrics routes require. At least 16 characters.
   * @default process.env.REDIS_KIT_ADMIN_TOKEN
   */
  token?: string;
  /** Serves the admin and metrics routes without a credential (logged as a warning). @default false */
  open?: boolean;
}

export interface AdminConfig {
  tokenDigest: Buffer | undefined;
  open: boolean;
}

const MIN_TOKEN = 16;

export function parseAdminOptions(
  options: AdminOptions | undefined,
  env: Record<string, string | undefined>,
): AdminConfig {
  const admin = options ?? {};
  assertPlainObject(admin, 'admin');
  assertKnownKeys(admin, ['token', 'open'], 'admin');
  if (admin.open !== undefined && typeof admin.open !== 'boolean') {
    throw new ConfigError(`admin.open: expected true or false, got ${JSON.stringify(admin.open)}`);
  }
  const token = admin.token ?? env.REDIS_KIT_ADMIN_TOKEN ?? undefined;
  if (token !== undefined && (typeof token !== 'string' || token.length < MIN_TOKEN)) {
    throw new ConfigError(
      `admin.token: expected a string of at least ${MIN_TOKEN} characters (e.g. from \`openssl rand -hex 24\`)`,
    );
  }
  return { tokenDigest: token ? digest(token) : undefined, open: admin.open === true };
}

// Comparing fixed-length digests keeps timingSafeEqual's equal-length requirement from leaking the token's length.
function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

function send(res: Response, status: number, code: string, message: string): void {
  res.status(status).set('Cache-Control', 'no-store').json({ error: { code, message } });
}

export function adminGuard(config: AdminConfig, logger: KitLogger) {
  let warned = false;
  return (req: Request, res: Response, next: NextFunction): void => {
    if (config.open) {
      if (!warned) {
        warned = true;
        logger.warn(
          { code: 'ERR_KIT_ADMIN_OPEN' },
          'admin and metrics routes are served without a credential (admin.open is true): keep them off the internet',
        );
      }
      next();
      return;
    }
    if (!config.tokenDigest) {
      if (!warned) {
        warned = true;
        logger.warn(
          { code: 'ERR_KIT_ADMIN_DISABLED' },
          'admin and metrics routes refuse every request: set REDIS_KIT_ADMIN_TOKEN (or admin.token), see docs/observability.md',
        );
      }
      send(
        res,
        403,
        'ERR_KIT_ADMIN_DISABLED',
        'no admin token is configured: set REDIS_KIT_ADMIN_TOKEN or admin.token',
      );
      return;
    }
    const header = req.get('authorization') ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match || !timingSafeEqual(digest(match[1] as string), config.tokenDigest)) {
      res.set('WWW-Authenticate', 'Bearer realm="express-redis-kit"');
      send(res, 401, 'ERR_KIT_ADMIN_UNAUTHORIZED', 'a valid bearer token is required');
      return;
    }
    next();
  };
}

export function adminRouter(
  config: AdminConfig,
  logger: KitLogger,
  registry: MetricsRegistry,
  redisMetrics: RedisMetrics,
): Router {
  const router = Router();
  const guard = adminGuard(config, logger);

  router.get('/metrics', guard, (_req, res, next) => {
    registry
      .registry()
      .then(async (prom) => {
        const text = await prom.metrics();
        res.status(200).set('Cache-Control', 'no-store').type(prom.contentType).send(text);
      })
      .catch((error: unknown) => {
        if (error instanceof ConfigError) send(res, 501, 'ERR_KIT_PROM_CLIENT_MISSING', error.message);
        else next(error);
      });
  });

  router.get('/admin/redis-metrics', guard, (_req, res, next) => {
    redisMetrics.report().then((report) => {
      res.status(200).set('Cache-Control', 'no-store').json(report);
    }, next);
  });

  router.get('/admin/dashboard', (_req, res) => {
    res
      .status(200)
      .type('html')
      .set('Cache-Control', 'no-store')
      // The page is self-contained: inline script and style only, nothing fetched from elsewhere but the JSON API.
      .set(
        'Content-Security-Policy',
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
      )
      .set('Referrer-Policy', 'no-referrer')
      .send(dashboardPage());
  });

  return router;
}
