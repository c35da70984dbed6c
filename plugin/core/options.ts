// Option checking shared by every factory: unknown keys fail with the nearest valid name suggested.

import { ConfigError } from './errors.js';

/** Levenshtein distance, small inputs only (option names). */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j] as number;
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min(current + 1, (row[j - 1] as number) + 1, prev + cost);
      prev = current;
    }
  }
  return row[b.length] as number;
}

export function nearest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  const lower = name.toLowerCase();
  for (const candidate of candidates) {
    const d = editDistance(lower, candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  // Only suggest when the guess is plausibly a typo of the same word, or the start of it ('base' → 'basePath').
  if (best !== undefined && bestDistance <= Math.max(2, Math.floor(name.length / 3))) return best;
  if (lower.length >= 3) return candidates.find((c) => c.toLowerCase().startsWith(lower));
  return undefined;
}

/** Throws a ConfigError for the first key of `options` not in `known`, suggesting the closest known key. */
export function assertKnownKeys(options: object, known: readonly string[], where: string): void {
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const guess = nearest(key, known);
    throw new ConfigError(
      `${where}: unknown option '${key}'.${guess ? ` Did you mean '${guess}'?` : ''} Valid options: ${known.join(', ')}`,
    );
  }
}

export function assertPlainObject(value: unknown, where: string): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`${where}: expected an options object, got ${value === null ? 'null' : typeof value}`);
  }
}

export function positiveInt(value: unknown, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new ConfigError(`${what}: expected a whole number from 1 to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}
