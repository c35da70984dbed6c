// Starts the Redis servers the suites share (one standalone, one 3-master Cluster) and hands their addresses to
// the test workers through the environment. REDIS_URL overrides the standalone server. Without redis-server the
// Redis tiers cannot run: that is said loudly, and under CI=true it is a failure.

import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  hasRedisServer,
  killStartedServers,
  startCluster,
  startRedis,
  type RedisCluster,
  type RedisProcess,
} from './redis-server';

interface Servers {
  standalone?: RedisProcess;
  cluster?: RedisCluster;
  /** Kills the servers when jest's process is told to stop; global-teardown removes it. */
  onSignal?: (signal: NodeJS.Signals) => void;
}

declare global {
  // eslint-disable-next-line no-var
  var __REDIS_KIT_SERVERS__: Servers | undefined;
}

function pidsOf(servers: Servers): number[] {
  return [servers.standalone?.pid, ...(servers.cluster?.pids ?? [])].filter((p): p is number => p !== undefined);
}

export const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * A run stopped by a signal (Ctrl-C, or SIGTERM from `npm test`'s runner or a CI timeout) ends jest's process
 * without global-teardown, and the servers started here would outlive it. They are killed first, synchronously;
 * then the signal is raised again, so that the process ends the way it was asked to (unless something else, such
 * as jest's watch mode, handles that signal itself).
 */
function killOnSignal(servers: Servers): void {
  // Every server this process started, including one still starting (not yet in `servers`).
  const onSignal = (signal: NodeJS.Signals): void => {
    killStartedServers();
    for (const s of STOP_SIGNALS) process.off(s, onSignal);
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
  servers.onSignal = onSignal;
}

export default async function globalSetup(): Promise<void> {
  const servers: Servers = {};
  globalThis.__REDIS_KIT_SERVERS__ = servers;
  // From the start: a signal while the Cluster starts must not leave the standalone server behind.
  killOnSignal(servers);
  try {
    await setUp(servers);
  } catch (error) {
    // jest runs no teardown after a failed setup: what was started so far is stopped here (each whatever the
    // other's stop does), and the setup's own error is the one reported.
    await Promise.allSettled([servers.standalone?.stop(), servers.cluster?.stop()]);
    throw error;
  }
}

async function setUp(servers: Servers): Promise<void> {
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
  if (process.env.REDIS_KIT_TEST_NO_CLUSTER === '1' && process.env.CI === 'true') {
    throw new Error('REDIS_KIT_TEST_NO_CLUSTER=1 would skip the Cluster tier: not allowed under CI=true');
  }
  if (process.env.REDIS_URL) {
    process.env.REDIS_KIT_TEST_URL = process.env.REDIS_URL;
  } else if (available) {
    servers.standalone = await startRedis();
    process.env.REDIS_KIT_TEST_URL = servers.standalone.url;
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
  // REDIS_KIT_TEST_STATE_DIR: where a nested run (test/integration/run-tests-signal.test.ts) writes its own file.
  const dir = process.env.REDIS_KIT_TEST_STATE_DIR ?? join(__dirname, '..', '.tmp');
  mkdirSync(dir, { recursive: true });
  // Written whole and then renamed: a reader that sees the file sees all of it.
  const file = join(dir, 'servers.json');
  writeFileSync(
    `${file}.${process.pid}`,
    JSON.stringify({
      standalone: process.env.REDIS_KIT_TEST_URL,
      cluster: process.env.REDIS_KIT_TEST_CLUSTER,
      // The processes this run started (run-tests-signal.test.ts checks that a stopped run leaves none behind).
      pids: pidsOf(servers),
    }),
  );
  renameSync(`${file}.${process.pid}`, file);
}
