// The response cache across real processes on a real Redis: one handler call for a burst on a cold key spread
// over two app processes, invalidation on one seen by the other, and a store that goes away.

import { type ChildProcess, spawn } from 'node:child_process';
import { Agent, request as httpRequest } from 'node:http';
import { join } from 'node:path';
import express from 'express';
import request from 'supertest';
import { createRedisKit } from '../../plugin/index';
import { startRedis } from '../support/redis-server';
import { describeWithRedis } from '../support/require-redis';
import { standaloneUrl, uniquePrefix } from '../support/stores';

interface AppProcess {
  port: number;
  child: ChildProcess;
}

async function startApp(env: Record<string, string>): Promise<AppProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'fixtures', 'app-process.ts')], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('app process did not start')), 20_000);
    child.stdout?.once('data', (d: Buffer) => {
      clearTimeout(timer);
      resolve(Number(String(d).trim()));
    });
    child.once('exit', (code) => reject(new Error(`app process exited with ${code}`)));
  });
  return { port, child };
}

function stopApp(app: AppProcess): Promise<void> {
  return new Promise((resolve) => {
    if (app.child.exitCode !== null) return resolve();
    app.child.once('exit', () => resolve());
    app.child.kill('SIGTERM');
  });
}

const agent = new Agent({ keepAlive: true, maxSockets: 100 });

function call(
  port: number,
  method: string,
  path: string,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describeWithRedis('response cache across processes', () => {
  let a: AppProcess;
  let b: AppProcess;
  beforeAll(async () => {
    const env = { RK_REDIS_URL: standaloneUrl() as string, RK_PREFIX: uniquePrefix() };
    [a, b] = await Promise.all([startApp(env), startApp({ ...env, RK_HOT: '1' })]);
  }, 40_000);
  afterAll(async () => {
    await Promise.all([a && stopApp(a), b && stopApp(b)]);
    agent.destroy();
  });

  test('100 concurrent requests for one cold key over two processes: exactly one handler call', async () => {
    const replies = await Promise.all(
      Array.from({ length: 100 }, (_, i) => call(i % 2 ? a.port : b.port, 'GET', '/cold')),
    );
    expect(replies.every((r) => r.status === 200)).toBe(true);
    const bodies = new Set(replies.map((r) => r.body));
    expect(bodies.size).toBe(1);
    const counts = await Promise.all(
      [a, b].map(async (p) => JSON.parse((await call(p.port, 'GET', '/calls')).body).calls),
    );
    expect(counts[0] + counts[1]).toBe(1);
    const statuses = replies.map((r) => String(r.headers['cache-status']));
    expect(statuses.filter((s) => s.endsWith('fwd=miss'))).toHaveLength(1);
    // Both processes had requests that waited for the other's (or their own) fill.
    expect(statuses.filter((s) => s.includes('collapsed')).length).toBeGreaterThan(0);
  });

  test('invalidation by tag on instance A is seen by instance B (which has a hot layer)', async () => {
    expect(JSON.parse((await call(b.port, 'GET', '/tagged')).body).version).toBe(1);
    // The fill stores after its response has gone out; by the next request or the one after, B answers from memory.
    let hot = '';
    for (let i = 0; i < 3 && !hot.includes('detail=memory'); i++) {
      hot = String((await call(b.port, 'GET', '/tagged')).headers['cache-status']);
    }
    expect(hot).toMatch(/detail=memory/);
    await Promise.all([a, b].map((p) => call(p.port, 'POST', '/version/2')));
    const { body } = await call(a.port, 'POST', '/invalidate');
    expect(JSON.parse(body).deleted).toBe(1);
    // The store copy is gone when invalidate() resolves; B's in-process copy goes when the pub/sub message lands
    // (sub-millisecond on one machine). Poll briefly rather than assume a delivery time.
    let seen = 0;
    for (let i = 0; i < 50 && seen !== 2; i++) {
      seen = JSON.parse((await call(b.port, 'GET', '/tagged')).body).version;
      if (seen !== 2) await new Promise((r) => setTimeout(r, 10));
    }
    expect(seen).toBe(2);
    // Instance A has no hot layer: its very next request reads the store and misses.
    const next = await call(a.port, 'GET', '/tagged');
    expect(JSON.parse(next.body).version).toBe(2);
  });
});

describeWithRedis('response cache when the store fails', () => {
  test('requests go to the handler uncached, bounded by the command timeout, and caching resumes', async () => {
    const redis = await startRedis();
    const kit = createRedisKit({
      redis: redis.url,
      prefix: uniquePrefix(),
      logger: false,
      env: {},
      commandTimeout: 200,
      circuitBreaker: { failureThreshold: 2, cooldown: 200 },
    });
    let calls = 0;
    const app = express();
    app.get('/x', kit.cache(), (_req, res) => {
      calls++;
      res.json({ calls });
    });
    try {
      await kit.ready();
      // Warm up until a hit: with a 200 ms command timeout, a loaded machine can time out the first calls.
      let warm = '';
      for (let i = 0; i < 20 && !/hit/.test(warm); i++) {
        warm = String((await request(app).get('/x')).headers['cache-status']);
      }
      expect(warm).toMatch(/hit/);

      redis.pause(); // a black hole: connected, never answers
      const started = Date.now();
      const r = await request(app).get('/x');
      expect(Date.now() - started).toBeLessThan(2000);
      expect(r.status).toBe(200);
      expect(r.headers['cache-status']).toMatch(/fwd=bypass; detail=store-unavailable/);
      redis.resume();

      await redis.stop();
      for (let i = 0; i < 3; i++) {
        const down = await request(app).get('/x');
        expect(down.status).toBe(200);
        expect(down.headers['cache-status']).toMatch(/store-unavailable/);
      }
      expect(kit.cache.stats().storeErrors).toBeGreaterThan(0);

      const again = await startRedis({ port: redis.port });
      try {
        let status = '';
        for (let i = 0; i < 40 && !/hit/.test(status); i++) {
          await new Promise((res) => setTimeout(res, 100));
          status = String((await request(app).get('/x')).headers['cache-status']);
        }
        expect(status).toMatch(/hit/);
      } finally {
        await kit.close();
        await again.stop();
      }
    } finally {
      await kit.close();
      await redis.stop();
    }
  });
});
