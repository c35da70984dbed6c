// describeForEachStore: runs one behaviour suite unchanged against every kind of store: the embedded memory store,
// ioredis-mock (the Lua paths without a server), a real standalone Redis, a real 3-master Cluster, and Upstash's
// REST protocol (the real @upstash/redis client against the emulator in front of the real Redis).

import { randomBytes } from 'node:crypto';
import RedisMock from 'ioredis-mock';
import { createRedisKit, type RedisKit, type RedisKitOptions } from '../../plugin/index';
import { startUpstashEmulator, type UpstashEmulator } from './upstash-emulator';

export type StoreTier = 'memory' | 'ioredis-mock' | 'standalone' | 'cluster' | 'upstash';
export const ALL_TIERS: StoreTier[] = ['memory', 'ioredis-mock', 'standalone', 'cluster', 'upstash'];

export interface TierContext {
  tier: StoreTier;
  /** A kit on this tier with a unique key prefix; closed after the test. */
  makeKit(options?: Omit<RedisKitOptions, 'redis' | 'cluster' | 'upstash' | 'store'>): RedisKit;
  /** The Upstash emulator (upstash tier only): lets a test count HTTP round trips. */
  upstash(): UpstashEmulator | undefined;
}

let counter = 0;
export function uniquePrefix(): string {
  counter += 1;
  return `t${process.pid}x${counter}x${randomBytes(3).toString('hex')}`;
}

export function standaloneUrl(): string | undefined {
  return process.env.REDIS_KIT_TEST_URL;
}

export function clusterNodes(): string[] | undefined {
  return process.env.REDIS_KIT_TEST_CLUSTER?.split(',');
}

function unavailable(tier: StoreTier): string | undefined {
  if (tier === 'standalone' || tier === 'upstash') return standaloneUrl() ? undefined : 'redis-server not found';
  if (tier === 'cluster') return clusterNodes() ? undefined : 'no Redis Cluster (redis-server not found)';
  return undefined;
}

export function describeForEachStore(
  name: string,
  fn: (ctx: TierContext) => void,
  options: { tiers?: StoreTier[] } = {},
): void {
  for (const tier of options.tiers ?? ALL_TIERS) {
    const reason = unavailable(tier);
    if (reason) {
      // Visible in the report as skipped with its reason; global-setup fails the run under CI=true.
      describe(`${name} [${tier}]`, () => {
        test.skip(`DID NOT RUN: ${reason}`, () => undefined);
      });
      continue;
    }
    describe(`${name} [${tier}]`, () => {
      let emulator: UpstashEmulator | undefined;
      // One ioredis-mock per suite: each instance adds listeners to the mock's shared data emitter.
      let mock: InstanceType<typeof RedisMock> | undefined;
      const kits: RedisKit[] = [];

      if (tier === 'upstash') {
        beforeAll(async () => {
          emulator = await startUpstashEmulator(standaloneUrl() as string);
        });
        afterAll(async () => {
          await emulator?.close();
        });
      }
      afterEach(async () => {
        await Promise.all(kits.splice(0).map((k) => k.close()));
      });

      const connection = (): RedisKitOptions => {
        switch (tier) {
          case 'memory':
            return { store: 'memory' };
          case 'ioredis-mock':
            mock ??= new RedisMock();
            return { redis: mock };
          case 'standalone':
            return { redis: standaloneUrl() as string };
          case 'cluster':
            return { cluster: clusterNodes() as string[] };
          case 'upstash':
            if (!emulator) throw new Error('the Upstash emulator has not started');
            return { upstash: { url: emulator.url, token: emulator.token } };
        }
      };

      fn({
        tier,
        makeKit(extra = {}) {
          const kit = createRedisKit({
            logger: false,
            prefix: uniquePrefix(),
            env: {},
            // Generous for a shared, loaded test machine; suites that test timeouts set their own.
            commandTimeout: '5 s',
            ...extra,
            ...connection(),
          });
          kits.push(kit);
          return kit;
        },
        upstash: () => emulator,
      });
    });
  }
}
