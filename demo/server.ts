// Starts the demo on PORT (default 3000). With nothing configured it runs on the embedded store; REDIS_URL or the
// Upstash variables switch it to Redis.

import { createDemoApp } from './app.js';

const port = Number(process.env.PORT ?? 3000);
const { app, kit } = createDemoApp();
const server = app.listen(port, () => {
  console.log(`express-redis-kit demo listening on http://localhost:${port} (store: ${kit.mode})`);
});

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    server.close();
    void kit.close().finally(() => process.exit(0));
  });
}
