// Clients the user already has: an ioredis Redis or Cluster instance, an @upstash/redis instance, and Redis behind
// Sentinel. The kit uses them as they are, and leaves instances it did not create open on close().

import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import Redis, { Cluster } from 'ioredis';
import { Redis as Upstash } from '@upstash/redis';
import { createRedisKit } from '../../plugin/index';
import { freePort } from '../support/redis-server';
import { describeWithRedis } from '../support/require-redis';
import { clusterNodes, standaloneUrl, uniquePrefix } from '../support/stores';
import { startUpstashEmulator, type UpstashEmulator } from '../support/upstash-emulator';

describeWithRedis('user-supplied clients', () => {
  test('an ioredis instance: used as it is and left open by close()', async () => {
    const client = new Redis(standaloneUrl() as string);
    const kit = createRedisKit({ redis: client, logger: false, prefix: uniquePrefix() });
    expect(kit.mode).toBe('standalone');
    const key = kit.store.keys.key('t', 'a');
    expect((await kit.store.incrBy(key, 5, 0)).value).toBe(5);
    await kit.close();
    expect(await client.get(key)).toBe('5');
    client.disconnect();
  });

  test('an ioredis Cluster instance, given as redis or as cluster', async () => {
    const nodes = (clusterNodes() as string[]).map((n) => ({ host: '127.0.0.1', port: Number(n.split(':')[1]) }));
    const client = new Cluster(nodes);
    for (const option of ['redis', 'cluster'] as const) {
      const kit = createRedisKit({ [option]: client, logger: false, prefix: uniquePrefix() });
      expect(kit.mode).toBe('cluster');
      const keys = ['a', 'b', 'c', 'd'].map((id) => kit.store.keys.key('t', id));
      for (const k of keys) await kit.store.set(k, 'v');
      expect(await kit.store.del(...keys)).toBe(4);
      await kit.close();
    }
    expect(client.status).toBe('ready');
    client.disconnect();
  });

  describe('an @upstash/redis instance', () => {
    let emulator: UpstashEmulator;
    beforeAll(async () => {
      emulator = await startUpstashEmulator(standaloneUrl() as string);
    });
    afterAll(() => emulator.close());

    test('replies arrive raw even when the instance JSON-parses replies (its default)', async () => {
      const client = new Upstash({ url: emulator.url, token: emulator.token, enableTelemetry: false });
      const kit = createRedisKit({ upstash: client, logger: false, prefix: uniquePrefix() });
      expect(kit.mode).toBe('upstash');
      const key = kit.store.keys.key('t', 'json');
      await kit.store.set(key, '{"a":1}');
      expect(await kit.store.get(key)).toBe('{"a":1}');
      await kit.store.set(key, '123');
      expect(await kit.store.get(key)).toBe('123');
      expect((await kit.store.incrBy(key, 1, 0)).value).toBe(124);
      await kit.close();
    });

    test('a pipeline is one HTTP request', async () => {
      const kit = createRedisKit({
        upstash: { url: emulator.url, token: emulator.token },
        logger: false,
        prefix: uniquePrefix(),
      });
      const store = kit.store;
      if (store.mode !== 'upstash') throw new Error('expected the Upstash store');
      const before = { ...emulator.requests };
      const replies = await store.pipeline([
        ['SET', store.keys.key('t', 'p'), 'x'],
        ['GET', store.keys.key('t', 'p')],
        ['HSET', store.keys.key('t', 'p'), 'f', 'v'],
      ]);
      expect(replies[0]).toBe('OK');
      expect(replies[1]).toBe('x');
      expect(replies[2]).toBeInstanceOf(Error);
      expect(String(replies[2])).toMatch(/WRONGTYPE/);
      expect(emulator.requests.pipeline - before.pipeline).toBe(1);
      expect(emulator.requests.single - before.single).toBe(0);
      await kit.close();
    });

    test('a wrong token is an unavailable store with the server’s reason, not a hang', async () => {
      const kit = createRedisKit({
        upstash: { url: emulator.url, token: 'wrong' },
        logger: false,
        prefix: uniquePrefix(),
      });
      await expect(kit.store.get('x')).rejects.toThrow(/Unauthorized/);
      await kit.close();
    });
  });

  test('Redis behind Sentinel', async () => {
    const port = await freePort();
    const master = new URL(standaloneUrl() as string);
    const dir = mkdtempSync(join(tmpdir(), 'rk-sentinel-'));
    const config = join(dir, 'sentinel.conf');
    writeFileSync(
      config,
      `port ${port}\nbind 127.0.0.1\nsentinel monitor kitmaster ${master.hostname} ${master.port} 1\n`,
    );
    const sentinel = spawn('redis-server', [config, '--sentinel'], { stdio: 'ignore' });
    try {
      const kit = createRedisKit({
        sentinel: { sentinels: [`127.0.0.1:${port}`], name: 'kitmaster' },
        logger: false,
        prefix: uniquePrefix(),
      });
      expect(kit.mode).toBe('sentinel');
      let value: number | undefined;
      const deadline = Date.now() + 10_000;
      while (value === undefined && Date.now() < deadline) {
        value = await kit.store
          .incrBy(kit.store.keys.key('t', 's'), 2, 0)
          .then((r) => r.value)
          .catch(() => undefined);
        if (value === undefined) await new Promise((r) => setTimeout(r, 200));
      }
      expect(value).toBe(2);
      expect((await kit.store.info()).version).toMatch(/^\d+\./);
      await kit.close();
    } finally {
      sentinel.kill('SIGKILL');
    }
  });
});
