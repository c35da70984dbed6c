// Usage counts are exact across processes: two app processes share one Redis, 10,000 requests from 3 workspaces
// are spread over both, the processes are stopped (SIGTERM: close() flushes what is buffered), and a third kit reads
// every count back.

import { type ChildProcess, spawn } from 'node:child_process';
import { Agent, request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { createRedisKit } from '../../plugin/index';
import { describeWithRedis } from '../support/require-redis';
import { standaloneUrl, uniquePrefix } from '../support/stores';

const FIXTURE = join(__dirname, 'fixtures', 'app.ts');
const REQUESTS = 10_000;
const WORKSPACES = ['acme', 'globex', 'initech'];
const USERS = 40;

function startApp(env: Record<string, string>): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    // node --import tsx, not the tsx CLI: the CLI relays SIGTERM to its child and, when the child does not confirm
    // within 30 ms (a loaded machine), SIGKILLs it and exits 143, so close() never gets to flush.
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    const timer = setTimeout(() => reject(new Error('the app process did not start within 30 s')), 30_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /PORT (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]) });
      }
    });
    child.once('exit', (code) => reject(new Error(`the app process exited early (${code})`)));
  });
}

describeWithRedis('usage across two app processes (real Redis)', () => {
  const url = standaloneUrl();
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  });

  test(`${REQUESTS} requests from ${WORKSPACES.length} workspaces, two processes: counts exact, nothing lost on close`, async () => {
    const prefix = uniquePrefix();
    // One process flushes every 250 ms; the other holds everything until close(), so close() must flush it all.
    const apps = await Promise.all([
      startApp({ USAGE_TEST_REDIS: url as string, USAGE_TEST_PREFIX: prefix }),
      startApp({ USAGE_TEST_REDIS: url as string, USAGE_TEST_PREFIX: prefix, USAGE_TEST_FLUSH: '10 m' }),
    ]);
    for (const a of apps) children.push(a.child);
    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    const expected = new Map<string, number>();
    const get = (port: number, path: string, ws: string, user: string) =>
      new Promise<number>((resolve, reject) => {
        const req = httpRequest(
          { host: '127.0.0.1', port, path, agent, headers: { 'x-ws': ws, 'x-user': user } },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end();
      });
    let next = 0;
    let failed = 0;
    const worker = async () => {
      while (next < REQUESTS) {
        const i = next++;
        const ws = WORKSPACES[i % WORKSPACES.length] as string;
        const user = `u${i % USERS}`;
        expected.set(`${ws}/${user}`, (expected.get(`${ws}/${user}`) ?? 0) + 1);
        const status = await get((apps[i % 2] as { port: number }).port, `/items/${i}`, ws, user);
        if (status !== 200) failed++;
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
    agent.destroy();
    expect(failed).toBe(0);

    await Promise.all(
      apps.map(
        ({ child }) =>
          new Promise<void>((resolve, reject) => {
            child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`exit code ${code}`))));
            child.kill('SIGTERM');
          }),
      ),
    );

    const reader = createRedisKit({ redis: url as string, prefix, env: {}, logger: false });
    try {
      let total = 0;
      for (const ws of WORKSPACES) {
        const r = await reader.usage.query({ workspace: ws, granularity: 'day' });
        const want =
          Math.floor(REQUESTS / WORKSPACES.length) + (WORKSPACES.indexOf(ws) < REQUESTS % WORKSPACES.length ? 1 : 0);
        expect(r.totals.requests).toBe(want);
        expect(r.totals.routes).toEqual({ '/items/:id': want });
        for (const [user, n] of Object.entries(r.totals.users)) expect(n).toBe(expected.get(`${ws}/${user}`));
        expect(Object.values(r.totals.users).reduce((a, b) => a + b, 0)).toBe(want);
        // HyperLogLog is an estimate; at this size Redis' sparse encoding is within a couple of users.
        const distinct = new Set([...expected.keys()].filter((k) => k.startsWith(`${ws}/`))).size;
        expect(Math.abs((r.uniqueUsers as number) - distinct)).toBeLessThanOrEqual(1);
        const minutes = await reader.usage.query({
          workspace: ws,
          granularity: 'minute',
          from: Date.now() - 10 * 60_000,
        });
        expect(minutes.totals.requests).toBe(want);
        total += r.totals.requests;
      }
      expect(total).toBe(REQUESTS);
    } finally {
      await reader.close();
    }
  }, 120_000);
});
