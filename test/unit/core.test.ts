// Small shared pieces: durations, the key builder, the circuit breaker, the embedded engine's bounds.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { CircuitBreaker } from '../../plugin/connection/breaker';
import { MemoryEngine } from '../../plugin/connection/memory';
import { parseDuration, parseLongDuration } from '../../plugin/core/duration';
import { KitLogger, throttledWarning } from '../../plugin/core/logger';
import { KeyBuilder, safeId } from '../../plugin/core/keys';
import { editDistance, nearest } from '../../plugin/core/options';
import { VERSION } from '../../plugin/index';

describe('durations', () => {
  test.each([
    [1500, 1500],
    ['1500', 1500],
    ['250 ms', 250],
    ['30 s', 30_000],
    ['30s', 30_000],
    ['1.5 s', 1500],
    ['15 m', 900_000],
    ['2 hours', 7_200_000],
    ['1 d', 86_400_000],
  ])('%p is %p ms', (input, ms) => {
    expect(parseDuration(input, 'x')).toBe(ms);
  });

  test.each([['abc'], ['5 parsecs'], [-1], [0], [0.4], ['0.2 ms'], [Number.NaN], ['30 days'], [{}]])(
    '%p is refused',
    (input) => {
      expect(() => parseDuration(input as never, 'opt.name')).toThrow(/opt\.name/);
    },
  );

  test('zero only where allowed', () => {
    expect(parseDuration(0, 'x', { allowZero: true })).toBe(0);
  });
});

describe('long durations (never a timer)', () => {
  test('scale past 24.8 days, refuse zero, bad units and more than the maximum', () => {
    expect(parseLongDuration('30 d', 'w')).toBe(30 * 86_400_000);
    expect(parseLongDuration('1.5 w', 'w')).toBe(1.5 * 7 * 86_400_000);
    expect(parseLongDuration(3_000_000_000, 'w')).toBe(3_000_000_000);
    // A number of milliseconds written as a string reads as the number does, past the timer limit too.
    expect(parseLongDuration('3000000000', 'w')).toBe(3_000_000_000);
    expect(parseLongDuration(' 1500 ', 'w')).toBe(1500);
    expect(parseLongDuration('250 ms', 'w')).toBe(250);
    for (const zero of ['0 s', '0 d', '0.4 ms', 0, 0.4]) expect(() => parseLongDuration(zero, 'w')).toThrow(/positive/);
    expect(() => parseLongDuration('30 months', 'w')).toThrow(/"30 months"/);
    expect(() => parseLongDuration('401 d', 'w', 400 * 86_400_000)).toThrow(/maximum of 400 days/);
  });
});

describe('throttled warnings', () => {
  test('one line when it starts, then at most one per interval with the count left out', () => {
    const lines: Array<{ fields: Record<string, unknown>; message: string }> = [];
    const target = {
      info() {},
      error() {},
      warn: (fields: Record<string, unknown>, message: string) => lines.push({ fields, message }),
    };
    let now = 1_000;
    const warn = throttledWarning(new KitLogger(target), 'ERR_KIT_TEST', 10_000, () => now);
    warn('store away');
    for (let i = 0; i < 5; i++) warn('store away');
    expect(lines).toHaveLength(1);
    expect(lines[0]?.fields).toMatchObject({ code: 'ERR_KIT_TEST', suppressed: 0 });
    now += 10_000;
    warn('store away', { err: 'x' });
    expect(lines).toHaveLength(2);
    expect(lines[1]?.fields).toMatchObject({ code: 'ERR_KIT_TEST', suppressed: 5, err: 'x' });
    expect(lines[1]?.message).toBe('store away (5 more since the last warning)');
  });
});

describe('keys', () => {
  const keys = new KeyBuilder('app');

  test('safe ids stay readable, everything else is hashed to a bounded brace-free segment', () => {
    expect(safeId('user-42')).toBe('user-42');
    expect(safeId('a@b.com')).toBe('a@b.com');
    for (const raw of [
      '',
      'x'.repeat(65),
      'x'.repeat(10_000),
      'a}b',
      '{tag}',
      'a b',
      'crlf\r\nSET x',
      'ünï',
      'a:b',
      '~abc',
    ]) {
      const id = safeId(raw);
      expect(id).toMatch(/^~[A-Za-z0-9_-]{24}$/);
    }
    expect(safeId('a b')).not.toBe(safeId('a  b'));
    expect(safeId('same')).toBe(safeId('same'));
  });

  test('prefix:feature:{id}:part, one hash tag per key', () => {
    expect(keys.key('rl', 'ip-1', 'w', '5')).toBe('app:rl:{ip-1}:w:5');
    const hostile = keys.key('session', 'x}{y'.repeat(100), 'data');
    expect(hostile.match(/[{}]/g)).toEqual(['{', '}']);
    expect(hostile.length).toBeLessThan(60);
    expect(keys.forFeature('rl')('ip-1', 'w')).toBe('app:rl:{ip-1}:w');
    expect(() => keys.forFeature('bad feature')).toThrow(/not a safe key part/);
    expect(keys.channel('locks', 'report 7')).toMatch(/^app:locks:ch:~/);
  });
});

