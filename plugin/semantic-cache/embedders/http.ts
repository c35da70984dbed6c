// An embedder for any OpenAI-compatible `/v1/embeddings` endpoint (OpenAI, Ollama, vLLM, LM Studio, ...):
// batched requests, a per-call timeout via AbortSignal, and errors that say what the server answered.

import { EmbedderError } from '../errors.js';
import type { Embedder } from './types.js';

export interface HttpEmbedderOptions {
  /** Base URL up to and including `/v1`, e.g. `http://localhost:11434/v1`. */
  baseUrl: string;
  /** Model name sent as `model`. */
  model: string;
  /** Length of the vectors the model returns. */
  dimensions: number;
  /** Sent as `Authorization: Bearer <apiKey>` when set. */
  apiKey?: string;
  /** Most texts per HTTP request. @default 64 */
  batchSize?: number;
  /** Extra headers (e.g. an organisation id). */
  headers?: Record<string, string>;
  /** A fetch implementation (tests, proxies). @default globalThis.fetch */
  fetch?: typeof fetch;
}

export class HttpEmbedder implements Embedder {
  readonly name: string;
  readonly dimensions: number;
  private readonly url: string;
  private readonly batchSize: number;
  private readonly headers: Record<string, string>;
  private readonly fetchFn: typeof fetch;

  constructor(private readonly options: HttpEmbedderOptions) {
    if (typeof options.baseUrl !== 'string' || !/^https?:\/\//.test(options.baseUrl)) {
      throw new TypeError('HttpEmbedder: baseUrl must be an http(s) URL, e.g. http://localhost:11434/v1');
    }
    if (typeof options.model !== 'string' || options.model === '')
      throw new TypeError('HttpEmbedder: model is required');
    if (!Number.isInteger(options.dimensions) || options.dimensions < 1) {
      throw new TypeError('HttpEmbedder: dimensions must be a positive whole number (the length of the vectors)');
    }
    this.name = `http:${options.model}`;
    this.dimensions = options.dimensions;
    this.url = `${options.baseUrl.replace(/\/+$/, '')}/embeddings`;
    this.batchSize = options.batchSize ?? 64;
    this.headers = {
      'content-type': 'application/json',
      ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
      ...options.headers,
    };
    this.fetchFn = options.fetch ?? globalThis.fetch;
  }

  async embed(texts: string[], options: { signal?: AbortSignal } = {}): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (let i = 0; i < texts.length; i += this.batchSize) {
      out.push(...(await this.batch(texts.slice(i, i + this.batchSize), options.signal)));
    }
    return out;
  }

  private async batch(input: string[], signal: AbortSignal | undefined): Promise<Float32Array[]> {
    let response: Response;
    try {
      response = await this.fetchFn(this.url, {
        method: 'POST',
        headers: this.headers,
        body: JSON.stringify({ model: this.options.model, input }),
        signal,
      });
    } catch (error) {
      throw new EmbedderError(`embedding request to ${this.url} failed: ${(error as Error).message}`, error);
    }
    if (!response.ok) {
      const text = (await response.text().catch(() => '')).slice(0, 300);
      throw new EmbedderError(`embedding server answered ${response.status}: ${text}`);
    }
    let body: { data?: Array<{ embedding?: unknown; index?: number }> };
    try {
      body = (await response.json()) as typeof body;
    } catch (error) {
      throw new EmbedderError('embedding server sent a body that is not JSON', error);
    }
    if (!Array.isArray(body.data) || body.data.length !== input.length) {
      throw new EmbedderError(
        `embedding server returned ${body.data?.length ?? 'no'} vectors for ${input.length} texts`,
      );
    }
    const vectors: Float32Array[] = new Array(input.length);
    for (const [position, item] of body.data.entries()) {
      const index = typeof item.index === 'number' ? item.index : position;
      if (!Array.isArray(item.embedding) || item.embedding.length !== this.dimensions || index >= input.length) {
        throw new EmbedderError(
          `embedding server returned a vector of ${Array.isArray(item.embedding) ? item.embedding.length : 'no'} dimensions; expected ${this.dimensions}`,
        );
      }
      vectors[index] = Float32Array.from(item.embedding as number[]);
    }
    return vectors;
  }
}

/** Wraps a function (e.g. transformers.js with a local model folder) as an embedder. */
export function functionEmbedder(
  fn: (texts: string[], options: { signal?: AbortSignal }) => Promise<Array<Float32Array | number[]>>,
  options: { name: string; dimensions: number; sparse?: boolean },
): Embedder {
  return {
    name: options.name,
    dimensions: options.dimensions,
    sparse: options.sparse ?? false,
    async embed(texts, callOptions = {}) {
      const vectors = await fn(texts, callOptions);
      if (!Array.isArray(vectors) || vectors.length !== texts.length) {
        throw new EmbedderError(
          `embedder ${options.name} returned ${vectors?.length} vectors for ${texts.length} texts`,
        );
      }
      return vectors.map((v) => {
        if (v.length !== options.dimensions) {
          throw new EmbedderError(
            `embedder ${options.name} returned ${v.length} dimensions, declared ${options.dimensions}`,
          );
        }
        return v instanceof Float32Array ? v : Float32Array.from(v);
      });
    },
  };
}
