// The demo chat endpoint: POST /api/v1/llm/chat takes an OpenAI chat-completions body and returns a
// chat-completions response, answered from the semantic cache or from a simulated LLM (deterministic answers,
// 600-1,200 ms, token counts), or from any OpenAI-compatible upstream when LLM_BASE_URL is set.
// Mount with app.use(createLlmRoutes({ kit })); written against the public entry only.

import { createHash } from 'node:crypto';
import express, { type NextFunction, type Request, type Response, Router } from 'express';
import {
  type LlmRequest,
  type RedisKit,
  type SemanticCache,
  type SemanticCacheOptions,
  semanticCacheHandler,
} from '../plugin/index.js';

export interface LlmRoutesOptions {
  kit: RedisKit;
  /** A cache you made; otherwise one is made from `cacheOptions`. */
  cache?: SemanticCache;
  cacheOptions?: SemanticCacheOptions;
  /** Simulated LLM latency range in ms. @default [600, 1200] */
  latencyMs?: [number, number];
  /** OpenAI-compatible upstream (`https://api.openai.com/v1`, `http://localhost:11434/v1`). @default process.env.LLM_BASE_URL */
  upstreamUrl?: string;
  /** @default process.env.LLM_API_KEY */
  upstreamKey?: string;
  /** Path prefix of the route. @default '/api/v1' */
  basePath?: string;
  /** Largest accepted body. @default '256kb' */
  bodyLimit?: string;
}

interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: Array<{ index: number; message: { role: 'assistant'; content: string }; finish_reason: string }>;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function lastUserText(request: LlmRequest): string {
  const messages = request.messages ?? [];
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m?.role === 'user') return typeof m.content === 'string' ? m.content : JSON.stringify(m.content);
  }
  return request.prompt ?? '';
}

/** A stand-in model: the same question always gets the same answer, after a realistic delay. */
export function simulatedLlm(latencyMs: [number, number]) {
  return async (request: LlmRequest): Promise<ChatCompletion> => {
    const question = lastUserText(request);
    const digest = createHash('sha256').update(question).digest();
    const [lo, hi] = latencyMs;
    await sleep(lo + ((digest[0] as number) / 255) * (hi - lo));
    const content = `(simulated ${request.model}) You asked: "${question.slice(0, 200)}". Answer #${digest.readUInt16BE(1)}: here is a deterministic reply of moderate length, the way a model would write it.`;
    const prompt = Math.ceil(JSON.stringify(request.messages ?? request.prompt ?? '').length / 4);
    const completion = Math.ceil(content.length / 4);
    return {
      id: `chatcmpl-${digest.toString('hex').slice(0, 24)}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: request.model,
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
      usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
    };
  };
}

function upstreamLlm(baseUrl: string, apiKey: string | undefined) {
  const url = `${baseUrl.replace(/\/+$/, '')}/chat/completions`;
  return async (request: LlmRequest): Promise<unknown> => {
    const { namespace: _n, cache: _c, system, ...body } = request;
    const messages = system ? [{ role: 'system', content: system }, ...(body.messages ?? [])] : body.messages;
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
      body: JSON.stringify({ ...body, messages, stream: false }),
      signal: AbortSignal.timeout(120_000),
    });
    if (!response.ok) throw new Error(`upstream LLM answered ${response.status}`);
    return response.json();
  };
}

export function createLlmRoutes(options: LlmRoutesOptions): Router {
  const cache = options.cache ?? options.kit.semanticCache(options.cacheOptions);
  const upstreamUrl = options.upstreamUrl ?? process.env.LLM_BASE_URL;
  const compute = upstreamUrl
    ? upstreamLlm(upstreamUrl, options.upstreamKey ?? process.env.LLM_API_KEY)
    : simulatedLlm(options.latencyMs ?? [600, 1200]);
  const router = Router();
  router.post(
    `${options.basePath ?? '/api/v1'}/llm/chat`,
    express.json({ limit: options.bodyLimit ?? '256kb' }),
    semanticCacheHandler(cache, {
      compute: (request) => compute(request),
      // The demo takes the tenant from a header; a real app takes it from its authentication.
      namespace: (req) => req.get('x-tenant') || undefined,
    }),
  );
  // Body-parser errors (bad JSON, too large) become OpenAI-style 4xx JSON instead of an HTML page.
  router.use(
    (error: { status?: number; type?: string; message?: string }, _req: Request, res: Response, next: NextFunction) => {
      if (typeof error?.status === 'number' && error.status >= 400 && error.status < 500) {
        res.status(error.status).json({
          error: {
            message: error.message ?? 'bad request',
            type: 'invalid_request_error',
            code: error.type ?? 'bad_request',
          },
        });
        return;
      }
      next(error);
    },
  );
  return router;
}
