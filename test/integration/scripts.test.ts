// Shipped Lua: the SHA1s computed at build time are the ones a real server computes, and a script still runs
// after the server forgot it (SCRIPT FLUSH, a restart, a failover): EVALSHA → NOSCRIPT → EVAL.

import Redis from 'ioredis';
import * as connectionScripts from '../../plugin/connection/scripts.generated';
import type { Script } from '../../plugin/connection/types';
import { createRedisKit, type RedisKit } from '../../plugin/index';
import { startRedis, type RedisProcess } from '../support/redis-server';
import { describeWithRedis } from '../support/require-redis';

// Every generated scripts module in the package; feature folders add theirs here as they ship Lua.
const ALL_SCRIPTS: Script[] = [...Object.values(connectionScripts)];

describeWithRedis('shipped Lua scripts on a real server', () => {
  let server: RedisProcess;
  let admin: Redis;
  let kit: RedisKit;

  beforeAll(async () => {
    server = await startRedis();
    admin = new Redis(server.url);
    kit = createRedisKit({ redis: server.url, logger: false, prefix: 'scripts' });
    await kit.ready();
  });

  afterAll(async () => {
    await kit.close();
    admin.disconnect();
    await server.stop();
  });

  const stat = async (command: string): Promise<number> => {
    const info = await admin.info('commandstats');
    const match = new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info);
    return match ? Number(match[1]) : 0;
  };

  test('every shipped SHA1 equals what SCRIPT LOAD returns', async () => {
    expect(ALL_SCRIPTS.length).toBeGreaterThan(0);
    for (const script of ALL_SCRIPTS) {
      expect(await admin.script('LOAD', script.source)).toBe(script.sha);
    }
  });

  test('a script survives SCRIPT FLUSH: NOSCRIPT makes the runner send EVAL once, then EVALSHA again', async () => {
    const key = kit.store.keys.key('test', 'flush');
    expect((await kit.store.incrBy(key, 1, 0)).value).toBe(1);
    await admin.script('FLUSH');
    await admin.config('RESETSTAT');
    expect((await kit.store.incrBy(key, 1, 0)).value).toBe(2);
    expect(await stat('eval')).toBe(1);
    expect(await stat('evalsha')).toBe(1); // the one that answered NOSCRIPT
    expect((await kit.store.incrBy(key, 1, 0)).value).toBe(3);
    expect(await stat('eval')).toBe(1);
    expect(await stat('evalsha')).toBe(2);
  });

  test('after a lost script cache, the first NOSCRIPT reloads every script the process has run', async () => {
    // A script used on a rare path would otherwise meet NOSCRIPT minutes after the restart, once per script.
    const key = kit.store.keys.key('test', 'reload');
    await kit.store.incrBy(key, 1, 0);
    await kit.store.time(); // a second script, run before the flush
    await admin.script('FLUSH');
    // The reload is throttled per client to once a second: let an earlier test's reload age out.
    await new Promise((r) => setTimeout(r, 1100));
    await admin.config('RESETSTAT');
    await kit.store.incrBy(key, 1, 0); // NOSCRIPT, EVAL, and the background reload
    const errors = async () => Number(/errorstat_NOSCRIPT:count=(\d+)/.exec(await admin.info('errorstats'))?.[1] ?? 0);
    expect(await errors()).toBe(1);
    const deadline = Date.now() + 5000;
    while (((await admin.script('EXISTS', connectionScripts.serverTime.sha)) as number[])[0] !== 1) {
      if (Date.now() > deadline) throw new Error('serverTime was not reloaded');
      await new Promise((r) => setTimeout(r, 20));
    }
    await kit.store.time();
    expect(await errors()).toBe(1);
    expect(await stat('eval')).toBe(1);
  });

  test('the reload after a lost script cache includes shipped scripts this process has not run yet', async () => {
    // The session reads' batch script: no session was read by this process, so only the import noted it.
    const { loadMany } = await import('../../plugin/session/scripts.generated');
    const key = kit.store.keys.key('test', 'reload-unrun');
    await kit.store.incrBy(key, 1, 0);
    await admin.script('FLUSH');
    await new Promise((r) => setTimeout(r, 1100));
    await kit.store.incrBy(key, 1, 0); // NOSCRIPT, EVAL, and the background reload
    const deadline = Date.now() + 5000;
    while (((await admin.script('EXISTS', loadMany.sha)) as number[])[0] !== 1) {
      if (Date.now() > deadline) throw new Error('load_many was not reloaded');
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(((await admin.script('EXISTS', loadMany.sha)) as number[])[0]).toBe(1);
  });

  test('a caller bug (wrong key count) is a command error and does not open the circuit', async () => {
    const store = kit.store;
    if (store.mode === 'memory') throw new Error('expected a Redis store');
    for (let i = 0; i < 10; i++) {
      await expect(store.script(connectionScripts.incrTtl, [], [1, 0])).rejects.toMatchObject({
        code: 'ERR_KIT_STORE_COMMAND',
      });
    }
    expect(kit.store.circuitState).toBe('closed');
  });

  test('an error inside a script is not retried (it may have written)', async () => {
    const key = kit.store.keys.key('test', 'wrongtype');
    await admin.hset(key, 'f', 'v');
    await admin.config('RESETSTAT');
    await expect(kit.store.incrBy(key, 1, 0)).rejects.toMatchObject({ code: 'ERR_KIT_STORE_COMMAND' });
    expect(await stat('evalsha')).toBe(1);
    expect(await stat('eval')).toBe(0);
    // A wrong command is not an outage: the circuit stays closed.
    expect(kit.store.circuitState).toBe('closed');
  });
});
