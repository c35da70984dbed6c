// createServer(app) / serverClasses(app): requests and responses born with the app's prototypes. The app must behave
// exactly as under app.listen() (Express 4 and 5, sub-apps, errors, the kit's own middlewares), and the point of it,
// hidden classes shared between requests, is checked in a child Node with V8's natives syntax.

import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http, { type Server } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import express5, { type Express } from 'express';
import express4 from 'express4';
import request from 'supertest';
import { ConfigError, createRedisKit, createServer, serverClasses } from '../../plugin/index';
import { bornWith, classesOn, type ServerClasses } from '../../plugin/server';

const run = promisify(execFile);

async function listening(server: Server | https.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function closed(server: Server | https.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

describe.each([
  ['Express 4', express4 as unknown as typeof express5],
  ['Express 5', express5],
])('createServer() on %s', (_name, express) => {
  test('requests and responses have the app prototypes before Express sees them', async () => {
    const app = express();
    app.get('/ping', (_req, res) => {
      res.json({ pong: true });
    });
    const server = createServer(app);
    const seen: boolean[] = [];
    server.prependListener('request', (req, res) => {
      seen.push(Object.getPrototypeOf(req) === app.request, Object.getPrototypeOf(res) === app.response);
    });
    const url = await listening(server);
    try {
      const res = await request(url).get('/ping');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ pong: true });
      expect(seen).toEqual([true, true]);
    } finally {
      await closed(server);
    }
  });

  test('routing, params, query, res.locals, HEAD, 404 and the error handler behave as under app.listen()', async () => {
    const build = (): Express => {
      const app = express();
      app.use((_req, res, next) => {
        res.locals.who = 'mw';
        next();
      });
      app.get('/items/:id', (req, res) => {
        res.json({ id: req.params.id, q: req.query.q, who: res.locals.who, ip: typeof req.ip });
      });
      app.get('/boom', () => {
        throw new Error('boom');
      });
      app.use(
        (err: Error, _req: express5.Request, res: express5.Response, _next: express5.NextFunction) =>
          void res.status(500).json({ error: err.message }),
      );
      return app;
    };
    const server = createServer(build());
    const url = await listening(server);
    const stock = build();
    try {
      for (const target of [url, stock] as const) {
        const item = await request(target).get('/items/42?q=x');
        expect([item.status, item.body]).toEqual([200, { id: '42', q: 'x', who: 'mw', ip: 'string' }]);
        const head = await request(target).head('/items/42');
        expect([head.status, head.text]).toEqual([200, undefined]);
        expect((await request(target).get('/nothing')).status).toBe(404);
        const boom = await request(target).get('/boom');
        expect([boom.status, boom.body]).toEqual([500, { error: 'boom' }]);
      }
    } finally {
      await closed(server);
    }
  });

  test('a mounted sub-app gets its own prototypes inside it and gives the parent its own back', async () => {
    const app = express();
    const sub = express();
    sub.get('/where', (req, res) => {
      res.json({ sub: req.app === sub, base: req.baseUrl, proto: Object.getPrototypeOf(res) === sub.response });
    });
    app.use('/sub', sub);
    app.use((req, res) => {
      res.status(404).json({ parent: req.app === app, proto: Object.getPrototypeOf(req) === app.request });
    });
    const server = createServer(app);
    const url = await listening(server);
    try {
      const inside = await request(url).get('/sub/where');
      expect(inside.body).toEqual({ sub: true, base: '/sub', proto: true });
      const after = await request(url).get('/sub/missing');
      expect([after.status, after.body]).toEqual([404, { parent: true, proto: true }]);
    } finally {
      await closed(server);
    }
  });
});

test.each([
  ['Express 4', express4 as unknown as typeof express5],
  ['Express 5', express5],
])(
  "the kit's middlewares work on it (%s): a session survives between requests, limits and metrics count",
  async (_name, express) => {
    const kit = createRedisKit({ store: 'memory', logger: false, env: {}, admin: { open: true } });
    const app = express();
    app.use(kit.observe());
    app.use(kit.rateLimit({ limit: 2, window: '1 m' }));
    app.use(kit.session({ secret: 's'.repeat(32) }));
    app.post('/login', (req, res) => {
      (req.session as unknown as Record<string, unknown>).user = 'ada';
      res.json({ ok: true });
    });
    app.get('/me', (req, res) => {
      res.json({ user: (req.session as unknown as Record<string, unknown>).user ?? null });
    });
    const server = createServer(app);
    const url = await listening(server);
    try {
      const login = await request(url).post('/login');
      expect(login.status).toBe(200);
      const cookie = login.headers['set-cookie'] as unknown as string[];
      expect(cookie).toHaveLength(1);
      const me = await request(url).get('/me').set('Cookie', cookie);
      expect(me.body).toEqual({ user: 'ada' });
      expect(me.headers.ratelimit).toMatch(/r=0/);
      expect((await request(url).get('/me')).status).toBe(429);
      const counted = (await kit.metrics.snapshot()).rediskit_http_requests_total?.samples ?? [];
      const total = counted.reduce((sum, s) => sum + ('value' in s ? s.value : 0), 0);
      expect(total).toBe(3);
    } finally {
      await closed(server);
      await kit.close();
    }
  },
);

