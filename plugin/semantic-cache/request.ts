// What the cache knows about an LLM request: validation with bounded work, normalisation, the exact digest, the
// partition (namespace, model, system prompt, answer-changing parameters, tools, earlier turns) and the query text.

import { createHash } from 'node:crypto';
import { SemanticCacheInputError } from './errors.js';

export interface LlmMessage {
  role: string;
  content?: string | Array<{ type: string; text?: string }> | null;
  name?: string;
  [extra: string]: unknown;
}

/**
 * An LLM request as the cache sees it: the OpenAI chat-completions body (`model`, `messages`, `temperature`, ...)
 * or a plain `prompt`, plus a `namespace` (tenant or workspace) and an optional `system` prompt.
 */
export interface LlmRequest {
  model: string;
  messages?: LlmMessage[];
  prompt?: string;
  /** System prompt (also read from `messages` with role `system` or `developer`). */
  system?: string;
  /** Tenant or workspace: answers never cross it. @default 'default' */
  namespace?: string;
  temperature?: number;
  tools?: unknown[];
  stream?: boolean;
  /** `false` asks the cache to stay out of this request (no lookup, no store). */
  cache?: boolean;
  [param: string]: unknown;
}

/** Parameters that change sampling but not what a good answer is: kept out of the partition. */
export const SAMPLING_PARAMS: ReadonlySet<string> = new Set([
  'temperature',
  'top_p',
  'seed',
  'user',
  'stream',
  'stream_options',
  'metadata',
  'store',
  'service_tier',
  'parallel_tool_calls',
]);

const STRUCTURE_KEYS = new Set(['model', 'messages', 'prompt', 'system', 'namespace', 'tools', 'cache', 'tool_choice']);

export interface AnalysedRequest {
  namespace: string;
  model: string;
  /** Text that is embedded and compared: the last user turn, or the prompt. */
  query: string;
  /** Hash of the whole normalised request: the exact layer's key. */
  digest: string;
  /** Hash of everything that must match exactly before a vector is compared. */
  partition: string;
  temperature: number | undefined;
  hasTools: boolean;
  stream: boolean;
  noCache: boolean;
  /** The conversation does not end with a user turn: nothing to look up. */
  notQuestion: boolean;
  /** Characters of text in the request (for the size bypass). */
  size: number;
}

export interface RequestLimits {
  /** Most messages in one request. */
  maxMessages: number;
  /** Most characters in all text of one request; larger ones are rejected as 413. */
  maxChars: number;
}

function sha(text: string, length: number): string {
  return createHash('sha256').update(text, 'utf8').digest('base64url').slice(0, length);
}

/** Whitespace collapsed, Unicode NFC: trivially different spellings of one request share an exact entry. */
function normaliseText(text: string): string {
  return text.normalize('NFC').replace(/\s+/g, ' ').trim();
}

function contentText(content: LlmMessage['content'], where: string): string {
  if (content === undefined || content === null) return '';
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    let out = '';
    for (const part of content) {
      if (part === null || typeof part !== 'object') throw new SemanticCacheInputError(`${where}: bad content part`);
      if (typeof part.text === 'string') out += (out ? '\n' : '') + part.text;
      // Non-text parts (images, audio) cannot be compared by meaning here; their JSON joins the exact digest.
      else out += (out ? '\n' : '') + JSON.stringify(part).slice(0, 10_000);
    }
    return out;
  }
  throw new SemanticCacheInputError(`${where}: content must be a string or an array of parts`);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function assertText(value: string, what: string): void {
  if (LONE_SURROGATE.test(value)) throw new SemanticCacheInputError(`${what}: not valid Unicode (lone surrogate)`);
}

