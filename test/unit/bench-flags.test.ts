// The benchmark harness's command line (bench/lib/flags.ts): a flag the chosen mode would not use is refused with
// the reason, never silently ignored; the combinations each mode does use are accepted.

import { parseFlags } from '../../bench/lib/flags';

const parse = (line: string) => parseFlags(line.split(' ').filter(Boolean));

describe('bench flags', () => {
  test.each([
    ['--http-blocks --warmup 2', /^--warmup applies to sustained \(autocannon\) runs only, not to --http-blocks runs/],
    [
      '--http-blocks --settle=0.5',
      /^--settle applies to sustained \(autocannon\) runs only, not to --http-blocks runs/,
    ],
    ['--in-process --warmup=2', /^--warmup applies to sustained \(autocannon\) runs only, not to --in-process runs/],
    ['--in-process --settle 0', /^--settle applies to sustained \(autocannon\) runs only, not to --in-process runs/],
    // Before the mode on the line, and both at once.
    ['session --settle 1 --warmup 2 --http-blocks', /^--warmup and --settle apply to sustained .* --http-blocks runs/],
  ])('refuses %s in a block mode, pointing to --lead', (line, message) => {
    expect(() => parse(line)).toThrow(message);
    expect(() => parse(line)).toThrow(/use --lead N$/);
  });

  test('accepts --warmup and --settle in the sustained modes, and --lead in the block modes', () => {
    expect(parse('session --warmup 2 --settle 0.5').flags).toEqual({ warmup: 2, settle: 0.5 });
    expect(parse('session --paired --settle 1').flags).toEqual({ paired: true, settle: 1 });
    expect(parse('session --http-blocks --lead 100 --block 200').flags).toEqual({
      inProcess: true,
      httpBlocks: true,
      lead: 100,
      block: 200,
    });
  });

  test('the other misplaced flags are refused as before', () => {
    expect(() => parse('--kit-server')).toThrow('--kit-server applies to --http-blocks runs only');
    expect(() => parse('--in-process --kit-server')).toThrow('--kit-server applies to --http-blocks runs only');
    expect(() => parse('--lead 100')).toThrow('--block and --lead apply to --in-process and --http-blocks runs only');
    expect(() => parse('--paired --http-blocks')).toThrow('are different runs: pick one');
    expect(() => parse('--warmup 0')).toThrow('--warmup: expected a positive number');
  });
});
