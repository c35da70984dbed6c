// One app process for bench/observability.ts: bare Express 5 answering GET /ping with JSON, or the same app with
// kit.metrics() and kit.usage() in front (BENCH_MODE=instrumented). Prints its port once listening.

import express from 'express';
import { createRedisKit } from '../plugin/index';

const mode = process.env.BENCH_MODE ?? 'bare';
const app = express();
app.disable('x-powered-by');
// CPU time this process has used, for the harness: on shared cores, CPU per request is steadier than req/s.
// Registered first, so it passes no instrumentation.
app.get('/__cpu', (_req, res) => {
  const { user, system } = process.cpuUsage();
  res.json({ micros: user + system });
});
// The tenant and user an auth layer would set; present in both modes so only the kit's cost differs.
app.use((req, res, next) => {
  res.locals.workspace = req.headers['x-ws'];
  res.locals.userId = req.headers['x-user'];
  next();
});
let close: () => Promise<void> = async () => undefined;
// 'instrumented' is what the benchmark compares; 'observe' is the same work in one middleware (kit.observe());
// 'kit', 'metrics', 'usage' and 'layers' (two no-op middlewares: the router's own cost per layer) isolate parts.
if (mode === 'layers') {
  app.use((_req, _res, next) => next());
  app.use((_req, _res, next) => next());
} else if (mode !== 'bare') {
  const kit = createRedisKit({ redis: process.env.BENCH_REDIS as string, prefix: 'bench', env: {}, logger: false });
  if (mode === 'observe') app.use(kit.observe());
  if (mode === 'instrumented' || mode === 'metrics') app.use(kit.metrics());
  if (mode === 'instrumented' || mode === 'usage') app.use(kit.usage());
  close = () => kit.close();
}
app.get('/ping', (_req, res) => {
  res.json({ pong: true });
});
const server = app.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`PORT ${typeof address === 'object' && address ? address.port : 0}\n`);
});
process.on('SIGTERM', () => {
  server.close();
  void close().finally(() => process.exit(0));
});