/** Stable JSON (sorted keys), bounded in depth, for hashing parameters and tools. */
function stableJson(value: unknown, depth = 0): string {
  if (depth > 8) throw new SemanticCacheInputError('request parameters are nested too deeply');
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new SemanticCacheInputError('non-finite number');
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) return `[${value.map((v) => stableJson(v, depth + 1)).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k], depth + 1)}`).join(',')}}`;
}

const NUMERIC_RANGES: Record<string, [number, number]> = {
  temperature: [0, 2],
  top_p: [0, 1],
  max_tokens: [1, 10_000_000],
  max_completion_tokens: [1, 10_000_000],
  n: [1, 128],
  presence_penalty: [-2, 2],
  frequency_penalty: [-2, 2],
};

/**
 * Validates and analyses a request. Throws SemanticCacheInputError (400, or 413 for size) on anything malformed;
 * the work is bounded by `limits` whatever the input.
 */
export function analyseRequest(request: unknown, limits: RequestLimits, defaultNamespace: string): AnalysedRequest {
  if (request === null || typeof request !== 'object' || Array.isArray(request)) {
    throw new SemanticCacheInputError('the request must be an object with model and messages (or prompt)');
  }
  const r = request as LlmRequest;
  if (typeof r.model !== 'string' || r.model.trim() === '') {
    throw new SemanticCacheInputError("'model' is required: a non-empty string");
  }
  if (r.model.length > 256) throw new SemanticCacheInputError("'model' is longer than 256 characters");
  const namespace = r.namespace ?? defaultNamespace;
  if (typeof namespace !== 'string' || namespace === '' || namespace.length > 256) {
    throw new SemanticCacheInputError("'namespace' must be a string of 1-256 characters");
  }
  for (const [name, [min, max]] of Object.entries(NUMERIC_RANGES)) {
    const v = r[name];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
      throw new SemanticCacheInputError(`'${name}' must be a number from ${min} to ${max}, got ${JSON.stringify(v)}`);
    }
  }
  if (r.tools !== undefined && !Array.isArray(r.tools)) throw new SemanticCacheInputError("'tools' must be an array");
  if (r.stream !== undefined && typeof r.stream !== 'boolean') {
    throw new SemanticCacheInputError("'stream' must be a boolean");
  }

  let size = 0;
  const system: string[] = [];
  if (r.system !== undefined) {
    if (typeof r.system !== 'string') throw new SemanticCacheInputError("'system' must be a string");
    system.push(r.system);
    size += r.system.length;
  }
  const turns: string[] = [];
  let query: string;
  let notQuestion = false;
  if (r.messages !== undefined) {
    if (!Array.isArray(r.messages) || r.messages.length === 0) {
      throw new SemanticCacheInputError("'messages' must be a non-empty array");
    }
    if (r.messages.length > limits.maxMessages) {
      throw new SemanticCacheInputError(`'messages' has more than ${limits.maxMessages} entries`, 413);
    }
    const texts: Array<{ role: string; text: string }> = [];
    for (const [i, m] of r.messages.entries()) {
      if (m === null || typeof m !== 'object' || typeof m.role !== 'string') {
        throw new SemanticCacheInputError(`messages[${i}]: expected { role, content }`);
      }
      const text = contentText(m.content, `messages[${i}]`);
      size += text.length;
      if (size > limits.maxChars) {
        throw new SemanticCacheInputError(`the request holds more than ${limits.maxChars} characters of text`, 413);
      }
      assertText(text, `messages[${i}].content`);
      if (m.role === 'system' || m.role === 'developer') system.push(text);
      else texts.push({ role: m.role, text: m.name ? `${m.name}: ${text}` : text });
    }
    const last = texts.at(-1);
    if (last?.role !== 'user') {
      // Only a user turn is a question; continuing after an assistant or tool turn is never answered from cache.
      query = '';
      notQuestion = true;
      for (const t of texts) turns.push(`${t.role}\u0000${normaliseText(t.text)}`);
    } else {
      query = last.text;
      for (const t of texts.slice(0, -1)) turns.push(`${t.role}\u0000${normaliseText(t.text)}`);
    }
  } else if (typeof r.prompt === 'string') {
    query = r.prompt;
    size += query.length;
    if (size > limits.maxChars) {
      throw new SemanticCacheInputError(`the request holds more than ${limits.maxChars} characters of text`, 413);
    }
    assertText(query, 'prompt');
  } else {
    throw new SemanticCacheInputError("the request needs 'messages' (chat) or 'prompt' (a string)");
  }
  if (system.some((s) => LONE_SURROGATE.test(s))) throw new SemanticCacheInputError('system: not valid Unicode');
  if (query.trim() === '')
    throw new SemanticCacheInputError('the request has no question: the last user turn is empty');

  const params: Record<string, unknown> = {};
  for (const key of Object.keys(r)) {
    if (STRUCTURE_KEYS.has(key) || SAMPLING_PARAMS.has(key)) continue;
    params[key] = r[key];
  }
  if (r.tool_choice !== undefined) params.tool_choice = r.tool_choice;
  const paramsJson = stableJson(params);
  const toolsJson = r.tools && r.tools.length > 0 ? stableJson(r.tools) : '';
  if (paramsJson.length + toolsJson.length > limits.maxChars) {
    throw new SemanticCacheInputError('the request parameters are too large', 413);
  }
  const systemText = normaliseText(system.join('\n'));
  const partition = sha(
    [
      namespace,
      r.model.trim(),
      sha(systemText, 43),
      paramsJson,
      sha(toolsJson, 43),
      sha(turns.join('\u0001'), 43),
    ].join('\u0000'),
    16,
  );
  const digest = sha(`${partition}\u0000${normaliseText(query)}`, 24);
  return {
    namespace,
    model: r.model.trim(),
    query,
    digest,
    partition,
    temperature: typeof r.temperature === 'number' ? r.temperature : undefined,
    hasTools: toolsJson !== '',
    stream: r.stream === true,
    noCache: r.cache === false,
    notQuestion,
    size,
  };
}
