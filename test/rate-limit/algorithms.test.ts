// Each algorithm against its reference definition, on a controllable clock (the TypeScript twin of the Lua
// script; the conformance suite checks the two agree on every store).

import { MemoryEngine } from '../../plugin/connection/memory';
import {
  type CompiledPolicy,
  CONSUME,
  decide,
  FIXED_WINDOW,
  FORCE,
  GCRA,
  PEEK,
  SLIDING_WINDOW,
  TOKEN_BUCKET,
} from '../../plugin/rate-limit/algorithms';

function harness(policies: CompiledPolicy[], blockMs = 0) {
  let now = 1_700_000_000_000; // a whole second: windows start at 0
  const engine = new MemoryEngine({ maxKeys: 1000, sweepIntervalMs: 60_000, now: () => now });
  return {
    at(ms: number) {
      now = 1_700_000_000_000 + ms;
    },
    hit(cost = 1, mode: 0 | 1 | 2 = CONSUME) {
      const raw = decide(engine, 'k', policies, cost, mode, blockMs);
      return { blocked: raw[0] as number, allowed: raw[2] === 1, remaining: raw[3], reset: raw[4], retry: raw[5], raw };
    },
    close: () => engine.close(),
  };
}

const p = (algorithm: CompiledPolicy['algorithm'], limit: number, windowMs: number, burst = limit): CompiledPolicy => ({
  name: `a${algorithm}`,
  algorithm,
  limit,
  windowMs,
  burst,
});

// [time ms, cost, expected allowed, expected remaining, expected retry-after ms]
type Step = [number, number, boolean, number, number];

const tables: Array<[string, CompiledPolicy, Step[]]> = [
  [
    'fixed window: a counter per calendar window, reset at the boundary',
    p(FIXED_WINDOW, 3, 1000),
    [
      [0, 1, true, 2, 0],
      [100, 1, true, 1, 0],
      [200, 1, true, 0, 0],
      [300, 1, false, 0, 700],
      [999, 1, false, 0, 1],
      [1000, 1, true, 2, 0],
      [1001, 2, true, 0, 0],
    ],
  ],
  [
    'sliding window: previous window weighted by the part still inside the sliding window',
    p(SLIDING_WINDOW, 10, 1000),
    [
      [0, 10, true, 0, 0],
      [500, 1, false, 0, 600], // next window, once prev = 10 has decayed to 9: 500 + 100 ms
      [1500, 1, true, 4, 0], // prev 10 x 0.5 = 5 used
      [1500, 4, true, 0, 0],
      [1600, 1, true, 0, 0], // 10 x 0.4 + 5 = 9, + 1 fits
      [1600, 1, false, 0, 100], // 4 + 6 = 10: wait until prev decays by 1 (100 ms)
    ],
  ],
  [
    "sliding window: the windows start at the client's first request, wherever it falls on the clock",
    p(SLIDING_WINDOW, 10, 1000),
    [
      [800, 10, true, 0, 0], // a burst at 800: this client's windows are [800, 1800), [1800, 2800), ...
      [1100, 1, false, 0, 800], // the burst is still fully inside the last second until 1800; 1 decays by 1900
      [1820, 1, false, 0, 80], // 10 x 0.98 = 9.8 counted: + 1 does not fit until 1900
      [1900, 1, true, 0, 0], // 10 x 0.9 = 9, + 1
      [1910, 1, false, 0, 90], // 8.9 + 1 + 1 > 10: at 2000 it is 8 + 1 + 1
    ],
  ],
  [
    'token bucket: burst tokens, refilled at limit per window',
    p(TOKEN_BUCKET, 2, 1000, 4),
    [
      [0, 4, true, 0, 0],
      [0, 1, false, 0, 500],
      [500, 1, true, 0, 0],
      [2500, 1, true, 3, 0],
      [2500, 4, false, 3, 500],
    ],
  ],
  [
    'GCRA: one unit every window/limit, burst units at once',
    p(GCRA, 10, 1000, 2),
    [
      [0, 1, true, 1, 0],
      [0, 1, true, 0, 0],
      [0, 1, false, 0, 100],
      [100, 1, true, 0, 0],
      [150, 1, false, 0, 50],
      [1000, 1, true, 1, 0],
    ],
  ],
];

