// The server: the same Express apps served by app.listen() and by the kit's createServer(app) (plugin/server.ts),
// whose requests and responses are born with the app's prototypes, so that V8 shares their hidden classes between
// requests instead of making new ones for every request. No middleware of the kit runs in these apps: what is
// measured is the server alone.
//
// Two apps, each in Express 5 and Express 4: GET /ping answering JSON (what every other suite's bare Express is), and
// a typical API app (JSON body parser, a request-id middleware writing res.locals, a router mounted at /api with a
// parameterised route reading a query string). Ratios are to Express 5's GET /ping under app.listen(); each app's
// two servers are best compared with each other.
//
// The interleaved mode (the default) keeps every server under sustained load for seconds at a time, as a busy
// service is; --http-blocks sends blocks of 200 requests in turns, between which each server sits idle.
//   npm run bench -- server

import express4 from 'express4';
import express, { type Express } from 'express';
import type { Setup, Suite } from '../lib/types';

type Flavour = typeof express;
const EXPRESS: Record<'5' | '4', Flavour> = { '5': express, '4': express4 as unknown as Flavour };

function ping(version: '5' | '4'): Express {
  const app = EXPRESS[version]();
  app.disable('x-powered-by');
  app.get('/ping', (_req, res) => {
    res.json({ pong: true });
  });
  return app;
}

let nextId = 0;

function typical(version: '5' | '4'): Express {
  const flavour = EXPRESS[version];
  const app = flavour();
  app.disable('x-powered-by');
  app.use(flavour.json({ limit: '100kb' }));
  app.use((_req, res, next) => {
    nextId = (nextId + 1) % 1_000_000;
    res.locals.requestId = nextId;
    next();
  });
  const api = flavour.Router();
  api.get('/items/:id', (req, res) => {
    res.json({ id: req.params.id, fields: req.query.fields ?? null, request: res.locals.requestId });
  });
  app.use('/api', api);
  return app;
}

const TYPICAL_PATH = '/api/items/42?fields=name';

function setup(name: string, label: string, server: 'listen' | 'kit', build: () => Express, path?: string): Setup {
  return {
    name,
    label,
    role: name === 'bare' ? 'bare' : 'ours',
    usesRedis: false,
    server,
    build,
    ...(path ? { path } : {}),
  };
}

export const suite: Suite = {
  name: 'server',
  description: "Express 5 and 4 apps served by app.listen() and by the kit's createServer(app), no kit middleware",
  sanity: 'every request of every set-up answered 200 (non-2xx responses fail the run).',
  defaults: { rounds: 5, duration: 3 },
  setups: [
    setup('bare', 'Express 5, GET /ping, app.listen() (bare Express)', 'listen', () => ping('5')),
    setup('kit-server', 'Express 5, GET /ping, createServer(app)', 'kit', () => ping('5')),
    setup('express4', 'Express 4, GET /ping, app.listen()', 'listen', () => ping('4')),
    setup('express4-kit-server', 'Express 4, GET /ping, createServer(app)', 'kit', () => ping('4')),
    setup('typical', 'Express 5, typical API app, app.listen()', 'listen', () => typical('5'), TYPICAL_PATH),
    setup(
      'typical-kit-server',
      'Express 5, typical API app, createServer(app)',
      'kit',
      () => typical('5'),
      TYPICAL_PATH,
    ),
    setup('typical4', 'Express 4, typical API app, app.listen()', 'listen', () => typical('4'), TYPICAL_PATH),
    setup(
      'typical4-kit-server',
      'Express 4, typical API app, createServer(app)',
      'kit',
      () => typical('4'),
      TYPICAL_PATH,
    ),
  ],
  targets: [
    {
      feature: 'Express 5 GET /ping served by createServer(app), vs app.listen()',
      setup: 'kit-server',
      reported: 'no target: reported',
    },
  ],
};
