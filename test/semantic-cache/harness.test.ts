// The evaluation harness itself, on a tiny synthetic set, so it cannot rot (the real sets run via npm run eval:semantic).

import { evaluate, formatRows, NO_GUARDS, parseEvalSet, runProtocol } from '../../bench/semantic-eval';

const SET = [
  {
    origin: 'How do I reset the password of my email account on a new phone?',
    similar: 'How can I reset my email account password on my new phone?',
  },
  { origin: 'How do I reset my account password?', similar: 'How can I reset my account password?' },
  { origin: 'How do I enable two-factor authentication?', similar: 'How do I disable two-factor authentication?' },
  { origin: 'Tips for growing tomatoes on a balcony', similar: 'Explain quantum entanglement to a child' },
];

describe('semantic-cache evaluation harness', () => {
  test('reads both formats', () => {
    expect(parseEvalSet(SET)[0]).toEqual({ stored: SET[0]?.origin, query: SET[0]?.similar, label: 1 });
    expect(parseEvalSet([{ text_a: 'a', text_b: 'b', label: 0 }])).toEqual([{ stored: 'a', query: 'b', label: 0 }]);
    expect(() => parseEvalSet([{ foo: 1 }])).toThrow(/row 0/);
    expect(() => parseEvalSet({})).toThrow();
  });

  test('counts correct, wrong and missed lookups through the real cache', async () => {
    const pairs = parseEvalSet(SET);
    const c = await evaluate(pairs, { threshold: 0.5 });
    expect(c.lookups).toBe(4);
    expect(c.correct + c.wrong + c.misses).toBe(4);
    expect(c.correct).toBeGreaterThanOrEqual(1);
    // The negated twin must not be served: with its guard on it is a miss, with every guard off it hits (wrong).
    const qqp = parseEvalSet([{ text_a: SET[2]?.origin, text_b: SET[2]?.similar, label: 0 }]);
    expect((await evaluate(qqp, { threshold: 0.5 })).wrong).toBe(0);
    const unguarded = await evaluate(qqp, {
      threshold: 0.5,
      guards: NO_GUARDS,
    });
    expect(unguarded.wrong).toBe(1);
    expect(unguarded.falseHitRate).toBe(1);
  });

  test('runs the protocol and formats a table with the default row marked', async () => {
    const rows = await runProtocol(parseEvalSet(SET), [0.6, 0.9]);
    expect(rows.length).toBe(2 + 9);
    const table = formatRows('tiny', rows);
    expect(table).toContain('| configuration | threshold |');
    expect(table).toContain('no guards');
  });
});
