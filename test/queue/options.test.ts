// Queue options: defaults, backoff arithmetic (exponential, cap, jitter) and configuration errors.

import { createRedisKit } from '../../plugin/index';
import { backoffDelay, parseBackoff, parseQueueOptions, readBackoff } from '../../plugin/queue/options';
import { Histogram } from '../../plugin/queue/stats';

test('defaults match the documented ones', () => {
  const c = parseQueueOptions();
  expect(c).toMatchObject({
    attempts: 1,
    leaseMs: 30_000,
    maxStalls: 2,
    keepCompleted: { ageMs: 3_600_000, count: 1000 },
    keepDead: { ageMs: 7 * 86_400_000, count: 10_000 },
    idlePollMs: 5000,
    maxDataBytes: 524_288,
    closeTimeoutMs: 10_000,
  });
  expect(c.backoff).toEqual({ exponential: true, delayMs: 1000, maxDelayMs: 3_600_000, jitter: 0.5 });
});

test('exponential backoff doubles per attempt, is capped, and jitter only shortens it', () => {
  const b = parseBackoff({ delay: '100 ms', maxDelay: '1 s', jitter: 0 }, 'b');
  expect([1, 2, 3, 4, 5, 6].map((a) => backoffDelay(b, a))).toEqual([100, 200, 400, 800, 1000, 1000]);
  const j = parseBackoff({ delay: 1000, jitter: 0.5 }, 'b');
  expect(backoffDelay(j, 1, () => 0)).toBe(1000);
  expect(backoffDelay(j, 1, () => 0.999999)).toBe(500);
  for (let i = 0; i < 100; i++) {
    const d = backoffDelay(j, 2);
    expect(d).toBeGreaterThanOrEqual(1000);
    expect(d).toBeLessThanOrEqual(2000);
  }
  const fixed = parseBackoff(250, 'b');
  expect([1, 5].map((a) => backoffDelay(fixed, a))).toEqual([250, 250]);
  expect(readBackoff('f,250,3600000,0', j)).toEqual(fixed);
  expect(readBackoff('', j)).toBe(j);
});

test('bad configuration fails at construction with the fix in the message', () => {
  expect(() => parseQueueOptions({ atempts: 3 } as never)).toThrow(/Did you mean 'attempts'/);
  expect(() => parseQueueOptions({ attempts: 0 })).toThrow(/attempts/);
  expect(() => parseQueueOptions({ lease: 'forever' })).toThrow(/lease/);
  expect(() => parseQueueOptions({ backoff: { type: 'linear' as never } })).toThrow(/exponential/);
  expect(() => parseQueueOptions({ backoff: { jitter: 2 } })).toThrow(/jitter/);
  expect(() => parseQueueOptions({ keepCompleted: { count: -2 } })).toThrow(/count/);
  expect(() => parseQueueOptions({ maxStalls: -1 })).toThrow(/maxStalls/);
});

test('the histogram counts into cumulative buckets and estimates quantiles', () => {
  const h = new Histogram();
  expect(h.snapshot().p50Ms).toBeNull();
  for (const ms of [0.5, 3, 3, 7, 400]) h.observe(ms);
  const s = h.snapshot();
  expect(s.count).toBe(5);
  expect(s.sumMs).toBeCloseTo(413.5);
  expect(s.buckets.find((b) => b.le === 5)?.count).toBe(3);
  expect(s.buckets.at(-1)).toEqual({ le: Number.POSITIVE_INFINITY, count: 5 });
  expect(s.p50Ms).toBe(5);
  expect(s.p99Ms).toBe(500);
});

test('making a queue per request is flagged once with ERR_KIT_QUEUE_MANY', async () => {
  const warnings: unknown[] = [];
  const logger = { info: () => undefined, error: () => undefined, warn: (o: unknown) => warnings.push(o) };
  const kit = createRedisKit({ store: 'memory', logger, env: {} });
  try {
    for (let i = 0; i < 150; i++) kit.queue('per-request');
    const flagged = warnings.filter((w) => (w as { code?: string }).code === 'ERR_KIT_QUEUE_MANY');
    expect(flagged).toHaveLength(1);
  } finally {
    await kit.close();
  }
});
