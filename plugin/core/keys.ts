// The one key scheme: `prefix:feature:{id}:part`. The braces are a Redis Cluster hash tag, so every key of one id
// lands in one slot and a multi-key script stays legal on a Cluster. User input never reaches a key raw: an id is
// kept as it is only when it is short and made of safe characters, otherwise it is hashed.

import { createHash } from 'node:crypto';
import { ConfigError } from './errors.js';

/** Longest id kept verbatim in a key; longer ones are hashed. */
export const MAX_RAW_ID_LENGTH = 64;
const SAFE_ID = /^[A-Za-z0-9_.@=+-]+$/;
const SAFE_PREFIX = /^[A-Za-z0-9_.:-]{1,64}$/;
const SAFE_PART = /^[A-Za-z0-9_.-]{1,32}$/;

/**
 * Turns any string into a bounded, brace-free, whitespace-free key segment. Safe short ids are kept readable;
 * everything else becomes `~` + 24 characters of base64url SHA-256 (144 bits), which cannot collide with a kept id
 * because `~` is not in the safe set.
 */
export function safeId(raw: string): string {
  if (raw.length > 0 && raw.length <= MAX_RAW_ID_LENGTH && SAFE_ID.test(raw)) return raw;
  return `~${createHash('sha256').update(raw, 'utf8').digest('base64url').slice(0, 24)}`;
}

export function validatePrefix(prefix: unknown): string {
  if (typeof prefix !== 'string' || !SAFE_PREFIX.test(prefix)) {
    throw new ConfigError(
      `prefix: ${JSON.stringify(prefix)} is not allowed; use 1-64 characters from A-Z a-z 0-9 _ . : - (no braces or spaces), e.g. 'myapp'`,
    );
  }
  return prefix;
}

export class KeyBuilder {
  readonly prefix: string;

  constructor(prefix: string) {
    this.prefix = validatePrefix(prefix);
  }

  /** `prefix:feature:{id}:part1:part2`. `feature` and `parts` come from our code; `id` may come from a user. */
  key(feature: string, id: string, ...parts: string[]): string {
    let out = `${this.prefix}:${feature}:{${safeId(id)}}`;
    for (const part of parts) out += `:${part}`;
    return out;
  }

  /** A per-feature key builder, for the feature's hot path: `feature` is checked once here. */
  forFeature(feature: string): (id: string, ...parts: string[]) => string {
    if (!SAFE_PART.test(feature))
      throw new ConfigError(`feature name ${JSON.stringify(feature)} is not a safe key part`);
    const head = `${this.prefix}:${feature}:{`;
    return (id, ...parts) => {
      let out = `${head}${safeId(id)}}`;
      for (const part of parts) out += `:${part}`;
      return out;
    };
  }

  /** Channel names for pub/sub, namespaced like keys so two kits on one server do not hear each other. */
  channel(feature: string, name: string): string {
    return `${this.prefix}:${feature}:ch:${safeId(name)}`;
  }
}
