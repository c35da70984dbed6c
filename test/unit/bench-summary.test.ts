// The performance guide's summary table (bench/lib/summary.ts): a target measured over HTTP in blocks shows that
// reading only, and its rows from the other modes leave the table; targets never measured over HTTP keep theirs.
// The table is read back from the guide when a suite has no stored run, so a rebuild must give the same table.

import { featureKey, MODE_SUFFIX, namedOnly, type SummaryLine, supersede } from '../../bench/lib/summary';

const row = (feature: string): SummaryLine => ({ feature, line: `| ${feature} | t | f | – | x |` });
const placeholder = (suite: string): SummaryLine => ({
  feature: '',
  line: `| ${suite} | see its section | not measured by the harness yet | – | \`${suite}\` |`,
  placeholder: true,
});

describe('summary table', () => {
  test('the mode a report appends is not part of the feature', () => {
    const base = 'Session read, embedded store (vs bare Express)';
    for (const suffix of Object.values(MODE_SUFFIX)) expect(featureKey(`${base}${suffix}`)).toBe(base);
    expect(featureKey(base)).toBe(base);
    // Only a trailing mode counts.
    expect(featureKey(`${MODE_SUFFIX.paired}, of something`)).toBe(`${MODE_SUFFIX.paired}, of something`);
    // A --kit-server run appends its suffix after the mode's.
    expect(featureKey(`${base}${MODE_SUFFIX.httpBlocks}${MODE_SUFFIX.kitServer}`)).toBe(base);
  });

  const a = 'Rate limit, embedded store (vs bare Express)';
  const b = 'Session lookup p99 minus a request without the session';
  const c = 'Queue add, ours vs BullMQ';

  test('an HTTP-blocks reading hides the same target in the other modes, and nothing else', () => {
    const { lines, superseding } = supersede([
      { name: 'rate-limit', lines: [row(a), row(b)] },
      { name: 'rate-limit-paired', lines: [row(`${a}${MODE_SUFFIX.paired}`)] },
      { name: 'rate-limit-in-process', lines: [row(`${a}${MODE_SUFFIX.inProcess}`)] },
      { name: 'rate-limit-http-blocks', lines: [row(`${a}${MODE_SUFFIX.httpBlocks}`)] },
      { name: 'queue', lines: [row(c), { feature: '', line: '| no target rows |' }] },
    ]);
    expect(superseding).toBe(true);
    expect(lines).toEqual([row(b).line, row(`${a}${MODE_SUFFIX.httpBlocks}`).line, row(c).line, '| no target rows |']);
  });

  test("an HTTP-blocks run on the kit's server keeps its rows beside the stock server's and hides nothing", () => {
    const stock = row(`${a}${MODE_SUFFIX.httpBlocks}`);
    const kit = row(`${a}${MODE_SUFFIX.httpBlocks}${MODE_SUFFIX.kitServer}`);
    const { lines, superseding } = supersede([
      { name: 'rate-limit', lines: [row(a)] },
      { name: 'rate-limit-http-blocks', lines: [stock] },
      { name: 'rate-limit-http-blocks-kit-server', lines: [kit] },
    ]);
    expect(superseding).toBe(true);
    expect(lines).toEqual([stock.line, kit.line]);
    // The targets are stated against app.listen(): a kit-server run alone leaves the other modes' rows, and the
    // suite's placeholder, where they are.
    const alone = supersede([
      { name: 'rate-limit', lines: [row(a)] },
      { name: 'session', lines: [placeholder('session')] },
      { name: 'rate-limit-http-blocks-kit-server', lines: [kit] },
      { name: 'session-http-blocks-kit-server', lines: [row(`${b}${MODE_SUFFIX.httpBlocks}${MODE_SUFFIX.kitServer}`)] },
    ]);
    expect(alone.superseding).toBe(false);
    expect(alone.lines).toEqual([
      row(a).line,
      placeholder('session').line,
      kit.line,
      row(`${b}${MODE_SUFFIX.httpBlocks}${MODE_SUFFIX.kitServer}`).line,
    ]);
  });

  test('rebuilt from its own lines (no stored runs), the table comes out the same', () => {
    const first = supersede([
      { name: 'rate-limit', lines: [row(a)] },
      { name: 'rate-limit-http-blocks', lines: [row(`${a}${MODE_SUFFIX.httpBlocks}`)] },
      { name: 'queue', lines: [placeholder('queue')] },
    ]);
    // What the guide then holds: rate-limit's only row left the table, so reading it back finds no row for that
    // suite, which gets a placeholder like any suite never measured.
    const second = supersede([
      { name: 'rate-limit', lines: [placeholder('rate-limit')] },
      { name: 'rate-limit-http-blocks', lines: [row(`${a}${MODE_SUFFIX.httpBlocks}`)] },
      { name: 'queue', lines: [placeholder('queue')] },
    ]);
    expect(second).toEqual(first);
    expect(first.lines).toEqual([row(`${a}${MODE_SUFFIX.httpBlocks}`).line, placeholder('queue').line]);
  });

  test('without an HTTP-blocks run every row stays, placeholders too', () => {
    const { lines, superseding } = supersede([
      { name: 'rate-limit', lines: [row(a)] },
      { name: 'rate-limit-paired', lines: [row(`${a}${MODE_SUFFIX.paired}`)] },
      { name: 'session', lines: [placeholder('session')] },
    ]);
    expect(superseding).toBe(false);
    expect(lines).toHaveLength(3);
  });
});

describe('namedOnly', () => {
  it('names the probe suite in every mode, and no product suite', () => {
    for (const name of [
      'express-probes',
      'express-probes-http-blocks',
      'express-probes-in-process',
      'express-probes-paired',
      'express-probes-http-blocks-kit-server',
    ]) {
      expect(namedOnly(name)).toBe(true);
    }
    for (const name of [
      'session',
      'session-http-blocks',
      'session-http-blocks-kit-server',
      'observability-paired',
      'rate-limit-in-process',
      'express',
    ]) {
      expect(namedOnly(name)).toBe(false);
    }
  });
});
