// Not a suite of its own (jest's testMatch is *.test.ts): the one test of the nested run that
// test/integration/run-tests-signal.test.ts starts and then stops with a signal. It holds the run open until the
// file named by REDIS_KIT_TEST_RELEASE appears (which never happens in that test), at most 60 s, so the signal
// always arrives while the run is under way.

import { existsSync } from 'node:fs';

test('holds the run open until released', async () => {
  const release = process.env.REDIS_KIT_TEST_RELEASE;
  expect(release).toBeDefined();
  const deadline = Date.now() + 60_000;
  while (!existsSync(release as string) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}, 70_000);