describe.each(tables)('%s', (_name, policy, steps) => {
  test('allow/deny sequence', () => {
    const h = harness([policy]);
    try {
      const got = steps.map(([t, cost]) => {
        h.at(t);
        const r = h.hit(cost);
        return [t, cost, r.allowed, r.remaining, r.retry];
      });
      expect(got).toEqual(steps);
    } finally {
      h.close();
    }
  });
});

test('sliding window: the estimate decays with time inside the window', () => {
  const h = harness([p(SLIDING_WINDOW, 10, 1000)]);
  h.at(0);
  expect(h.hit(10).allowed).toBe(true);
  h.at(1000);
  expect(h.hit(1).allowed).toBe(false); // prev 10 x 1.0
  h.at(1200);
  expect(h.hit(2)).toMatchObject({ allowed: true, remaining: 0 }); // prev 10 x 0.8 = 8, +2
  h.at(1300);
  expect(h.hit(1)).toMatchObject({ allowed: true, remaining: 0 }); // 7 + 2 + 1 = 10
  h.at(1350);
  expect(h.hit(1)).toMatchObject({ allowed: false, retry: 50 }); // 6.5 + 3 + 1 > 10: in 50 ms 6 + 3 + 1 fits
  h.close();
});

test('several policies: a denial by one consumes none; force adds whatever the outcome; peek reads', () => {
  const h = harness([p(FIXED_WINDOW, 2, 1000), p(GCRA, 100, 1000)]);
  h.at(0);
  h.hit();
  h.hit();
  const denied = h.hit();
  expect(denied.allowed).toBe(false);
  expect(denied.raw.slice(6)).toEqual([1, 98, 20, 0]); // GCRA untouched: two used, 98 left
  h.hit(5, FORCE);
  expect(h.hit(1, PEEK).raw.slice(2)).toEqual([0, 0, 1000, 1000, 1, 93, 70, 0]);
  h.close();
});

test('block duration: a denial sets a block that outlives the window', () => {
  const h = harness([p(FIXED_WINDOW, 1, 100)], 5000);
  h.at(0);
  expect(h.hit().allowed).toBe(true);
  const denied = h.hit();
  expect(denied.blocked).toBe(5000);
  h.at(1000);
  expect(h.hit().blocked).toBe(4000);
  h.at(5001);
  expect(h.hit().allowed).toBe(true);
  h.close();
});

test('sliding window: a steady client gets the same count wherever in the clock second its traffic starts', () => {
  // 300 calls/s against 100 per second for 10 s: within 2 % of the ideal 1,000 at every start phase. With windows on
  // the clock's whole seconds this ranged from 991 to 1,049 (a start at 700 ms gave +4.9 %).
  const counts: number[] = [];
  for (const phase of [0, 100, 300, 500, 700, 900]) {
    const h = harness([p(SLIDING_WINDOW, 100, 1000)]);
    let admitted = 0;
    for (let i = 0; i < 3000; i++) {
      h.at(phase + Math.floor((i * 10_000) / 3000));
      if (h.hit().allowed) admitted++;
    }
    h.close();
    counts.push(admitted);
  }
  for (const admitted of counts) expect(Math.abs(admitted - 1000)).toBeLessThanOrEqual(20);
  expect(new Set(counts).size).toBe(1);
});

