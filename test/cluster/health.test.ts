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
    await cluster.kill(cluster.ports[1] as number);
    for (let i = 0; i < 6; i++) {
      const down = await request(app).get('/health/redis');
      expect({ i, status: down.status, body: down.body.status }).toEqual({ i, status: 503, body: 'fail' });
    }
    // The masters still up keep serving: a dead node's health failures do not open the kit's circuit.
    expect(kit.store.circuitState).toBe('closed');
  });
});
