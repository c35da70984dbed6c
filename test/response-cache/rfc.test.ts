// The HTTP semantics, one row per rule (RFC 9111 storage and freshness, RFC 9110 conditionals, our privacy
// rules): each row runs a request twice on a fresh kit and says whether the second came from the cache.

import compression from 'compression';
import express, { type Request, type RequestHandler, type Response } from 'express';
import request from 'supertest';
import { createRedisKit, type RedisKit, type ResponseCacheOptions } from '../../plugin/index';
import { parseCacheControl, normaliseUrl, notModified, varySpec, secondaryKey } from '../../plugin/response-cache/http';

interface Row {
  rule: string;
  options?: ResponseCacheOptions;
  /** Sets up the response (headers, status) before the body is sent. */
  respond?: (req: Request, res: Response) => void;
  first?: Record<string, string>;
  second?: Record<string, string>;
  method?: 'GET' | 'HEAD' | 'POST';
  /** Whether the handler ran for the second request. */
  secondRuns: boolean;
  /** Pattern the second response's Cache-Status must match. */
  status?: RegExp;
  check?: (second: request.Response) => void;
}

const rows: Row[] = [
  { rule: 'a plain 200 is stored', secondRuns: false, status: /; hit; ttl=(59|60)$/ },
  {
    rule: 'no-store is not stored',
    respond: (_q, r) => r.set('Cache-Control', 'no-store'),
    secondRuns: true,
    status: /detail=no-store/,
  },
  {
    rule: 'private is not stored',
    respond: (_q, r) => r.set('Cache-Control', 'private, max-age=60'),
    secondRuns: true,
    status: /detail=private/,
  },
  {
    rule: 'no-cache is not served from cache',
    respond: (_q, r) => r.set('Cache-Control', 'no-cache'),
    secondRuns: true,
    status: /detail=no-cache/,
  },
  {
    rule: 's-maxage beats max-age',
    respond: (_q, r) => r.set('Cache-Control', 'max-age=100, s-maxage=5'),
    secondRuns: false,
    status: /ttl=[45]$/,
  },
  {
    rule: 'max-age beats the configured ttl',
    respond: (_q, r) => r.set('Cache-Control', 'max-age=20'),
    secondRuns: false,
    status: /ttl=(19|20)$/,
  },
  {
    rule: 'max-age=0 is stale on arrival',
    respond: (_q, r) => r.set('Cache-Control', 'max-age=0'),
    secondRuns: true,
    status: /detail=stale-on-arrival/,
  },
  {
    rule: 'an Expires in the past is stale on arrival',
    respond: (_q, r) => r.set('Expires', 'Thu, 01 Jan 1970 00:00:00 GMT'),
    secondRuns: true,
  },
  {
    rule: "the origin's Age is carried into Age on hits",
    respond: (_q, r) => r.set({ Age: '10', 'Cache-Control': 'max-age=60' }),
    secondRuns: false,
    check: (r) => expect(r.headers.age).toBe('10'),
  },
  {
    rule: 'Set-Cookie responses are not stored',
    respond: (_q, r) => r.cookie('a', 'b'),
    secondRuns: true,
    status: /detail=set-cookie/,
  },
  {
    rule: 'Set-Cookie with a per-user key is stored, without the cookie',
    options: { userKey: () => 'user-1' },
    respond: (_q, r) => r.cookie('a', 'b'),
    secondRuns: false,
    check: (r) => expect(r.headers['set-cookie']).toBeUndefined(),
  },
  {
    rule: 'Authorization requests are not cached',
    first: { Authorization: 'Bearer x' },
    second: { Authorization: 'Bearer x' },
    secondRuns: true,
    status: /fwd=bypass; detail=authorization/,
  },
  {
    rule: 'Authorization with a per-user key is cached per user',
    options: { userKey: (req) => req.get('authorization') },
    first: { Authorization: 'Bearer alice' },
    second: { Authorization: 'Bearer bob' },
    secondRuns: true,
    status: /fwd=miss/,
  },
  {
    rule: 'a session cookie is not cached',
    first: { Cookie: 'connect.sid=s1' },
    second: { Cookie: 'theme=dark; connect.sid=s1' },
    secondRuns: true,
    status: /detail=session-cookie/,
  },
  {
    rule: 'other cookies do not stop caching',
    first: { Cookie: 'theme=dark' },
    second: { Cookie: 'theme=light' },
    secondRuns: false,
  },
  { rule: 'Vary: * is not stored', respond: (_q, r) => r.set('Vary', '*'), secondRuns: true, status: /detail=vary/ },
  {
    rule: 'Vary selects the variant',
    respond: (_q, r) => r.vary('Accept-Language'),
    first: { 'Accept-Language': 'en' },
    second: { 'Accept-Language': 'fr' },
    secondRuns: true,
  },
  { rule: 'a 404 is stored (heuristically cacheable)', respond: (_q, r) => r.status(404), secondRuns: false },
  { rule: 'a 201 is not stored', respond: (_q, r) => r.status(201), secondRuns: true, status: /detail=status-201/ },
  { rule: 'a 5xx is never stored', respond: (_q, r) => r.status(500), secondRuns: true, status: /detail=status-500/ },
  {
    rule: 'request no-cache revalidates',
    second: { 'Cache-Control': 'no-cache' },
    secondRuns: true,
    status: /fwd=request/,
  },
  {
    rule: 'request Pragma: no-cache revalidates',
    second: { Pragma: 'no-cache' },
    secondRuns: true,
    status: /fwd=request/,
  },
  {
    rule: 'request no-cache is served when revalidation is off',
    options: { revalidateOnNoCache: false },
    second: { 'Cache-Control': 'no-cache' },
    secondRuns: false,
  },
  {
    rule: 'request no-store bypasses',
    second: { 'Cache-Control': 'no-store' },
    secondRuns: true,
    status: /fwd=request; detail=no-store/,
  },
  { rule: 'POST is not cached', method: 'POST', secondRuns: true, status: /fwd=method/ },
  { rule: 'HEAD alone does not fill the cache', method: 'HEAD', secondRuns: true, status: /fwd=miss/ },
  { rule: 'a body over maxBodySize is not stored', options: { maxBodySize: 5 }, secondRuns: true },
  {
    rule: 'a tags function that throws: not stored, the client still served',
    options: {
      tags: () => {
        throw new Error('boom');
      },
    },
    secondRuns: true,
  },
  {
    rule: 'If-None-Match with a list answers 304 from the cache',
    second: { 'If-None-Match': '"x", "BODY-ETAG"' },
    secondRuns: false,
    check: (r) => expect(r.status).toBe(304),
  },
];

