// Property-based bad input against every route in openapi.yaml: random methods, path parameters, query strings,
// headers, cookies and bodies, sent as raw bytes over TCP (so nothing is cleaned up by a client library). Properties:
// never a 500 (or any 5xx but 503), never a hang (every request answers within its timeout), nothing logged as an
// unhandled error, and afterwards no store key longer than the bound. fast-check prints the seed and the shrunk
// input on failure; FUZZ_SEED=<n> replays a run, FUZZ_RUNS=<n> changes its length.

import { execFileSync } from 'node:child_process';
import type { Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import fc from 'fast-check';
import { createDemoApp, type DemoApp } from '../../demo/app';
import type { Logger } from '../../plugin/index';
import { listSpecOperations } from '../support/openapi';
import { type RedisProcess, startRedis } from '../support/redis-server';
import { describeWithRedis } from '../support/require-redis';

/** Longest key the kit may write: prefix, feature, a bounded or hashed {id}, a few short parts. */
const KEY_BOUND = 200;
const REQUEST_TIMEOUT_MS = 5000;
const RUNS = Number(process.env.FUZZ_RUNS ?? 1000);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const ADMIN = 'fuzz-admin-token-0123456789abcdef';

const operations = listSpecOperations();

/** Raw request bytes over a new TCP connection; resolves with the status once the status line arrives. */
function rawRequest(port: number, head: string, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`));
    }, REQUEST_TIMEOUT_MS);
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      const match = /^HTTP\/1\.1 (\d{3})/.exec(received);
      if (match) {
        clearTimeout(timer);
        socket.destroy();
        resolve(Number(match[1]));
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (!/^HTTP\/1\.1 \d{3}/.test(received)) reject(new Error(`connection closed without an answer: ${received}`));
    });
    socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body]));
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Arbitraries: hostile strings first (long, braces, colons, separators, unicode, encodings), then the request.
// ---------------------------------------------------------------------------------------------------------------

const nasty = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom(
    '',
    '.',
    '..',
    '{x}',
    '}{',
    'a:b:c',
    '*',
    '?',
    '%',
    '%zz',
    '%00',
    '%2F..%2F',
    '__proto__',
    'constructor',
    'null',
    'NaN',
    '-1',
    '1e309',
    '9007199254740993',
    'demo:',
    'demo:room',
    'alice',
    '\u0000',
    '\u202e',
    '😀',
  ),
  fc.integer({ min: 65, max: 6000 }).map((n) => 'k'.repeat(n)),
  fc.integer({ min: 1, max: 400 }).map((n) => '{'.repeat(n)),
);

/** Path parameters: mostly plausible (so requests reach the handlers), often hostile. */
const pathSegment = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.constantFrom('espresso', 'kettle', 'demo:room', 'demo:fuzz', 'r1', 'job-1', 'alice', 'abc_DEF-123'),
  },
  { weight: 3, arbitrary: nasty.map((s) => encodeURIComponent(s)) },
);
/** Query strings with raw, half-encoded and repeated parameters. */
const query = fc
  .array(
    fc.tuple(
      fc.oneof(fc.constantFrom('wait', 'keepCurrent', 'from', 'to', 'granularity', 'lastEventId'), nasty),
      nasty,
      fc.boolean(),
    ),
    { maxLength: 5 },
  )
  .map((pairs) =>
    pairs.length === 0
      ? ''
      : `?${pairs.map(([k, v, raw]) => (raw ? `${k.replace(/[\s#]/g, '')}=${v.replace(/[\s#]/g, '')}` : `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)).join('&')}`,
  );

/** A header value the HTTP parser lets through to the app: no CR, LF or NUL (those are a 400 before any code). */
const headerValue = nasty.map((s) =>
  Buffer.from(s, 'utf8')
    .toString('latin1')
    .replace(/[\r\n\0]/g, ''),
);
const cookieHeader = fc.oneof(
  headerValue.map((v) => `rk.sid=${v}`),
  fc.constantFrom(
    'rk.sid=s%3A',
    'rk.sid="quoted"',
    'rk.sid=a; rk.sid=b',
    `rk.sid=s%3A${'A'.repeat(22)}.${'B'.repeat(43)}`,
    'connect.sid=x; session=y',
  ),
  fc
    .array(fc.tuple(headerValue, headerValue), { maxLength: 6 })
    .map((pairs) => pairs.map(([k, v]) => `${k.replace(/[=;\s]/g, '') || 'c'}=${v}`).join('; ')),
);
const headerName = fc.constantFrom(
  'authorization',
  'x-forwarded-for',
  'x-tenant',
  'idempotency-key',
  'fencing-token',
  'last-event-id',
  'accept',
  'accept-encoding',
  'if-none-match',
  'if-modified-since',
  'range',
  'cache-control',
  'user-agent',
  'origin',
  'x-request-id',
  'traceparent',
  'x-custom-fuzz',
);
const headers = fc.record(
  {
    cookie: cookieHeader,
    contentType: fc.constantFrom(
      'application/json',
      'application/json; charset=utf-8',
      'text/plain',
      'application/x-www-form-urlencoded',
      'application/json; charset=latin1',
      'multipart/form-data; boundary=x',
    ),
    extra: fc.array(fc.tuple(headerName, headerValue), { maxLength: 6 }),
  },
  { requiredKeys: ['contentType', 'extra'] },
);

/** Bodies: arbitrary JSON, JSON with the right field names and the wrong types, and bytes that are not JSON. */
const body = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  fc
    .record(
      {
        username: fc.jsonValue({ maxDepth: 2 }),
        password: fc.jsonValue({ maxDepth: 2 }),
        name: fc.jsonValue({ maxDepth: 2 }),
        price: fc.oneof(fc.double(), fc.jsonValue({ maxDepth: 1 })),
        type: fc.oneof(fc.constantFrom('welcome-email', 'note', 'message'), nasty),
        to: fc.oneof(fc.emailAddress(), nasty),
        data: fc.jsonValue({ maxDepth: 3 }),
        member: fc.oneof(nasty, fc.jsonValue({ maxDepth: 1 })),
        meta: fc.jsonValue({ maxDepth: 3 }),
        content: fc.oneof(nasty, fc.jsonValue({ maxDepth: 1 })),
        fencingToken: fc.jsonValue({ maxDepth: 1 }),
        model: fc.oneof(nasty, fc.jsonValue({ maxDepth: 1 })),
        messages: fc.oneof(
          fc.array(fc.record({ role: fc.constantFrom('user', 'system', 'assistant', 'tool', 'x'), content: nasty })),
          fc.jsonValue({ maxDepth: 3 }),
        ),
        temperature: fc.jsonValue({ maxDepth: 1 }),
        stream: fc.jsonValue({ maxDepth: 1 }),
      },
      { requiredKeys: [] },
    )
    .map((v) => JSON.stringify(v)),
  fc.constantFrom('', '{', '{"a":', 'null', '[]', '"x"', '{"__proto__":{"polluted":1}}', '\u0000', '{}'.repeat(10)),
  fc.integer({ min: 1, max: 300_000 }).map((n) => `{"messages":[{"role":"user","content":"${'w '.repeat(n)}"}]}`),
  fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
);

const request = fc.record({
  operation: fc.constantFrom(...operations),
  otherMethod: fc.oneof(
    { weight: 5, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS') },
  ),
  params: fc.array(pathSegment, { minLength: 2, maxLength: 2 }),
  extraPath: fc.oneof({ weight: 8, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: pathSegment }),
  query,
  headers,
  body: fc.option(body, { freq: 4 }),
  admin: fc.boolean(),
});

type FuzzRequest = typeof request extends fc.Arbitrary<infer T> ? T : never;

function toBytes(r: FuzzRequest): { head: string; body: Buffer; label: string } {
  const method = r.otherMethod ?? r.operation.method;
  let n = 0;
  let path = r.operation.path.replace(/\{[^}]+\}/g, () => r.params[n++] ?? 'x');
  if (r.extraPath !== null) path += `/${r.extraPath}`;
  const target = `${path}${r.query}`;
  const payload = r.body === null ? Buffer.alloc(0) : Buffer.from(r.body, 'utf8');
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
  if (r.headers.cookie !== undefined) lines.push(`Cookie: ${r.headers.cookie}`);
  if (r.admin) lines.push(`Authorization: Bearer ${ADMIN}`);
  for (const [name, value] of r.headers.extra) lines.push(`${name}: ${value}`);
  if (r.body !== null) lines.push(`Content-Type: ${r.headers.contentType}`, `Content-Length: ${payload.length}`);
  return { head: `${lines.join('\r\n')}\r\n\r\n`, body: payload, label: `${method} ${target.slice(0, 200)}` };
}

function capturingLogger(lines: string[]): Logger {
  const push = (level: string) => (obj: unknown, msg?: string) => {
    lines.push(`${level} ${msg ?? ''} ${obj instanceof Error ? obj.stack : JSON.stringify(obj, errorFields)}`);
  };
  return { info: push('info'), warn: push('warn'), error: push('error'), debug: () => undefined };
}

function errorFields(_key: string, value: unknown): unknown {
  return value instanceof Error ? { name: value.name, message: value.message, stack: value.stack } : value;
}

async function fuzz(port: number, runs: number): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(request, async (r) => {
      const { head, body: payload, label } = toBytes(r);
      const status = await rawRequest(port, head, payload);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      if (status >= 500 && status !== 503) throw new Error(`${label} answered ${status}`);
    }),
    { numRuns: runs, seed: SEED, endOnFailure: true, interruptAfterTimeLimit: 50_000 },
  );
  return statuses;
}

function listen(demo: DemoApp): Promise<Server> {
  return new Promise((resolve) => {
    const server = demo.app.listen(0, '127.0.0.1', () => resolve(server));
  });
}

test('the fuzzer can fail: a server that answers 500 to some inputs is caught, with a seed to replay', async () => {
  const express = (await import('express')).default;
  const app = express();
  app.use((req, res) => {
    res.status(req.url.includes('%') ? 500 : 404).end();
  });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  try {
    const error = (await fuzz((server.address() as AddressInfo).port, 200).then(
      () => undefined,
      (e: unknown) => e,
    )) as (Error & { cause?: unknown }) | undefined;
    expect(error?.message).toMatch(/seed: -?\d+/);
    expect(String((error?.cause as Error | undefined)?.message ?? error?.message)).toMatch(/answered 500/);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

describeWithRedis('bad input against every documented route', () => {
  jest.setTimeout(120_000);
  let redis: RedisProcess;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(() => redis?.stop());

  test.each(['redis', 'memory'] as const)(
    'on the %s store: no 5xx but 503, no hang, no unhandled error, no key over the bound',
    async (store) => {
      const logs: string[] = [];
      const demo = createDemoApp(
        {
          ...(store === 'redis' ? { redis: redis.url } : { store: 'memory' as const }),
          prefix: `fz${store}`,
          logger: capturingLogger(logs),
          admin: { token: ADMIN },
          env: {},
        },
        { sessionSecret: 'fuzz-session-secret-0123456789', llmLatencyMs: [0, 2], apiLimit: 1_000_000 },
      );
      const server = await listen(demo);
      try {
        const runs = store === 'redis' ? RUNS : Math.ceil(RUNS / 2);
        const statuses = await fuzz((server.address() as AddressInfo).port, runs);
        const total = [...statuses.values()].reduce((a, b) => a + b, 0);
        expect(total).toBeGreaterThanOrEqual(Math.min(runs, 50));
        // The run reached the handlers, not only the 404 and 400 paths.
        expect([...statuses.keys()].some((s) => s >= 200 && s < 300)).toBe(true);
        expect(logs.filter((l) => /unhandled/i.test(l))).toEqual([]);

        const keys =
          store === 'redis'
            ? execFileSync('redis-cli', ['-p', String(redis.port), '--scan', '--pattern', 'fzredis:*'], {
                encoding: 'utf8',
                maxBuffer: 64 * 1024 * 1024,
              })
                .split('\n')
                .filter(Boolean)
            : [...(demo.kit.store as unknown as { engine: { data: Map<string, unknown> } }).engine.data.keys()];
        expect(keys.length).toBeGreaterThan(10);
        const longest = keys.reduce((a, k) => (k.length > a.length ? k : a), '');
        expect({ longest, length: longest.length }).toEqual({ longest, length: expect.any(Number) });
        expect(longest.length).toBeLessThanOrEqual(KEY_BOUND);
        // No raw control characters or spaces in any key.
        expect(keys.filter((k) => /[\s\0]/.test(k))).toEqual([]);
        console.info(
          `fuzz [${store}]: ${total} requests, statuses ${JSON.stringify(Object.fromEntries(statuses))}, ` +
            `${keys.length} keys, longest ${longest.length} characters (${longest.slice(0, 80)})`,
        );
      } finally {
        server.closeAllConnections();
        server.close();
        await demo.kit.close();
      }
    },
  );
});
