// The session middleware's own instructions, without a server around them: a hot loop that calls kit.session()
// (embedded store) on prepared Express requests carrying a valid session cookie, then reads one field through
// req.session the way a route does, then ends the response (the session's writeHead and end hooks and its
// end-of-request check; node's own writeHead and end are stubbed out in this process, as there is no socket). Set
// beside the HTTP-blocks figures (docs/performance.md, "Same-size requests"),
// it shows how much of a request's cost over HTTP is the code itself and how much its cold caches.
//
//   npx tsx bench/session-hot-loop.ts [--requests 200000] [--rounds 5]
//
// Each round builds fresh request and response objects first (not timed), so every call meets objects it has not
// seen, as a server does; the code stays hot, as it does not in a server. Measures the compiled package
// (`npm run build` first).

import { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Request, type Response } from 'express';
import { createRedisKit } from './lib/kit';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`);
  const value = i >= 0 ? Number(args[i + 1]) : fallback;
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name}: expected a whole number >= 1`);
  return value;
};
const REQUESTS = flag('requests', 200_000);
const ROUNDS = flag('rounds', 5);

async function main(): Promise<void> {
  const kit = createRedisKit({ store: 'memory', logger: false, env: {} });
  const session = kit.session({ secret: 'bench-secret-0123456789abcdef' });
  const app = express();
  app.use(session);
  app.get('/login', (req, res) => {
    (req.session as unknown as Record<string, unknown>).user = 'bench';
    res.json({ ok: true });
  });
  const server = app.listen(0);
  await new Promise<void>((resolve) => server.once('listening', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const login = await fetch(`http://127.0.0.1:${port}/login`);
    const cookie = login.headers.get('set-cookie')?.split(';')[0];
    if (!cookie) throw new Error('/login set no cookie');

    // Requests and responses on Express's own prototypes, as the middleware meets them in a server.
    const prepare = (): Array<[Request, Response]> => {
      const pairs: Array<[Request, Response]> = [];
      for (let i = 0; i < REQUESTS; i++) {
        const req = Object.create(app.request) as Request;
        const res = Object.create(app.response) as Response;
        Object.assign(req, { headers: { cookie }, res });
        Object.assign(res, { req, locals: Object.create(null) });
        pairs.push([req, res]);
      }
      return pairs;
    };
    const next = (): void => {};
    // From here on, no response of this process reaches a socket: node's methods, which the session's hooks call
    // after their own work, do nothing. (The login above went out before.)
    ServerResponse.prototype.writeHead = function writeHead(this: ServerResponse) {
      return this;
    } as ServerResponse['writeHead'];
    ServerResponse.prototype.end = function end(this: ServerResponse) {
      return this;
    } as ServerResponse['end'];
    for (let round = 1; round <= ROUNDS; round++) {
      const pairs = prepare();
      let t = process.hrtime.bigint();
      for (const [req, res] of pairs) session(req, res, next);
      const middleware = Number(process.hrtime.bigint() - t) / REQUESTS;
      let found = 0;
      t = process.hrtime.bigint();
      for (const [req] of pairs) if ((req.session as unknown as Record<string, unknown>).user === 'bench') found++;
      const access = Number(process.hrtime.bigint() - t) / REQUESTS;
      if (found !== REQUESTS) throw new Error(`round ${round}: ${found} of ${REQUESTS} requests read the session`);
      t = process.hrtime.bigint();
      for (const [, res] of pairs) {
        res.writeHead(200);
        res.end();
      }
      const end = Number(process.hrtime.bigint() - t) / REQUESTS;
      console.log(
        `round ${round}: middleware ${middleware.toFixed(0)} ns a request, first req.session access ${access.toFixed(0)} ns, ` +
          `writeHead + end ${end.toFixed(0)} ns`,
      );
    }
  } finally {
    server.close();
    await kit.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