describe('response cache: RFC rules (memory store)', () => {
  let kit: RedisKit;
  beforeEach(() => {
    kit = createRedisKit({ store: 'memory', logger: false, env: {} });
  });
  afterEach(() => kit.close());

  test.each(rows.map((r) => [r.rule, r] as const))('%s', async (_rule, row) => {
    let calls = 0;
    const app = express();
    const handler: RequestHandler = (req, res) => {
      calls++;
      row.respond?.(req, res);
      res.type('text').send('the body');
    };
    app.all('/r', kit.cache(row.options), handler);
    const send = (headers: Record<string, string> = {}) => {
      const method = (row.method ?? 'GET').toLowerCase() as 'get' | 'head' | 'post';
      let r = request(app)[method]('/r');
      for (const [k, v] of Object.entries(headers)) {
        r = r.set(k, v);
      }
      return r;
    };
    const first = await send(row.first);
    let secondHeaders = row.second;
    if (secondHeaders?.['If-None-Match']) {
      secondHeaders = { 'If-None-Match': secondHeaders['If-None-Match'].replace('"BODY-ETAG"', await etagOf(app)) };
    }
    await settle();
    const second = await send(secondHeaders);
    expect(first.status).toBeLessThan(600);
    expect(calls).toBe(row.secondRuns ? 2 : 1);
    if (row.status) expect(second.headers['cache-status']).toMatch(row.status);
    row.check?.(second);
  });
});

