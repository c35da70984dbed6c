// Circuit state and store failures in the metrics: with its server killed the kit's circuit opens and /metrics says
// so (and still answers); when the server is back the gauge returns to closed. Usage flushes fail and are retried.

import express from 'express';
import request from 'supertest';
import { createRedisKit, type RedisKit } from '../../plugin/index';
import { type RedisProcess, startRedis } from '../support/redis-server';
import { describeWithRedis } from '../support/require-redis';

const TOKEN = 'circuit-admin-token-0123456789';

function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

describeWithRedis('metrics through a store outage', () => {
  let server: RedisProcess;
  let kit: RedisKit;
  const app = express();

  beforeAll(async () => {
    server = await startRedis();
    kit = createRedisKit({
      redis: server.url,
      prefix: 'circuit',
      env: {},
      logger: false,
      admin: { token: TOKEN },
      commandTimeout: 200,
      circuitBreaker: { failureThreshold: 2, cooldown: 300 },
      usage: { flushInterval: '1 m' },
    });
    kit.mount(app);
    await kit.ready();
  });
  afterAll(async () => {
    await kit.close();
    await server.stop();
  });

  const scrape = async () => {
    const res = await request(app).get('/api/v1/metrics').set('Authorization', `Bearer ${TOKEN}`);
    expect(res.status).toBe(200);
    return parse(res.text);
  };

  test('circuit state, opens, failures and failed flushes move; all recover when the server is back', async () => {
    kit.usage.record({ workspace: 'w' });
    await kit.usage.flush();
    let m = await scrape();
    expect(m.get('rediskit_store_circuit_state{state="closed"}')).toBe(1);
    expect(m.get('rediskit_store_circuit_opens_total')).toBe(0);
    expect(m.get('rediskit_usage_flushes_total{outcome="ok"}')).toBe(1);

    const port = server.port;
    await server.stop();
    for (let i = 0; i < 3; i++) await kit.store.get('k').catch(() => undefined);
    kit.usage.record({ workspace: 'w' });
    await kit.usage.flush();
    m = await scrape();
    expect(m.get('rediskit_store_circuit_state{state="open"}')).toBe(1);
    expect(m.get('rediskit_store_circuit_state{state="closed"}')).toBe(0);
    expect(m.get('rediskit_store_circuit_opens_total')).toBeGreaterThanOrEqual(1);
    expect(m.get('rediskit_store_unavailable_total')).toBeGreaterThanOrEqual(3);
    expect(m.get('rediskit_usage_flushes_total{outcome="error"}')).toBeGreaterThanOrEqual(1);
    expect(m.get('rediskit_usage_buffered_series')).toBe(1); // kept for the next flush
    expect(
      [...m.keys()].some(
        (k) => k.startsWith('rediskit_store_command_duration_seconds_count') && k.includes('outcome="error"'),
      ),
    ).toBe(true);
    const report = (await request(app).get('/api/v1/admin/redis-metrics').set('Authorization', `Bearer ${TOKEN}`)).body;
    expect(report.store.circuit).toBe('open');
    expect(report.server.available).toBe(false);

    server = await startRedis({ port });
    const deadline = Date.now() + 10_000;
    while (kit.store.circuitState !== 'closed' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await kit.usage.flush();
    m = await scrape();
    expect(m.get('rediskit_store_circuit_state{state="closed"}')).toBe(1);
    expect(m.get('rediskit_usage_buffered_series')).toBe(0);
    expect((await kit.usage.query({ workspace: 'w', granularity: 'day' })).totals.requests).toBe(1); // the restart emptied the server; the retried count arrived
  }, 30_000);
});
