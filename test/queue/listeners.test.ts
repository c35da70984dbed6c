// A queue event listener that throws is the application's fault, not the store's: it is logged under its own code
// (ERR_KIT_QUEUE_LISTENER), never as ERR_KIT_QUEUE_STORE, and neither it nor a throwing 'error' listener stops the
// worker.

import { createRedisKit, type Queue } from '../../plugin/index';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/**
 * Adds `n` jobs and runs them one at a time (each later one is taken in the round trip that reports the one before,
 * and fires its listeners): answers how many have run so far.
 */
async function runOneAtATime(q: Queue, n: number): Promise<() => number> {
  let runs = 0;
  await q.addBulk(Array.from({ length: n }, (_, i) => ({ data: i + 1 })));
  q.process(
    () => {
      runs++;
    },
    { concurrency: 1 },
  );
  return () => runs;
}

function capture() {
  const warnings: Array<{ code?: string; queue?: string; docs?: string; err?: unknown }> = [];
  const logger = {
    info: () => undefined,
    error: () => undefined,
    warn: (o: unknown) => warnings.push(o as (typeof warnings)[number]),
  };
  return { warnings, kit: createRedisKit({ store: 'memory', logger, env: {} }) };
}

test('without an error listener, a throwing listener is logged as ERR_KIT_QUEUE_LISTENER and the worker goes on', async () => {
  const { warnings, kit } = capture();
  try {
    const q = kit.queue('listener-log');
    q.on('completed', () => {
      throw new Error('listener bug');
    });
    const runs = await runOneAtATime(q, 3);
    await waitFor(() => runs() === 3 && warnings.length >= 3, 'three jobs and three warnings');
    const codes = warnings.map((w) => w.code);
    expect(codes).toEqual(['ERR_KIT_QUEUE_LISTENER', 'ERR_KIT_QUEUE_LISTENER', 'ERR_KIT_QUEUE_LISTENER']);
    expect(warnings[0]).toMatchObject({
      queue: 'listener-log',
      docs: 'docs/troubleshooting.md#err_kit_queue_listener',
    });
    expect((warnings[0]?.err as Error | undefined)?.message).toBe('listener bug');
    expect((await q.counts()).completed).toBe(3);
  } finally {
    await kit.close();
  }
});

test("an 'error' listener that throws is logged too, and does not stop the worker", async () => {
  const { warnings, kit } = capture();
  try {
    const q = kit.queue('listener-error');
    q.on('completed', () => {
      throw new Error('listener bug');
    });
    q.on('error', () => {
      throw new Error('error listener bug');
    });
    const runs = await runOneAtATime(q, 2);
    await waitFor(() => runs() === 2 && warnings.length >= 4, 'two jobs and their warnings');
    // Per completion: the error listener's own failure, then the listener error it was given.
    expect(warnings.map((w) => (w.err as Error).message)).toEqual([
      'error listener bug',
      'listener bug',
      'error listener bug',
      'listener bug',
    ]);
    expect(new Set(warnings.map((w) => w.code))).toEqual(new Set(['ERR_KIT_QUEUE_LISTENER']));
    expect((await q.counts()).completed).toBe(2);
  } finally {
    await kit.close();
  }
});