async function etagOf(app: express.Express): Promise<string> {
  return (await request(app).get('/r')).headers.etag as string;
}

// Stores complete after the response is sent; give the memory store's promise a turn.
const settle = () => new Promise((r) => setTimeout(r, 5));

describe('response cache: fields set before the cache', () => {
  test('per-request fields from earlier middleware are not replayed from the store', async () => {
    const kit = createRedisKit({ store: 'memory', logger: false, env: {} });
    let n = 0;
    const app = express();
    app.use((_req, res, next) => {
      res.set('X-Request-Id', `req-${++n}`);
      next();
    });
    app.get('/r', kit.cache(), (_req, res) => {
      res.set('X-From-Handler', 'yes');
      res.json({ ok: true });
    });
    try {
      await request(app).get('/r');
      await settle();
      const hit = await request(app).get('/r');
      expect(hit.headers['cache-status']).toMatch(/hit/);
      expect(hit.headers['x-request-id']).toBe('req-2');
      expect(hit.headers['x-from-handler']).toBe('yes');
    } finally {
      await kit.close();
    }
  });
});

describe('response cache: unsafe methods', () => {
  test('a successful POST, PUT or DELETE through the middleware invalidates the URL (RFC 9111 4.4); a failed one does not', async () => {
    const kit = createRedisKit({ store: 'memory', logger: false, env: {} });
    let version = 1;
    const app = express();
    app.all('/doc', kit.cache(), (req, res) => {
      if (req.method === 'GET') return void res.json({ version });
      if (req.get('x-fail')) return void res.status(409).end();
      version++;
      res.status(204).end();
    });
    try {
      expect((await request(app).get('/doc')).body.version).toBe(1);
      await request(app).post('/doc').set('x-fail', '1');
      await settle();
      expect((await request(app).get('/doc')).headers['cache-status']).toMatch(/hit/);
      await request(app).put('/doc');
      await settle();
      const after = await request(app).get('/doc');
      expect(after.body.version).toBe(2);
      expect(after.headers['cache-status']).toMatch(/fwd=miss/);
    } finally {
      await kit.close();
    }
  });
});

describe('response cache: compression', () => {
  let kit: RedisKit;
  beforeEach(() => {
    kit = createRedisKit({ store: 'memory', logger: false, env: {} });
  });
  afterEach(() => kit.close());
  const big = 'compress me '.repeat(200);

  test('compression mounted before the cache: identity stored, encoded once per response', async () => {
    const app = express();
    app.use(compression({ threshold: 0 }));
    app.get('/z', kit.cache(), (_req, res) => {
      res.type('text').send(big);
    });
    await request(app).get('/z').set('Accept-Encoding', 'gzip');
    await settle();
    const gz = await request(app).get('/z').set('Accept-Encoding', 'gzip');
    expect(gz.headers['cache-status']).toMatch(/hit/);
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gz.text).toBe(big); // supertest gunzips once: a double encoding would not read back
    const plain = await request(app).get('/z').set('Accept-Encoding', 'identity');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.text).toBe(big);
  });

  test('compression mounted after the cache: encoded bodies stored per Accept-Encoding (Vary)', async () => {
    const app = express();
    let calls = 0;
    app.get('/z', kit.cache(), compression({ threshold: 0 }), (_req, res) => {
      calls++;
      res.type('text').send(big);
    });
    await request(app).get('/z').set('Accept-Encoding', 'gzip');
    await settle();
    const gz = await request(app).get('/z').set('Accept-Encoding', 'gzip');
    expect(gz.headers['cache-status']).toMatch(/hit/);
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gz.text).toBe(big);
    const plain = await request(app).get('/z').set('Accept-Encoding', 'identity');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.text).toBe(big);
    expect(calls).toBe(2);
  });
});

