// Durations written the way people write them: 1500, '1500 ms', '30 s', '15 m', '2 h', '1 d'.

import { ConfigError } from './errors.js';

/** A duration: milliseconds as a number, or a string such as `'30 s'`, `'15m'`, `'1.5 h'`. */
export type Duration = number | string;

const UNITS: Record<string, number> = {
  ms: 1,
  msec: 1,
  millisecond: 1,
  milliseconds: 1,
  s: 1000,
  sec: 1000,
  secs: 1000,
  second: 1000,
  seconds: 1000,
  m: 60_000,
  min: 60_000,
  mins: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hr: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000,
  w: 604_800_000,
  week: 604_800_000,
  weeks: 604_800_000,
};

const PATTERN = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i;

/**
 * Parses a duration into whole milliseconds. Throws a ConfigError naming `what` on anything else, so a typo in
 * options fails at start-up with the option's name in the message.
 */
export function parseDuration(value: Duration, what: string, { allowZero = false } = {}): number {
  let ms: number;
  if (typeof value === 'number') {
    ms = value;
  } else if (typeof value === 'string') {
    const match = PATTERN.exec(value);
    const unit = match?.[2]?.toLowerCase() || 'ms';
    const factor = UNITS[unit];
    if (!match || factor === undefined) {
      throw new ConfigError(
        `${what}: cannot read ${JSON.stringify(value)} as a duration; write milliseconds or e.g. '500 ms', '30 s', '15 m', '2 h', '1 d'`,
      );
    }
    ms = Number(match[1]) * factor;
  } else {
    throw new ConfigError(`${what}: expected a duration (milliseconds or a string like '30 s'), got ${typeof value}`);
  }
  // Checked after rounding: 0.4 ms would otherwise pass as positive and become 0.
  if (Number.isFinite(ms)) ms = Math.round(ms);
  if (!Number.isFinite(ms) || ms < 0 || (!allowZero && ms === 0)) {
    throw new ConfigError(
      `${what}: ${JSON.stringify(value)} is not a ${allowZero ? 'non-negative' : 'positive'} duration`,
    );
  }
  if (ms > 2 ** 31 - 1 && ms !== Number.POSITIVE_INFINITY) {
    // setTimeout cannot wait longer than this, and nothing in the kit should.
    throw new ConfigError(`${what}: ${JSON.stringify(value)} is longer than the maximum of about 24.8 days`);
  }
  return ms;
}

/**
 * parseDuration for spans that are never a timer's delay (a rate-limit window, a retention): past parseDuration's
 * ~24.8 days, a string's number scales its unit ('30 d', '1.5 w'), and a number of milliseconds is taken as it is,
 * up to `maxMs`. At least 1 ms, as for parseDuration.
 */
export function parseLongDuration(value: Duration, what: string, maxMs = Number.MAX_SAFE_INTEGER): number {
  let ms: number | undefined;
  if (typeof value === 'string') {
    // A bare number in a string is milliseconds, as a number is.
    const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
    if (m) {
      let unit: number | undefined;
      try {
        unit = parseDuration(`1 ${m[2] || 'ms'}`, what);
      } catch {
        // An unknown unit: the error should quote what was given, which parseDuration does.
      }
      if (unit !== undefined) ms = Math.round(Number(m[1]) * unit);
    }
  } else if (typeof value === 'number' && Number.isFinite(value)) {
    ms = Math.round(value);
  }
  // parseDuration throws its own message for anything it cannot read.
  ms ??= parseDuration(value, what);
  if (!(ms >= 1)) throw new ConfigError(`${what}: ${JSON.stringify(value)} is not a positive duration`);
  if (ms > maxMs) {
    throw new ConfigError(`${what}: ${JSON.stringify(value)} is longer than the maximum of ${maxMs / 86_400_000} days`);
  }
  return ms;
}