test("one state for several policies: each policy's state lapses on its own idle time, as with a key per policy", () => {
  // A sliding window kept beside a 1-hour policy in one entry must restart its windows' grid after two idle windows,
  // exactly as it does alone (its state used to be a key of its own that expired then).
  const steps: Array<[number, number]> = [
    [0, 10],
    [2500, 10],
    [3400, 1],
    [3600, 1],
    [9100, 4],
    [9950, 7],
    [10_200, 3],
  ];
  const alone = harness([p(SLIDING_WINDOW, 10, 1000)]);
  const beside = harness([p(SLIDING_WINDOW, 10, 1000), p(GCRA, 1000, 3_600_000)]);
  const run = (h: ReturnType<typeof harness>) =>
    steps.map(([t, cost]) => {
      h.at(t);
      return h.hit(cost).raw.slice(2, 6);
    });
  const expected = run(alone);
  expect(run(beside)).toEqual(expected);
  expect(expected.map((r) => r[0])).toEqual([1, 1, 0, 1, 1, 0, 1]);
  alone.close();
  beside.close();
});

test('decisions share scratch space but never state: clients interleaved, one reply array, several limiters', () => {
  // decide() reuses module-level scratch arrays and, for a returning client, writes into its stored array in place.
  // Two new clients must get arrays of their own, two limiters of different shapes must not see each other's
  // numbers, and a reply array passed in is filled completely each time.
  let now = 1_700_000_000_000;
  const engine = new MemoryEngine({ maxKeys: 1000, sweepIntervalMs: 60_000, now: () => now });
  const small = [p(FIXED_WINDOW, 3, 1000)];
  const wide = [p(SLIDING_WINDOW, 5, 1000), p(TOKEN_BUCKET, 4, 1000), p(GCRA, 2, 1000)];
  const out: number[] = [];
  const admitted = (key: string, policies: CompiledPolicy[]) => {
    const raw = decide(engine, key, policies, 1, CONSUME, 0, out);
    expect(raw).toBe(out);
    expect(raw).toHaveLength(2 + 4 * policies.length);
    return raw
      .slice(2)
      .filter((_, i) => i % 4 === 0)
      .every((a) => a === 1);
  };
  const log: string[] = [];
  for (let i = 0; i < 4; i++) {
    now += 10;
    log.push(`a${admitted('a', small)} b${admitted('b', small)} w${admitted('w', wide)}`);
  }
  // Three each for a and b (their own counters), two for w (its GCRA policy allows a burst of two).
  expect(log).toEqual(['atrue btrue wtrue', 'atrue btrue wtrue', 'atrue btrue wfalse', 'afalse bfalse wfalse']);
  expect(engine.get('a')).not.toBe(engine.get('b'));
  // A fresh array when none is passed: an earlier reply is not overwritten by a later decision.
  const first = decide(engine, 'c', small, 1, CONSUME, 0);
  decide(engine, 'c', small, 1, CONSUME, 0);
  expect(first[3]).toBe(2);
  engine.close();
});

test("a block forced through on one client does not reach the next new client's state", () => {
  // The scratch state's header (block-until, culprit) is reset by every decision: a FORCE during client A's block
  // keeps A's block, and client B's first state starts unblocked.
  let now = 1_700_000_000_000;
  const engine = new MemoryEngine({ maxKeys: 1000, sweepIntervalMs: 60_000, now: () => now });
  const policies = [p(FIXED_WINDOW, 1, 1000)];
  const out: number[] = [];
  decide(engine, 'a', policies, 1, CONSUME, 5000, out);
  now += 1;
  expect(decide(engine, 'a', policies, 1, CONSUME, 5000, out)[0]).toBe(5000);
  now += 1;
  // A's block is served from its state: zeros after the first two numbers, in the reused array.
  expect(decide(engine, 'a', policies, 1, CONSUME, 5000, out)).toEqual([4999, 0, 0, 0, 0, 0]);
  decide(engine, 'a', policies, 1, FORCE, 5000, out);
  expect((engine.get('a') as number[])[0]).toBeGreaterThan(now);
  const b = decide(engine, 'b', policies, 1, CONSUME, 5000, out);
  expect(b[0]).toBe(0);
  expect(b[2]).toBe(1);
  expect((engine.get('b') as number[])[0]).toBe(0);
  engine.close();
});
