// The Express helper for LLM endpoints: takes an OpenAI chat-completions body, answers from the cache or from
// `compute`, and says what happened in `X-LLM-Cache` / `X-LLM-Cache-Score`. Bad input is a 4xx JSON error.

import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { KitError } from '../core/errors.js';
import type { SemanticCache } from './cache.js';
import type { LlmRequest } from './request.js';

export interface SemanticCacheHandlerOptions<T> {
  /** Calls the model on a miss or a bypass. */
  compute: (request: LlmRequest, req: Request) => Promise<T>;
  /** The tenant or workspace of this HTTP request (never taken from the body by default). @default () => undefined (the cache's default namespace) */
  namespace?: (req: Request) => string | undefined;
}

function errorBody(message: string, code: string): { error: { message: string; type: string; code: string } } {
  return { error: { message, type: 'invalid_request_error', code } };
}

/** A handler for `POST` routes whose body (parsed by express.json()) is an OpenAI chat-completions request. */
export function semanticCacheHandler<T>(cache: SemanticCache, options: SemanticCacheHandlerOptions<T>): RequestHandler {
  if (!cache || typeof cache.wrap !== 'function') {
    throw new TypeError('semanticCacheHandler(cache, options): expected the object returned by kit.semanticCache()');
  }
  if (typeof options?.compute !== 'function') {
    throw new TypeError('semanticCacheHandler: options.compute(request) is required');
  }
  const namespaceOf = options.namespace ?? (() => undefined);
  return (req: Request, res: Response, next: NextFunction) => {
    const body = req.body as unknown;
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      res.status(400).json(errorBody('expected a JSON object body (an OpenAI chat-completions request)', 'bad_body'));
      return;
    }
    // The namespace comes from the server side (auth), never from the client's body.
    const { namespace: _ignored, ...rest } = body as Record<string, unknown>;
    const request = { ...rest, namespace: namespaceOf(req) } as LlmRequest;
    if (request.namespace === undefined) delete request.namespace;
    const started = performance.now();
    cache
      .wrap(request, () => options.compute(request, req))
      .then((result) => {
        res.setHeader('X-LLM-Cache', result.status);
        if (result.score !== undefined) res.setHeader('X-LLM-Cache-Score', result.score.toFixed(4));
        if (result.reason) res.setHeader('X-LLM-Cache-Reason', result.reason);
        const response = result.response as unknown;
        const extra = {
          status: result.status,
          kind: result.kind,
          score: result.score,
          id: result.id,
          reason: result.reason,
          saved_ms: result.saved?.ms ?? 0,
          saved_tokens: result.saved?.tokens ?? 0,
          took_ms: Math.round((performance.now() - started) * 100) / 100,
        };
        if (response !== null && typeof response === 'object' && !Array.isArray(response)) {
          res.json({ ...(response as Record<string, unknown>), x_llm_cache: extra });
        } else {
          res.json({ result: response, x_llm_cache: extra });
        }
      })
      .catch((error: unknown) => {
        if (error instanceof KitError && error.status < 500) {
          res.status(error.status).json(errorBody(error.message, error.code));
          return;
        }
        next(error);
      });
  };
}
