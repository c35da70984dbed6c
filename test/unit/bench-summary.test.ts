// The performance guide's summary table (bench/lib/summary.ts): a target measured over HTTP in blocks shows that
// reading only, and its rows from the other modes leave the table; targets never measured over HTTP keep theirs.

import { featureKey, supersede } from '../../bench/lib/summary';

const row = (feature: string) => ({ feature, line: `| ${feature} | t | f | – | x |` });

describe('summary table', () => {
  test('the mode a report appends is not part of the feature', () => {
    const base = 'Session read, embedded store (vs bare Express)';
    expect(featureKey(`${base}, paired runs`)).toBe(base);
    expect(featureKey(`${base}, in process (implied req/s)`)).toBe(base);
    expect(featureKey(`${base}, HTTP blocks (server CPU per request)`)).toBe(base);
    expect(featureKey(base)).toBe(base);
    // Only a trailing mode counts.
    expect(featureKey('paired runs, of something')).toBe('paired runs, of something');
  });

  test('an HTTP-blocks reading hides the same target in the other modes, and nothing else', () => {
    const a = 'Rate limit, embedded store (vs bare Express)';
    const b = 'Session lookup p99 minus a request without the session';
    const c = 'Queue add, ours vs BullMQ';
    const { lines, hidden } = supersede([
      { name: 'rate-limit', lines: [row(a), row(b)] },
      { name: 'rate-limit-paired', lines: [row(`${a}, paired runs`)] },
      { name: 'rate-limit-in-process', lines: [row(`${a}, in process (implied req/s)`)] },
      { name: 'rate-limit-http-blocks', lines: [row(`${a}, HTTP blocks (server CPU per request)`)] },
      { name: 'queue', lines: [row(c), { feature: '', line: '| no target rows |' }] },
    ]);
    expect(hidden).toBe(3);
    expect(lines).toEqual([
      row(b).line,
      row(`${a}, HTTP blocks (server CPU per request)`).line,
      row(c).line,
      '| no target rows |',
    ]);
  });

  test('without an HTTP-blocks run every row stays', () => {
    const a = 'Rate limit, embedded store (vs bare Express)';
    const { lines, hidden } = supersede([
      { name: 'rate-limit', lines: [row(a)] },
      { name: 'rate-limit-paired', lines: [row(`${a}, paired runs`)] },
    ]);
    expect(hidden).toBe(0);
    expect(lines).toHaveLength(2);
  });
});
