// The HTTP rules of the response cache (RFC 9111 storage and freshness, RFC 9110 conditionals, RFC 9211
// Cache-Status) as small pure functions, so the middleware reads as a flow and the rules can be tested one by one.

import { createHash } from 'node:crypto';

export interface CacheControl {
  noStore: boolean;
  noCache: boolean;
  private: boolean;
  public: boolean;
  mustRevalidate: boolean;
  /** Seconds, or undefined when absent or unreadable. */
  maxAge?: number;
  sMaxAge?: number;
  staleWhileRevalidate?: number;
  staleIfError?: number;
}

const EMPTY_CC: CacheControl = {
  noStore: false,
  noCache: false,
  private: false,
  public: false,
  mustRevalidate: false,
};

function seconds(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const v = value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
  if (!/^\d{1,10}$/.test(v)) return undefined;
  return Number(v);
}

/** Parses a Cache-Control field (request or response). Unknown directives are ignored, as RFC 9111 asks. */
export function parseCacheControl(header: unknown): CacheControl {
  if (header === undefined || header === null || header === '') return EMPTY_CC;
  const text = Array.isArray(header) ? header.join(',') : String(header);
  const cc: CacheControl = { ...EMPTY_CC };
  // Bounded: a hostile header cannot make us loop over thousands of directives.
  for (const raw of text.slice(0, 2048).split(',', 64)) {
    const part = raw.trim();
    if (!part) continue;
    const eq = part.indexOf('=');
    const name = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? undefined : part.slice(eq + 1).trim();
    switch (name) {
      case 'no-store':
        cc.noStore = true;
        break;
      case 'no-cache':
        // `no-cache="Set-Cookie"` (the qualified form) still forbids reuse without revalidation here: we do not
        // revalidate with the origin, so we treat both forms as "do not serve from cache".
        cc.noCache = true;
        break;
      case 'private':
        cc.private = true;
        break;
      case 'public':
        cc.public = true;
        break;
      case 'must-revalidate':
      case 'proxy-revalidate':
        cc.mustRevalidate = true;
        break;
      case 'max-age':
        cc.maxAge = seconds(value);
        break;
      case 's-maxage':
        cc.sMaxAge = seconds(value);
        break;
      case 'stale-while-revalidate':
        cc.staleWhileRevalidate = seconds(value);
        break;
      case 'stale-if-error':
        cc.staleIfError = seconds(value);
        break;
    }
  }
  return cc;
}

/**
 * Freshness lifetime in ms for a shared cache: `s-maxage` beats `max-age` beats the route's ttl (RFC 9111 4.2.1).
 * `Expires` is read only when neither directive is there.
 */
export function freshnessMs(cc: CacheControl, expires: unknown, dateMs: number, defaultMs: number): number {
  if (cc.sMaxAge !== undefined) return cc.sMaxAge * 1000;
  if (cc.maxAge !== undefined) return cc.maxAge * 1000;
  if (typeof expires === 'string' && expires) {
    const at = Date.parse(expires);
    // An invalid Expires means "already expired" (RFC 9111 5.3).
    return Number.isFinite(at) ? Math.max(0, at - dateMs) : 0;
  }
  return defaultMs;
}

/**
 * The request's query string with its parameters in a stable order and each component in one canonical
 * percent-encoding, so `?b=2&a=1` and `?a=1&b=%32` share an entry. Components that are not valid UTF-8
 * percent-encodings are kept as they are (they still key consistently).
 */
export function normaliseUrl(url: string): string {
  const q = url.indexOf('?');
  const hash = url.indexOf('#');
  const end = hash < 0 ? url.length : hash;
  if (q < 0 || q > end) return normalisePath(url.slice(0, end));
  const path = normalisePath(url.slice(0, q));
  const query = url.slice(q + 1, end);
  if (!query) return path;
  const pairs: string[] = [];
  for (const pair of query.split('&')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    const name = canonical(eq < 0 ? pair : pair.slice(0, eq));
    pairs.push(eq < 0 ? name : `${name}=${canonical(pair.slice(eq + 1))}`);
  }
  pairs.sort();
  return pairs.length ? `${path}?${pairs.join('&')}` : path;
}

function canonical(component: string): string {
  try {
    if (!component.includes('%') && !component.includes('+')) return encodeURIComponent(component);
    return encodeURIComponent(decodeURIComponent(component.replace(/\+/g, ' ')));
  } catch {
    // Not a valid percent-encoding of UTF-8: keep it as sent (it still keys consistently).
    return component;
  }
}

