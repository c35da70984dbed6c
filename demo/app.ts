// The demo host app: uses only the package's public entry point, the way a product would. It grows with each
// feature; today it serves the kit's health routes and a landing page.

import express, { type Express } from 'express';
import { createRedisKit, type RedisKit, type RedisKitOptions } from '../plugin/index.js';
import { openApiRouter } from './openapi.js';

export interface DemoApp {
  app: Express;
  kit: RedisKit;
}

export function createDemoApp(options: RedisKitOptions = {}): DemoApp {
  const kit = createRedisKit({ prefix: 'demo', ...options });
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  app.use(kit.metrics());
  app.use(kit.usage());
  kit.mount(app, { basePath: '/api/v1' });
  app.use(openApiRouter());

  app.get('/', (_req, res) => {
    res.type('html').send(landingPage(kit));
  });

  return { app, kit };
}

function landingPage(kit: RedisKit): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>express-redis-kit demo</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}code{background:#f3f3f3;padding:.1em .3em;border-radius:3px}</style>
</head><body>
<h1>express-redis-kit demo</h1>
<p>Store: <strong>${kit.mode}</strong>${kit.mode === 'memory' ? ' (embedded; set <code>REDIS_URL</code> to use Redis)' : ''}.</p>
<h2>Try it</h2>
<ul>
<li><a href="/docs">/docs</a>: Swagger UI for every route (try them from the browser).</li>
<li><a href="/api/v1/health">GET /api/v1/health</a>: liveness, no store call.</li>
<li><a href="/api/v1/health/redis">GET /api/v1/health/redis</a>: store readiness in <code>application/health+json</code>.</li>
<li><a href="/api/v1/admin/dashboard">Live metrics dashboard</a> (asks for the admin token; <code>npm start</code> prints a link carrying it).</li>
</ul>
</body></html>`;
}
