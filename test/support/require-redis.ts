// For suites that start their own redis-server: they cannot run without one. Say so in the report (a skipped
// test with the reason) and let global-setup fail the whole run under CI=true.

import { hasRedisServer } from './redis-server';

export const redisAvailable = hasRedisServer();

/** `describe` when redis-server exists; otherwise one visibly skipped test naming what did not run. */
export function describeWithRedis(name: string, fn: () => void): void {
  if (redisAvailable) {
    describe(name, fn);
  } else {
    describe(name, () => {
      test.skip('DID NOT RUN: redis-server not found', () => undefined);
    });
  }
}