test('server options pass through, and the classes are made once per app', async () => {
  const app = express5();
  app.get('/', (_req, res) => {
    res.send('ok');
  });
  expect(serverClasses(app)).toBe(serverClasses(app));
  expect(serverClasses(app).ServerResponse).not.toBe(serverClasses(express5()).ServerResponse);
  const server = createServer(app, { maxHeaderSize: 1024 });
  const url = await listening(server);
  try {
    expect((await request(url).get('/')).status).toBe(200);
    expect((await request(url).get('/').set('X-Big', 'x'.repeat(2048))).status).toBe(431);
  } finally {
    await closed(server);
  }
  // http.createServer with the two classes is the server createServer() makes (https.createServer takes the same
  // options; not tested here).
  const again = http.createServer({ ...serverClasses(app) }, app);
  const againUrl = await listening(again);
  try {
    expect((await request(againUrl).get('/')).text).toBe('ok');
  } finally {
    await closed(again);
  }
});

test('a constructor that builds its own object when called without new still gives one on the prototype', () => {
  const proto = { kind: 'app' };
  // As Node's are: a plain function that initialises `this`.
  function Plain(this: { x?: number }, x: number) {
    this.x = x;
  }
  // As some runtimes' polyfills are: called without new, it makes and returns an object of its own.
  function SelfMade(this: unknown, x: number): unknown {
    if (!new.target) return new (SelfMade as unknown as new (x: number) => { x: number })(x);
    (this as { x: number }).x = x;
    return undefined;
  }
  for (const base of [Plain, SelfMade]) {
    const Born = bornWith(base as never, proto) as unknown as new (x: number) => { x: number };
    const made = new Born(7);
    expect(made.x).toBe(7);
    expect(Object.getPrototypeOf(made)).toBe(proto);
  }
});

test('class-syntax request classes are served unchanged, with one ERR_KIT_SERVER_CLASSES warning', async () => {
  // Node 20's IncomingMessage and ServerResponse are plain functions; a Node whose are classes cannot have them
  // called without new. Stand-ins written with class syntax take that path here, in a fresh copy of the module, so
  // that whether an earlier test used up the once-per-process warning does not matter.
  let fresh: typeof import('../../plugin/server') | undefined;
  jest.isolateModules(() => {
    fresh = require('../../plugin/server') as typeof import('../../plugin/server');
  });
  const { classesOn: freshClassesOn } = fresh as typeof import('../../plugin/server');
  let built = 0;
  class ClassRequest extends http.IncomingMessage {
    constructor(socket: ConstructorParameters<typeof http.IncomingMessage>[0]) {
      super(socket);
      built++;
    }
  }
  class ClassResponse extends http.ServerResponse {}
  const bases = { IncomingMessage: ClassRequest, ServerResponse: ClassResponse } as unknown as ServerClasses;
  const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
  try {
    const app = express5();
    app.get('/who', (req, res) => {
      res.json({ request: Object.getPrototypeOf(req) === app.request, q: req.query.q });
    });
    const classes = freshClassesOn(bases, app.request, app.response);
    expect(classes).toBe(bases);
    expect(freshClassesOn(bases, app.request, app.response)).toBe(bases);
    const server = http.createServer({ ...classes }, app);
    const url = await listening(server);
    try {
      // Served as under app.listen(): the server builds each request with the class given, and Express then moves
      // it onto the app's prototype.
      const res = await request(url).get('/who?q=1');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ request: true, q: '1' });
      expect(built).toBe(1);
    } finally {
      await closed(server);
    }
    const ours = emitWarning.mock.calls.filter(
      ([, options]) => (options as { code?: string })?.code === 'ERR_KIT_SERVER_CLASSES',
    );
    expect(ours).toHaveLength(1);
  } finally {
    emitWarning.mockRestore();
  }
  // Plain-function bases (Node 20's own) still get classes of their own, born with the prototypes.
  const app = express5();
  const made = classesOn(
    { IncomingMessage: http.IncomingMessage, ServerResponse: http.ServerResponse },
    app.request,
    app.response,
  );
  expect(made.IncomingMessage).not.toBe(http.IncomingMessage);
  expect(made.IncomingMessage.prototype).toBe(app.request);
  expect(made.ServerResponse.prototype).toBe(app.response);
});

