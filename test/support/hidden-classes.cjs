// Run by test/unit/server.test.ts as `node --allow-natives-syntax --require tsx/cjs test/support/hidden-classes.cjs`:
// for Express 5 and Express 4, serves 100 sequential keep-alive requests from app.listen()'s kind of server and from
// createServer(), and counts how often a request and its response end up with the same hidden class (V8 map) as the
// previous request's. They are compared once both have finished (after 'finish'), when nothing adds to them any more.
// Prints JSON.
'use strict';

const http = require('node:http');
const { createServer } = require('../../plugin/server.ts');

const REQUESTS = 100;

// V8's natives syntax is not JavaScript that linters parse: compiled here, it needs --allow-natives-syntax.
const sameMap = new Function('a', 'b', 'return %HaveSameMap(a, b);');

/** A typical small app: body parser, a middleware writing res.locals, a router with a parameterised route. */
function build(flavour, counts) {
  const app = flavour();
  app.use(flavour.json());
  app.use((_req, res, next) => {
    res.locals.seen = true;
    next();
  });
  const api = flavour.Router();
  let previous;
  api.get('/items/:id', (req, res) => {
    res.on('finish', () =>
      setImmediate(() => {
        if (previous) {
          counts.requests++;
          if (sameMap(previous.req, req)) counts.sameReq++;
          if (sameMap(previous.res, res)) counts.sameRes++;
        }
        previous = { req, res };
      }),
    );
    res.json({ id: req.params.id, fields: req.query.fields });
  });
  app.use('/api', api);
  return app;
}

async function measure(flavour, kind) {
  const counts = { requests: 0, sameReq: 0, sameRes: 0 };
  const app = build(flavour, counts);
  const server = kind === 'kit' ? createServer(app) : http.createServer(app);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const one = () =>
    new Promise((resolve, reject) => {
      const path = '/api/items/42?fields=name';
      http
        .get({ host: '127.0.0.1', port: server.address().port, path, agent }, (res) => {
          res.resume();
          // A turn later, so that the server's finish callback for this request has run.
          res.on('end', () => setTimeout(resolve, 1));
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
  const result = {};
  for (const [name, module] of [
    ['express5', 'express'],
    ['express4', 'express4'],
  ]) {
    const flavour = require(module);
    result[name] = { stock: await measure(flavour, 'stock'), kit: await measure(flavour, 'kit') };
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