describe('nearest option names', () => {
  test('edit distance and suggestions', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(nearest('prefx', ['prefix', 'redis'])).toBe('prefix');
    expect(nearest('qqqqqq', ['prefix', 'redis'])).toBeUndefined();
  });
});

describe('circuit breaker', () => {
  test('opens after the threshold, lets one probe through after the cooldown, closes on success', () => {
    let now = 0;
    const changes: string[] = [];
    const breaker = new CircuitBreaker({
      failureThreshold: 3,
      cooldownMs: 1000,
      now: () => now,
      onChange: (s) => changes.push(s),
    });
    expect(breaker.allow()).toBe(true);
    breaker.failure();
    breaker.failure();
    expect(breaker.state).toBe('closed');
    breaker.success(); // a success resets the count: failures must be consecutive
    breaker.failure();
    breaker.failure();
    expect(breaker.state).toBe('closed');
    breaker.failure();
    expect(breaker.state).toBe('open');
    expect(breaker.allow()).toBe(false);
    now = 999;
    expect(breaker.retryInMs()).toBe(1);
    expect(breaker.allow()).toBe(false);
    now = 1000;
    expect(breaker.allow()).toBe(true); // the probe
    expect(breaker.state).toBe('half-open');
    expect(breaker.allow()).toBe(false); // only one probe at a time
    breaker.failure(); // probe failed: open again for a full cooldown
    expect(breaker.state).toBe('open');
    now = 1500;
    expect(breaker.allow()).toBe(false);
    now = 2000;
    expect(breaker.allow()).toBe(true);
    breaker.success();
    expect(breaker.state).toBe('closed');
    expect(breaker.allow()).toBe(true);
    expect(changes).toEqual(['open', 'half-open', 'open', 'half-open', 'closed']);
    expect(breaker.opens).toBe(2);
  });
});

describe('embedded engine', () => {
  test('never holds more than maxKeys, evicting expired keys first, then the oldest', () => {
    const now = 0;
    const engine = new MemoryEngine({ maxKeys: 100, sweepIntervalMs: 60_000, now: () => now });
    for (let i = 0; i < 1000; i++) engine.set(`k${i}`, i);
    expect(engine.size).toBe(100);
    expect(engine.get('k999')).toBe(999);
    expect(engine.get('k0')).toBeUndefined();
    expect(engine.evictions).toBe(900);
    engine.close();
  });

  test('an expired key among the oldest makes room before a live key is evicted', () => {
    let now = 0;
    const engine = new MemoryEngine({ maxKeys: 100, sweepIntervalMs: 60_000, now: () => now });
    engine.set('short', 1, 10);
    for (let i = 0; i < 99; i++) engine.set(`k${i}`, i);
    now = 20;
    engine.set('new', 1);
    expect(engine.size).toBe(100);
    expect(engine.get('k0')).toBe(0);
    expect(engine.evictions).toBe(0);
    engine.close();
  });

  test('expiry, pttl and sweeping', () => {
    let now = 0;
    const engine = new MemoryEngine({ maxKeys: 1000, sweepIntervalMs: 60_000, now: () => now });
    engine.set('a', 'x', 100);
    engine.set('b', 'y');
    expect(engine.pttl('a')).toBe(100);
    expect(engine.pttl('b')).toBe(-1);
    expect(engine.pttl('c')).toBe(-2);
    for (let i = 0; i < 500; i++) engine.set(`t${i}`, i, 50);
    now = 60;
    expect(engine.sweep(10_000)).toBe(500);
    expect(engine.size).toBe(2);
    now = 100;
    expect(engine.get('a')).toBeUndefined();
    expect(engine.update('a', 'z')).toBe(false);
    expect(engine.expire('b', 10)).toBe(true);
    now = 111;
    expect(engine.get('b')).toBeUndefined();
    engine.close();
  });
});

describe('package metadata', () => {
  const root = join(__dirname, '..', '..');
  test('VERSION equals package.json', () => {
    expect(VERSION).toBe(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version);
  });

  test('the generated Lua modules match their .lua sources', () => {
    // Exits non-zero (and so throws here) when a scripts.generated.ts is stale.
    expect(() =>
      execFileSync('node', [join(root, 'plugin/tools/build-lua.mjs'), '--check'], { stdio: 'pipe' }),
    ).not.toThrow();
  });
});
