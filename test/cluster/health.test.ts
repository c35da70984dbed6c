// /health/redis on a Cluster asks every master, not one: with a master down, part of the keyspace is unreachable,
// and a keyless PING that happened to reach a live node reported the store ready.

import express from 'express';
import request from 'supertest';
import { createRedisKit, type RedisKit } from '../../plugin/index';
import { type PrivateCluster, startPrivateCluster } from '../support/private-cluster';
import { describeWithRedis } from '../support/require-redis';

jest.setTimeout(60_000);

describeWithRedis('health on a Cluster', () => {
  let cluster: PrivateCluster;
  let kit: RedisKit;

  beforeAll(async () => {
    cluster = await startPrivateCluster({ masters: 3, replicas: 0 });
    kit = createRedisKit({
      cluster: cluster.seeds.split(','),
      logger: false,
      env: {},
      health: { timeout: '400 ms' },
    });
    await kit.ready();
  });

  afterAll(async () => {
    await kit?.close();
    await cluster?.stop();
  });

  test('every master answering is a pass; one master down is a 503, every time', async () => {
    const app = express().use(kit.router());
    for (let i = 0; i < 5; i++) {
      const up = await request(app).get('/health/redis');
      expect({ i, status: up.status, body: up.body.status }).toEqual({ i, status: 200, body: 'pass' });
    }
    // A master that hangs (SIGSTOP) is one node down too, within the health budget, and not an outage.
    const paused = cluster.ports[2] as number;
    const info = String(await cluster.admin(paused).info('server'));
    const pid = Number(/process_id:(\d+)/.exec(info)?.[1]);
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, 'SIGSTOP');
    try {
      for (let i = 0; i < 6; i++) {
        const started = Date.now();
        const hung = await request(app).get('/health/redis');
        expect({ i, status: hung.status, body: hung.body.status }).toEqual({ i, status: 503, body: 'fail' });
        expect(Date.now() - started).toBeLessThan(2000);
      }
      expect(kit.store.circuitState).toBe('closed');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    let back = 0;
    for (let i = 0; i < 40 && back !== 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
      back = (await request(app).get('/health/redis')).status;
    }
    expect(back).toBe(200);

    await cluster.kill(cluster.ports[1] as number);
    for (let i = 0; i < 6; i++) {
      const down = await request(app).get('/health/redis');
      expect({ i, status: down.status, body: down.body.status }).toEqual({ i, status: 503, body: 'fail' });
    }
    // The masters still up keep serving: a dead node's health failures do not open the kit's circuit.
    expect(kit.store.circuitState).toBe('closed');
  });
});