function normalisePath(path: string): string {
  if (!path.includes('%')) return path || '/';
  try {
    // Decode then re-encode each segment so %7E and ~ (or %2f kept as %2F) key the same.
    return path
      .split('/')
      .map((s) => encodeURIComponent(decodeURIComponent(s)))
      .join('/');
  } catch {
    return path;
  }
}

/** Path prefixes of a normalised URL, used as implicit tags for `invalidate({ prefix })`: '/a/b' → '/a', '/a/b'. */
export function pathPrefixes(url: string, maxDepth: number): string[] {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const out: string[] = [];
  let at = 0;
  while (out.length < maxDepth) {
    const next = path.indexOf('/', at + 1);
    if (next < 0) {
      if (path.length > 1) out.push(path);
      break;
    }
    out.push(path.slice(0, next));
    at = next;
  }
  return out;
}

/** The canonical form of a prefix passed to `invalidate({ prefix })`: leading slash, no trailing slash. */
export function canonicalPrefix(prefix: string): string {
  let p = normaliseUrl(prefix.startsWith('/') ? prefix : `/${prefix}`);
  while (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  return p;
}

export const MAX_VARY_FIELDS = 16;

/**
 * The response's Vary field names (lower case, sorted, unique) plus the route's own `vary` list, as one spec
 * string. Returns null when the response must not be stored: `Vary: *`, or more names than we key on.
 */
export function varySpec(header: unknown, extra: readonly string[]): string | null {
  const names = new Set(extra);
  if (header !== undefined && header !== null) {
    const text = Array.isArray(header) ? header.join(',') : String(header);
    if (text.length > 1024) return null;
    for (const raw of text.split(',')) {
      const name = raw.trim().toLowerCase();
      if (!name) continue;
      if (name === '*') return null;
      if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) return null;
      names.add(name);
    }
  }
  if (names.size > MAX_VARY_FIELDS) return null;
  return [...names].sort().join(',');
}

/**
 * The secondary key: a hash of the request's values of the fields named in `spec`, so the key stays short
 * whatever the headers hold. An empty spec (no Vary) has a fixed key.
 */
export function secondaryKey(spec: string, headers: Record<string, string | string[] | undefined>): string {
  if (!spec) return '-';
  const hash = createHash('sha256');
  for (const name of spec.split(',')) {
    const value = headers[name];
    const text = value === undefined ? '\u0000' : Array.isArray(value) ? value.join(',') : value;
    // Whitespace around list members does not change a field's meaning.
    hash
      .update(name)
      .update('\u0001')
      .update(text.replace(/\s*,\s*/g, ',').trim())
      .update('\u0002');
  }
  return hash.digest('base64url').slice(0, 22);
}

/** A strong validator derived from the body (RFC 9110 8.8.3). */
export function strongEtag(body: Buffer): string {
  return `"${createHash('sha1').update(body).digest('base64url')}"`;
}

function opaque(tag: string): string {
  const t = tag.trim();
  return t.startsWith('W/') ? t.slice(2) : t;
}

/**
 * Whether a conditional GET/HEAD can be answered 304 (RFC 9110 13.1.2 and 13.1.3): If-None-Match with weak
 * comparison, `*` or a list; If-Modified-Since only when If-None-Match is absent.
 */
export function notModified(
  headers: Record<string, string | string[] | undefined>,
  etag: string,
  lastModifiedMs: number,
): boolean {
  const inm = headers['if-none-match'];
  if (inm !== undefined) {
    const text = Array.isArray(inm) ? inm.join(',') : inm;
    if (text.trim() === '*') return true;
    const mine = opaque(etag);
    // Split on commas outside quotes: an entity-tag may itself contain a comma.
    for (const m of text.slice(0, 8192).matchAll(/(?:W\/)?"[^"]*"/g)) if (opaque(m[0]) === mine) return true;
    return false;
  }
  const ims = headers['if-modified-since'];
  if (typeof ims === 'string' && ims) {
    const since = Date.parse(ims);
    if (!Number.isFinite(since)) return false;
    return Math.floor(lastModifiedMs / 1000) * 1000 <= since;
  }
  return false;
}

/** RFC 9211 Cache-Status member for this cache. */
export function cacheStatus(name: string, params: string): string {
  return `${name}; ${params}`;
}
