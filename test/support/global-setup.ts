// Starts the Redis servers the suites share (one standalone, one 3-master Cluster) and hands their addresses to
// the test workers through the environment. REDIS_URL overrides the standalone server. Without redis-server the
// Redis tiers cannot run: that is said loudly, and under CI=true it is a failure.

import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { hasRedisServer, startCluster, startRedis, type RedisCluster, type RedisProcess } from './redis-server';

declare global {
  // eslint-disable-next-line no-var
  var __REDIS_KIT_SERVERS__: { standalone?: RedisProcess; cluster?: RedisCluster } | undefined;
}

export default async function globalSetup(): Promise<void> {
  const servers: { standalone?: RedisProcess; cluster?: RedisCluster } = {};
  globalThis.__REDIS_KIT_SERVERS__ = servers;
  const available = hasRedisServer();
  if (!available) {
    const banner =
      '\n' +
      '*************************************************************************************\n' +
      '* redis-server / redis-cli not found: the standalone, Cluster and Upstash REST tiers *\n' +
      '* DID NOT RUN. Only the memory and ioredis-mock tiers ran. Install Redis 7 to run    *\n' +
      '* them all (Debian: apt-get install redis-server).                                   *\n' +
      '*************************************************************************************\n';
    if (process.env.CI === 'true') throw new Error(`CI=true and ${banner}`);
    console.warn(banner);
  }
  if (process.env.REDIS_URL) {
    process.env.REDIS_KIT_TEST_URL = process.env.REDIS_URL;
  } else if (available) {
    servers.standalone = await startRedis();
    process.env.REDIS_KIT_TEST_URL = servers.standalone.url;
  }
  if (process.env.REDIS_KIT_TEST_NO_CLUSTER === '1' && process.env.CI === 'true') {
    throw new Error('REDIS_KIT_TEST_NO_CLUSTER=1 would skip the Cluster tier: not allowed under CI=true');
  }
  if (available && process.env.REDIS_KIT_TEST_NO_CLUSTER !== '1') {
    servers.cluster = await startCluster(3);
    process.env.REDIS_KIT_TEST_CLUSTER = servers.cluster.nodes.map((n) => `${n.host}:${n.port}`).join(',');
  }
  // The test environment must not pick a store (or an admin token) up from the developer's shell.
  for (const name of [
    'REDIS_URL',
    'REDIS_CLUSTER_NODES',
    'UPSTASH_REDIS_REST_URL',
    'UPSTASH_REDIS_REST_TOKEN',
    'UPSTASH_REDIS_URL',
    'UPSTASH_REDIS_TOKEN',
    'REDIS_KIT_ADMIN_TOKEN',
  ]) {
    delete process.env[name];
  }
  const dir = join(__dirname, '..', '.tmp');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'servers.json'),
    JSON.stringify({ standalone: process.env.REDIS_KIT_TEST_URL, cluster: process.env.REDIS_KIT_TEST_CLUSTER }),
  );
}
