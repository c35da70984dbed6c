// Starts the demo on PORT (default 3000). With nothing configured it runs on the embedded store; REDIS_URL or the
// Upstash variables switch it to Redis.

import { randomBytes } from 'node:crypto';
import { createDemoApp } from './app.js';

const port = Number(process.env.PORT ?? 3000);
// The admin routes are never open: without REDIS_KIT_ADMIN_TOKEN the demo makes a token for this run and prints a
// dashboard link carrying it in the fragment (which the browser does not send to the server).
const generated = process.env.REDIS_KIT_ADMIN_TOKEN ? undefined : randomBytes(24).toString('base64url');
// Optional knobs for load and multi-instance tests: DEMO_API_LIMIT and DEMO_LOGIN_LIMIT (requests per minute),
// DEMO_LLM_LATENCY_MS ("min,max" of the simulated model's latency).
const envInt = (name: string): number | undefined => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${name}: expected a whole number, got "${raw}"`);
  return value;
};
const latency = process.env.DEMO_LLM_LATENCY_MS?.split(',').map(Number);
if (latency && (latency.length !== 2 || latency.some((n) => !Number.isFinite(n) || n < 0))) {
  throw new Error('DEMO_LLM_LATENCY_MS: expected "min,max" in ms, e.g. "0,0"');
}
const { app, kit } = createDemoApp(generated ? { admin: { token: generated } } : {}, {
  apiLimit: envInt('DEMO_API_LIMIT'),
  loginLimit: envInt('DEMO_LOGIN_LIMIT'),
  llmLatencyMs: latency as [number, number] | undefined,
});
// HOST narrows the listening address (e.g. 127.0.0.1); by default every interface, as before.
const host = process.env.HOST || undefined;
const onListening = () => {
  console.log(`express-redis-kit demo listening on http://localhost:${port} (store: ${kit.mode})`);
  const dashboard = `http://localhost:${port}/api/v1/admin/dashboard`;
  if (generated) console.log(`dashboard (token generated for this run): ${dashboard}#token=${generated}`);
  else console.log(`dashboard: ${dashboard} (token: REDIS_KIT_ADMIN_TOKEN)`);
};
const server = host ? app.listen(port, host, onListening) : app.listen(port, onListening);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    server.close();
    void kit.close().finally(() => process.exit(0));
  });
}
