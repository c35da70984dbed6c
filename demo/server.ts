// Starts the demo on PORT (default 3000). With nothing configured it runs on the embedded store; REDIS_URL or the
// Upstash variables switch it to Redis.

import { randomBytes } from 'node:crypto';
import { createServer } from '../plugin/index.js';
import { createDemoApp, demoOptionsFromEnv } from './app.js';

const port = Number(process.env.PORT ?? 3000);
// The admin routes are never open: without REDIS_KIT_ADMIN_TOKEN the demo makes a token for this run and prints a
// dashboard link carrying it in the fragment (which the browser does not send to the server).
const generated = process.env.REDIS_KIT_ADMIN_TOKEN ? undefined : randomBytes(24).toString('base64url');
const { app, kit } = createDemoApp(generated ? { admin: { token: generated } } : {}, demoOptionsFromEnv(process.env));
// HOST narrows the listening address (e.g. 127.0.0.1); by default every interface, as before.
const host = process.env.HOST || undefined;
const onListening = () => {
  console.log(`express-redis-kit demo listening on http://localhost:${port} (store: ${kit.mode})`);
  const dashboard = `http://localhost:${port}/api/v1/admin/dashboard`;
  if (generated) console.log(`dashboard (token generated for this run): ${dashboard}#token=${generated}`);
  else console.log(`dashboard: ${dashboard} (token: REDIS_KIT_ADMIN_TOKEN)`);
};
// createServer() rather than app.listen(): the same server, with requests and responses made with the app's
// prototypes from the start (docs/server.md).
const server = createServer(app);
server.on('error', (error) => {
  console.error(`express-redis-kit demo could not listen on port ${port}: ${error.message}`);
  process.exit(1);
});
server.listen(port, host, onListening);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    server.close();
    void kit.close().finally(() => process.exit(0));
  });
}