describe('response cache: HTTP helpers', () => {
  test('Cache-Control parsing', () => {
    expect(parseCacheControl('public, max-age=60, s-maxage="30", stale-while-revalidate=5')).toMatchObject({
      public: true,
      maxAge: 60,
      sMaxAge: 30,
      staleWhileRevalidate: 5,
    });
    expect(parseCacheControl('max-age=abc').maxAge).toBeUndefined();
    expect(parseCacheControl('No-Store').noStore).toBe(true);
  });

  test('URL normalisation', () => {
    expect(normaliseUrl('/a?b=2&a=1')).toBe('/a?a=1&b=2');
    expect(normaliseUrl('/a?x=%7e&y=a+b')).toBe(normaliseUrl('/a?y=a%20b&x=~'));
    expect(normaliseUrl('/%7Euser')).toBe('/~user');
    expect(normaliseUrl('/a?bad=%ZZ')).toBe('/a?bad=%ZZ');
    expect(normaliseUrl('/a?#frag')).toBe('/a');
  });

  test('conditionals', () => {
    expect(notModified({ 'if-none-match': 'W/"a", "b"' }, '"b"', 0)).toBe(true);
    expect(notModified({ 'if-none-match': '"a,b"' }, '"a,b"', 0)).toBe(true);
    expect(notModified({ 'if-none-match': '"c"' }, '"b"', 0)).toBe(false);
    // If-None-Match wins over If-Modified-Since.
    expect(notModified({ 'if-none-match': '"c"', 'if-modified-since': new Date().toUTCString() }, '"b"', 0)).toBe(
      false,
    );
    expect(notModified({ 'if-modified-since': 'garbage' }, '"b"', 0)).toBe(false);
  });

  test('Vary specs and secondary keys are bounded', () => {
    expect(varySpec('Accept-Language, accept-encoding', [])).toBe('accept-encoding,accept-language');
    expect(varySpec('*', [])).toBeNull();
    expect(varySpec(Array.from({ length: 40 }, (_, i) => `h${i}`).join(','), [])).toBeNull();
    const key = secondaryKey('accept-language', { 'accept-language': 'x'.repeat(100_000) });
    expect(key).toHaveLength(22);
    expect(secondaryKey('', {})).toBe('-');
  });
});

describe('response cache: configuration', () => {
  const kit = createRedisKit({ store: 'memory', logger: false, env: {} });
  afterAll(() => kit.close());

  test('misspelt options name the nearest valid one', () => {
    expect(() => kit.cache({ tll: 5 } as never)).toThrow(/unknown option 'tll'.*Did you mean 'ttl'/);
    expect(() => kit.cache({ hotLayer: { maxEntires: 5 } } as never)).toThrow(/Did you mean 'maxEntries'/);
  });

  test('5xx statuses and unsafe methods are refused at construction', () => {
    expect(() => kit.cache({ statuses: [200, 503] })).toThrow(/never 5xx/);
    expect(() => kit.cache({ methods: ['POST'] as never })).toThrow(/cannot be cached/);
    expect(() => kit.cache({ ttl: 'soon' })).toThrow(/ttl/);
  });

  test('mounting kit.cache without calling it says how to use it', () => {
    const app = express();
    app.get('/x', kit.cache as unknown as RequestHandler);
    return request(app)
      .get('/x')
      .then((r) => expect(r.status).toBe(500));
  });

  test('invalidate rejects unknown targets and bad tags', async () => {
    await expect(kit.cache.invalidate({ tag: 'x' } as never)).rejects.toThrow(/Did you mean 'tags'/);
    await expect(kit.cache.invalidate({ tags: [''] })).rejects.toThrow(/tag/);
  });
});
