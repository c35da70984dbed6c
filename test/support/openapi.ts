// Contract helpers: list the routes an Express app really registers, and check a response against the
// openapi.yaml operation it belongs to (status, content type, body schema) with a JSON Schema 2020-12 validator.

import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { Express } from 'express';
import type { Response } from 'supertest';
import { loadOpenApi } from '../../demo/openapi';

export interface RouteEntry {
  method: string;
  /** OpenAPI form: `/api/v1/items/{id}`. */
  path: string;
}

interface LayerLike {
  route?: { path: string | string[]; methods: Record<string, boolean> };
  handle?: { stack?: LayerLike[] };
  rawPath?: string | string[];
}

function join(prefix: string, path: string): string {
  const joined = `${prefix}/${path}`.replace(/\/+/g, '/');
  return joined.length > 1 ? joined.replace(/\/$/, '') : joined;
}

/** Every route registered on an Express 5 app, including those in mounted routers. */
export function listRoutes(app: Express): RouteEntry[] {
  const out: RouteEntry[] = [];
  const walk = (stack: LayerLike[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route) {
        const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
        for (const p of paths) {
          for (const [method, on] of Object.entries(layer.route.methods)) {
            if (on && method !== '_all')
              out.push({ method: method.toUpperCase(), path: toOpenApiPath(join(prefix, p)) });
          }
        }
      } else if (layer.handle?.stack) {
        const mount = typeof layer.rawPath === 'string' ? layer.rawPath : '';
        walk(layer.handle.stack, join(prefix, mount));
      }
    }
  };
  const router = (app as unknown as { router: { stack: LayerLike[] } }).router;
  walk(router.stack, '');
  return out;
}

export function toOpenApiPath(expressPath: string): string {
  return expressPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

/** Every operation openapi.yaml declares. */
export function listSpecOperations(): RouteEntry[] {
  const doc = loadOpenApi();
  const out: RouteEntry[] = [];
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const method of ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const) {
      if (item?.[method]) out.push({ method: method.toUpperCase(), path });
    }
  }
  return out;
}

let ajv: Ajv2020 | undefined;
const SPEC_ID = 'https://express-redis-kit.invalid/openapi';

function validator(): Ajv2020 {
  if (!ajv) {
    ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(ajv);
    ajv.addSchema({ ...(loadOpenApi() as object), $id: SPEC_ID });
  }
  return ajv;
}

const pointer = (...parts: string[]) => parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

/**
 * Checks `res` against the spec's operation `method path`: the status must be documented, and when the documented
 * response has a body schema for the response's content type, the body must satisfy it.
 */
export function expectMatchesSpec(method: string, path: string, res: Response): void {
  const doc = loadOpenApi();
  const operation = (doc.paths?.[path] as Record<string, any> | undefined)?.[method.toLowerCase()];
  if (!operation) throw new Error(`openapi.yaml has no operation ${method} ${path}`);
  const response = operation.responses?.[String(res.status)] ?? operation.responses?.default;
  if (!response) throw new Error(`${method} ${path}: status ${res.status} is not documented in openapi.yaml`);
  const contentType = String(res.headers['content-type'] ?? '')
    .split(';')[0]!
    .trim();
  if (!response.content) return;
  if (!response.content[contentType]) {
    throw new Error(`${method} ${path} ${res.status}: content type '${contentType}' is not documented`);
  }
  const schemaRef = `${SPEC_ID}#/${pointer('paths', path, method.toLowerCase(), 'responses', String(res.status) in operation.responses ? String(res.status) : 'default', 'content', contentType, 'schema')}`;
  const validate = validator().compile({ $ref: schemaRef });
  const body = contentType.includes('json') ? JSON.parse(res.text) : res.text;
  if (!validate(body)) {
    throw new Error(
      `${method} ${path} ${res.status}: body does not match openapi.yaml: ${validator().errorsText(validate.errors)}`,
    );
  }
}
