// The session cookie: `<id>.<signature>`, where id is 128 random bits and the signature is HMAC-SHA256 of the id,
// both base64url. Anything else (tampered, truncated, oversized, duplicated, non-ASCII) reads as "no session".

import { randomBytes, timingSafeEqual } from 'node:crypto';
import { sign } from './options.js';

/** 16 bytes of base64url. */
export const ID_LENGTH = 22;
const VALUE_LENGTH = ID_LENGTH + 1 + 43;
const VALUE = /^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/;

export function newId(): string {
  return randomBytes(16).toString('base64url');
}

let lastName = '';
let lastNeedle = '=';

/**
 * The value of cookie `name` in a Cookie header; undefined when absent, and also when it appears more than once
 * (an attacker who can plant a second cookie must not choose which one we read).
 */
export function readCookie(header: string, name: string): string | undefined {
  let found: string | undefined;
  let from = 0;
  // `name=` is built once per name, not once per request (a middleware always passes the same string).
  if (name !== lastName) {
    lastName = name;
    lastNeedle = `${name}=`;
  }
  const needle = lastNeedle;
  for (;;) {
    const at = header.indexOf(needle, from);
    if (at < 0) return found;
    // Must start a cookie-pair: at the start or after ';' and optional spaces.
    let i = at - 1;
    while (i >= 0 && header.charCodeAt(i) === 32) i--;
    if (i < 0 || header.charCodeAt(i) === 59) {
      if (found !== undefined) return undefined;
      const end = header.indexOf(';', at);
      found = (end < 0 ? header.slice(at + needle.length) : header.slice(at + needle.length, end)).trim();
    }
    from = at + needle.length;
  }
}

/** A verified cookie value: its session id, and the store key it reads when that depends on the id alone. */
export interface VerifiedCookie {
  readonly id: string;
  readonly key: string | undefined;
}

/**
 * Remembers cookie values already verified, so a returning client costs a map lookup instead of an HMAC. Only
 * values that verified are kept (a flood of forged values cannot fill it), and it is bounded: cleared when full.
 */
export class VerifiedCookies {
  private readonly seen = new Map<string, VerifiedCookie>();

  /**
   * @param keyOf the store key of a session id, when it depends on nothing else (kept with the id)
   * @param max how many values are remembered before the memory is cleared
   */
  constructor(
    private readonly keys: readonly Buffer[],
    private readonly keyOf?: (id: string) => string,
    private readonly max = 10_000,
  ) {}

  verify(value: string): VerifiedCookie | undefined {
    const hit = this.seen.get(value);
    if (hit !== undefined) return hit;
    const id = verify(value, this.keys);
    if (id === undefined) return undefined;
    const found: VerifiedCookie = { id, key: this.keyOf?.(id) };
    if (this.seen.size >= this.max) this.seen.clear();
    this.seen.set(value, found);
    return found;
  }
}

/** The session id a signed cookie value carries, when a current or former secret signed it. */
export function verify(value: string, keys: readonly Buffer[]): string | undefined {
  if (value.length !== VALUE_LENGTH || !VALUE.test(value)) return undefined;
  const id = value.slice(0, ID_LENGTH);
  const given = Buffer.from(value.slice(ID_LENGTH + 1), 'utf8');
  for (const key of keys) {
    const expected = Buffer.from(sign(id, key), 'utf8');
    if (expected.length === given.length && timingSafeEqual(expected, given)) return id;
  }
  return undefined;
}