test('serverClasses(app) serves over https.createServer too, with the prototypes from birth', async () => {
  const app = express5();
  app.get('/ping', (_req, res) => {
    res.json({ pong: true });
  });
  // A self-signed certificate for 127.0.0.1, made for this test and nothing else (test/support/tls/).
  const tls = join(__dirname, '..', 'support', 'tls');
  const server = https.createServer(
    {
      key: readFileSync(join(tls, 'localhost-test-only.key')),
      cert: readFileSync(join(tls, 'localhost-test-only.crt')),
      ...serverClasses(app),
    },
    app,
  );
  const seen: boolean[] = [];
  server.prependListener('request', (req, res) => {
    seen.push(Object.getPrototypeOf(req) === app.request, Object.getPrototypeOf(res) === app.response);
  });
  await listening(server);
  try {
    const { port } = server.address() as AddressInfo;
    const body = await new Promise<string>((resolve, reject) => {
      https
        .get({ host: '127.0.0.1', port, path: '/ping', rejectUnauthorized: false }, (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => {
            text += chunk.toString();
          });
          res.on('end', () => resolve(text));
        })
        .on('error', reject);
    });
    expect(JSON.parse(body)).toEqual({ pong: true });
    expect(seen).toEqual([true, true]);
  } finally {
    await closed(server);
  }
});

test("an upgrade request reaches the server's 'upgrade' listener, already on the app's prototype", async () => {
  const app = express5();
  const server = createServer(app);
  const seen: boolean[] = [];
  server.on('upgrade', (req, socket) => {
    seen.push(Object.getPrototypeOf(req) === app.request);
    socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n');
  });
  await listening(server);
  try {
    const { port } = server.address() as AddressInfo;
    const upgraded = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, headers: { Connection: 'Upgrade', Upgrade: 'test' } });
      req.on('upgrade', (res, socket) => {
        socket.destroy();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(upgraded).toBe(101);
    expect(seen).toEqual([true]);
  } finally {
    await closed(server);
  }
});

test('anything but an Express application is refused with a ConfigError', () => {
  const notApps: unknown[] = [
    undefined,
    null,
    {},
    () => undefined,
    express5.Router(),
    Object.assign(() => undefined, { request: {}, response: {} }),
    Object.assign(() => undefined, { request: Object.create(http.IncomingMessage.prototype), response: {} }),
  ];
  for (const value of notApps) {
    expect(() => serverClasses(value as never)).toThrow(ConfigError);
    expect(() => createServer(value as never)).toThrow(/expected an Express application/);
  }
  // The two classes are createServer's own to set.
  const own = { IncomingMessage: http.IncomingMessage } as never;
  expect(() => createServer(express5(), own)).toThrow(ConfigError);
});

// The reason createServer() exists, checked where V8 can tell: a child Node with --allow-natives-syntax serves 100
// requests both ways, on Express 5 and 4, and compares each finished request's and response's hidden class with the
// previous one's.
test('requests and responses share a hidden class on createServer(), and never on app.listen()', async () => {
  const script = join(__dirname, '..', 'support', 'hidden-classes.cjs');
  const { stdout } = await run(process.execPath, ['--allow-natives-syntax', '--require', 'tsx/cjs', script], {
    cwd: join(__dirname, '..', '..'),
    timeout: 20_000,
  });
  type Counts = { requests: number; sameReq: number; sameRes: number };
  const result = JSON.parse(stdout) as Record<'express5' | 'express4', Record<'stock' | 'kit', Counts>>;
  // 99 comparisons each. A margin of a tenth: V8 may still be settling a field's representation in the first few
  // requests (every run here gave 99 and 0).
  for (const version of ['express5', 'express4'] as const) {
    const { kit, stock } = result[version];
    expect([version, kit.requests, stock.requests]).toEqual([version, 99, 99]);
    expect(Math.min(kit.sameReq, kit.sameRes)).toBeGreaterThanOrEqual(90);
    // If this starts to fail, V8 now caches these hidden classes: app.listen() no longer needs createServer(), and
    // plugin/server.ts, docs/server.md and docs/performance.md should say so.
    expect(Math.max(stock.sameReq, stock.sameRes)).toBeLessThanOrEqual(9);
  }
});
