// Embedders: the offline default (no network, deterministic, unit length), the OpenAI-compatible HTTP embedder
// against a local test server (request format, batching, errors, timeouts), and the embedding cache.

import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRedisKit, EmbedderError, functionEmbedder, HttpEmbedder, OfflineEmbedder } from '../../plugin/index';

describe('OfflineEmbedder', () => {
  test('is deterministic, unit length, and closer for paraphrases than for unrelated text', async () => {
    const e = new OfflineEmbedder();
    const [a, b, c, a2] = await e.embed([
      'How do I reset my password?',
      'How can I reset my password?',
      'Best pizza in Naples',
      'How do I reset my password?',
    ]);
    const dot = (x: Float32Array, y: Float32Array) => x.reduce((s, v, i) => s + v * (y[i] as number), 0);
    expect(a).toEqual(a2);
    expect(dot(a as Float32Array, a as Float32Array)).toBeCloseTo(1, 5);
    expect(dot(a as Float32Array, b as Float32Array)).toBeGreaterThan(0.8);
    expect(dot(a as Float32Array, c as Float32Array)).toBeLessThan(0.2);
    // Words that are Object.prototype keys must not break the synonym table.
    await expect(e.embed(['constructor toString __proto__ hasOwnProperty'])).resolves.toHaveLength(1);
  });
});

describe('HttpEmbedder against a local /v1/embeddings server', () => {
  let server: Server;
  let baseUrl: string;
  const requests: Array<{ headers: IncomingMessage['headers']; body: { model: string; input: string[] } }> = [];
  let mode: 'ok' | 'error' | 'slow' | 'wrong-dims' = 'ok';

  beforeAll(async () => {
    server = createServer((req, res) => {
      let raw = '';
      req.on('data', (c) => {
        raw += c;
      });
      req.on('end', () => {
        const body = JSON.parse(raw) as { model: string; input: string[] };
        requests.push({ headers: req.headers, body });
        if (mode === 'error') {
          res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"boom"}');
          return;
        }
        if (mode === 'slow') return; // never answers
        const dims = mode === 'wrong-dims' ? 3 : 4;
        // Reversed order with explicit indexes: the client must place vectors by index.
        const data = body.input
          .map((text, index) => ({
            object: 'embedding',
            index,
            embedding: Array.from({ length: dims }, (_, k) => text.length + k),
          }))
          .reverse();
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  beforeEach(() => {
    requests.length = 0;
    mode = 'ok';
  });

  test('sends the OpenAI request format in batches and orders vectors by index', async () => {
    const e = new HttpEmbedder({ baseUrl, model: 'nomic-embed-text', dimensions: 4, apiKey: 'k', batchSize: 2 });
    const vectors = await e.embed(['a', 'bb', 'ccc']);
    expect(requests.map((r) => r.body)).toEqual([
      { model: 'nomic-embed-text', input: ['a', 'bb'] },
      { model: 'nomic-embed-text', input: ['ccc'] },
    ]);
    expect(requests[0]?.headers.authorization).toBe('Bearer k');
    expect(Array.from(vectors[1] as Float32Array)).toEqual([2, 3, 4, 5]);
    expect(Array.from(vectors[2] as Float32Array)).toEqual([3, 4, 5, 6]);
  });

  test('server errors and wrong dimensions are EmbedderErrors', async () => {
    const e = new HttpEmbedder({ baseUrl, model: 'm', dimensions: 4 });
    mode = 'error';
    await expect(e.embed(['a'])).rejects.toThrow(EmbedderError);
    mode = 'wrong-dims';
    await expect(e.embed(['a'])).rejects.toThrow(/dimensions/);
  });

  test('a hung server turns lookups into misses within embedTimeout, and repeated texts are embedded once', async () => {
    const kit = createRedisKit({ store: 'memory', logger: false, env: {} });
    try {
      const cache = kit.semanticCache({
        embedder: new HttpEmbedder({ baseUrl, model: 'm', dimensions: 4 }),
        embedTimeout: 150,
      });
      const ask = (content: string) => ({ model: 'x', messages: [{ role: 'user', content }] });
      await cache.store(ask('hello'), 'world');
      await cache.lookup(ask('hello there'));
      await cache.lookup(ask('hello there'));
      expect(requests.map((r) => r.body.input)).toEqual([['hello'], ['hello there']]);
      mode = 'slow';
      const started = Date.now();
      expect(await cache.lookup(ask('something new'))).toMatchObject({ status: 'miss', reason: 'embed-timeout' });
      expect(Date.now() - started).toBeLessThan(1000);
    } finally {
      await kit.close();
    }
  });

  test('bad configuration fails at construction', () => {
    expect(() => new HttpEmbedder({ baseUrl: 'localhost', model: 'm', dimensions: 4 })).toThrow(/http/);
    expect(() => new HttpEmbedder({ baseUrl, model: 'm', dimensions: 0 })).toThrow(/dimensions/);
  });
});

describe('functionEmbedder', () => {
  test('wraps a user function and checks its output', async () => {
    const e = functionEmbedder(async (texts) => texts.map(() => [1, 0, 0]), { name: 'mine', dimensions: 3 });
    expect(await e.embed(['a'])).toEqual([Float32Array.from([1, 0, 0])]);
    const bad = functionEmbedder(async () => [[1, 2]], { name: 'bad', dimensions: 3 });
    await expect(bad.embed(['a'])).rejects.toThrow(EmbedderError);
  });

  test('unknown cache options are rejected with a suggestion', () => {
    const kit = createRedisKit({ store: 'memory', logger: false, env: {} });
    expect(() => kit.semanticCache({ treshold: 0.9 } as never)).toThrow(/Did you mean 'threshold'/);
    expect(() => kit.semanticCache({ threshold: 1.5 })).toThrow(/threshold/);
    return kit.close();
  });
});
