// Loads openapi.yaml once, typed, and serves it as /openapi.json and through Swagger UI at /docs (assets from the
// installed swagger-ui-dist: no CDN, works offline).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Router } from 'express';
import type { OpenAPIV3_1 } from 'openapi-types';
import swaggerUi from 'swagger-ui-express';
import { parse } from 'yaml';

export const OPENAPI_PATH = join(__dirname, '..', 'openapi.yaml');

let cached: OpenAPIV3_1.Document | undefined;

export function loadOpenApi(): OpenAPIV3_1.Document {
  cached ??= parse(readFileSync(OPENAPI_PATH, 'utf8')) as OpenAPIV3_1.Document;
  return cached;
}

export function openApiRouter(): Router {
  const document = loadOpenApi();
  const router = Router();
  router.get('/openapi.json', (_req, res) => {
    res.json(document);
  });
  router.use('/docs', swaggerUi.serve, swaggerUi.setup(document, { customSiteTitle: 'express-redis-kit demo API' }));
  return router;
}
