// Run by test/unit/server.test.ts as `node --allow-natives-syntax --require tsx/cjs test/support/hidden-classes.cjs`:
// serves 200 sequential keep-alive requests from app.listen()'s kind of server and from createServer(), and counts
// how often a request and its response have the same hidden class (V8 map) as the previous request's, compared at
// the same point (the route handler, after res.json). Prints JSON.
'use strict';

const http = require('node:http');
const express = require('express');
const { createServer } = require('../../plugin/server.ts');

const REQUESTS = 200;

// V8's natives syntax is not JavaScript that linters parse: compiled here, it needs --allow-natives-syntax.
const sameMap = new Function('a', 'b', 'return %HaveSameMap(a, b);');

/** One server, its counts filled in as the requests arrive. */
function serve(kind) {
  const app = express();
  app.use((_req, res, next) => {
    res.locals.seen = true;
    next();
  });
  const counts = { requests: 0, sameReq: 0, sameRes: 0 };
  let previous;
  app.get('/ping', (req, res) => {
    res.json({ pong: true });
    if (previous) {
      counts.requests++;
      if (sameMap(previous.req, req)) counts.sameReq++;
      if (sameMap(previous.res, res)) counts.sameRes++;
    }
    previous = { req, res };
  });
  const server = kind === 'kit' ? createServer(app) : http.createServer(app);
  return { server, counts };
}

async function measure(kind) {
  const { server, counts } = serve(kind);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const one = () =>
    new Promise((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: server.address().port, path: '/ping', agent }, (res) => {
          res.resume();
          res.on('end', resolve);
        })
        .on('error', reject);
    });
  for (let i = 0; i < REQUESTS; i++) await one();
  agent.destroy();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  return counts;
}

(async () => {
  const stock = await measure('stock');
  const kit = await measure('kit');
  process.stdout.write(`${JSON.stringify({ stock, kit })}\n`);
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
