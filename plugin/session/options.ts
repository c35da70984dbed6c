// Options of kit.session(): declared with their defaults, parsed once into a SessionConfig the middleware uses.

import { createHmac } from 'node:crypto';
import type { Request } from 'express';
import { type Duration, parseDuration } from '../core/duration.js';
import { ConfigError } from '../core/errors.js';
import { assertKnownKeys, assertPlainObject } from '../core/options.js';

/** Where a request's workspace comes from. A session is bound to the workspace it was created in. */
export type WorkspaceSource =
  /** A request header, e.g. `{ header: 'x-workspace' }`. */
  | { header: string }
  /** The leftmost label of the host name (`acme.example.com` → `acme`); `req.hostname` honours `trust proxy`. */
  | { subdomain: true }
  /** A route parameter of the path the middleware is mounted on, e.g. `app.use('/w/:ws', kit.session(...))`. */
  | { param: string }
  /** Your own function; return undefined for "no workspace". */
  | ((req: Request) => string | undefined);

export interface SessionCookieOptions {
  /** Cookie path. @default '/' */
  path?: string;
  /** Cookie domain; leave unset to keep the cookie on the exact host. @default undefined */
  domain?: string;
  /** SameSite attribute. @default 'lax' */
  sameSite?: 'lax' | 'strict' | 'none';
  /** `'auto'`: Secure when the request came over TLS (`req.secure`, which honours Express's `trust proxy`). @default 'auto' */
  secure?: boolean | 'auto';
  /** HttpOnly attribute; keep it unless a script truly must read the id. @default true */
  httpOnly?: boolean;
  /**
   * Max-Age of the cookie. `'absolute'` lets the browser keep it as long as the session may live; `null` makes it
   * a browser-session cookie. The store enforces both timeouts whatever the cookie says.
   * @default 'absolute'
   */
  maxAge?: Duration | 'absolute' | null;
  /** Name the cookie `__Host-<name>` (requires Secure, Path=/ and no Domain: the browser then pins it to the host). @default false */
  hostPrefix?: boolean;
}

export interface SessionOptions {
  /**
   * Secret(s) that sign the cookie with HMAC-SHA256. A list rotates secrets: the first signs, all verify.
   * @example { secret: [process.env.SESSION_SECRET_NEW, process.env.SESSION_SECRET_OLD] }
   */
  secret: string | string[];
  /** Cookie name. @default 'rk.sid' */
  name?: string;
  /** A session unused for this long ends (sliding). @default '1 d' */
  idleTimeout?: Duration;
  /** A session ends this long after it was created, however active. @default '14 d' */
  absoluteTimeout?: Duration;
  /** Reads move the idle deadline at most this often per session (one write per interval). @default '1 m' */
  touchInterval?: Duration;
  /** Cookie attributes. */
  cookie?: SessionCookieOptions;
  /** Where the workspace comes from; unset: one workspace for everything. @default undefined */
  workspace?: WorkspaceSource;
  /**
   * When the store cannot be reached: `'fail'` answers 503 with a JSON body; `'degrade'` goes on with an empty
   * session that is not saved (`req.sessionDegraded === true`). Bounded by the kit's command timeout.
   * @default 'fail'
   */
  onStoreError?: 'fail' | 'degrade';
  /**
   * Which user a session belongs to, read from its data when it is saved: the session then joins that user's index
   * (kit.sessions.list / revokeAll). The default reads passport's `session.passport.user` when it is a string or a
   * number, so passport apps get "log out everywhere" unchanged. `false` turns it off; `session.login(id)` always
   * works.
   * @default (session) => session.passport?.user
   */
  userId?: ((session: Record<string, unknown>) => string | number | undefined) | false;
  /** Most bytes of session data (field names and JSON values) one session may hold; a save past it fails. @default 65_536 */
  maxBytes?: number;
}

export interface SessionConfig {
  name: string;
  cookieName: string;
  keys: Buffer[];
  idleMs: number;
  absoluteMs: number;
  touchMs: number;
  /** Cookie attributes after the value, without Secure and Max-Age. */
  attributes: string;
  /** The same attributes as values, for req.session.cookie. */
  cookie: { path: string; domain: string | undefined; httpOnly: boolean; sameSite: string };
  secure: boolean | 'auto';
  maxAgeMs: number | null;
  workspace: ((req: Request) => string | undefined) | undefined;
  onStoreError: 'fail' | 'degrade';
  maxBytes: number;
  userId: (session: Record<string, unknown>) => string | undefined;
}

const KNOWN = [
  'secret',
  'name',
  'idleTimeout',
  'absoluteTimeout',
  'touchInterval',
  'cookie',
  'workspace',
  'onStoreError',
  'maxBytes',
  'userId',
] as const;
const COOKIE_KNOWN = ['path', 'domain', 'sameSite', 'secure', 'httpOnly', 'maxAge', 'hostPrefix'] as const;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const PATH_OR_DOMAIN = /^[\x21-\x3a\x3c-\x7e]+$/;
const MAX_WORKSPACE = 256;

function passportUser(session: Record<string, unknown>): string | number | undefined {
  const passport = session.passport;
  const user = passport && typeof passport === 'object' ? (passport as { user?: unknown }).user : undefined;
  return typeof user === 'string' || typeof user === 'number' ? user : undefined;
}

function userIdFn(option: unknown): SessionConfig['userId'] {
  if (option === false) return () => undefined;
  if (option !== undefined && typeof option !== 'function') {
    throw new ConfigError('kit.session userId: expected a function (session) => user id, or false');
  }
  const read = (option ?? passportUser) as (s: Record<string, unknown>) => unknown;
  return (session) => {
    const user = read(session);
    if (typeof user === 'number' && Number.isFinite(user)) return String(user);
    return typeof user === 'string' && user.length > 0 && user.length <= 256 ? user : undefined;
  };
}

export function parseSecrets(secret: unknown, where: string): Buffer[] {
  const list = typeof secret === 'string' ? [secret] : secret;
  if (!Array.isArray(list) || list.length === 0 || list.some((s) => typeof s !== 'string' || s.length === 0)) {
    throw new ConfigError(
      `${where}: secret is required: a non-empty string or a list of them (the first signs, all verify), e.g. { secret: process.env.SESSION_SECRET }`,
    );
  }
  return (list as string[]).map((s) => Buffer.from(s, 'utf8'));
}

function workspaceFn(source: unknown): SessionConfig['workspace'] {
  if (source === undefined) return undefined;
  const bounded = (v: unknown): string | undefined =>
    typeof v === 'string' && v.length > 0 && v.length <= MAX_WORKSPACE ? v : undefined;
  if (typeof source === 'function') return (req) => bounded((source as (r: Request) => unknown)(req));
  if (source && typeof source === 'object') {
    const s = source as Record<string, unknown>;
    if (typeof s.header === 'string' && Object.keys(s).length === 1) {
      const header = s.header.toLowerCase();
      return (req) => bounded(req.headers[header]);
    }
    if (s.subdomain === true && Object.keys(s).length === 1) {
      return (req) => {
        const host = req.hostname;
        const dot = host ? host.indexOf('.') : -1;
        return dot > 0 ? bounded(host.slice(0, dot).toLowerCase()) : undefined;
      };
    }
    if (typeof s.param === 'string' && Object.keys(s).length === 1) {
      const param = s.param;
      return (req) => bounded(req.params?.[param]);
    }
  }
  throw new ConfigError(
    "session: workspace must be { header: 'x-workspace' }, { subdomain: true }, { param: 'name' } or a function (req) => string | undefined",
  );
}

export function parseSessionOptions(options: SessionOptions): SessionConfig {
  assertPlainObject(options, 'kit.session');
  assertKnownKeys(options, KNOWN, 'kit.session');
  const keys = parseSecrets(options.secret, 'kit.session');
  const cookie = options.cookie ?? {};
  assertPlainObject(cookie, 'kit.session cookie');
  assertKnownKeys(cookie, COOKIE_KNOWN, 'kit.session cookie');

  const name = options.name ?? 'rk.sid';
  if (typeof name !== 'string' || !TOKEN.test(name)) {
    throw new ConfigError(`kit.session: name ${JSON.stringify(name)} is not a valid cookie name; e.g. 'sid'`);
  }
  const idleMs = parseDuration(options.idleTimeout ?? '1 d', 'kit.session idleTimeout');
  const absoluteMs = parseDuration(options.absoluteTimeout ?? '14 d', 'kit.session absoluteTimeout');
  if (idleMs > absoluteMs) {
    throw new ConfigError(
      'kit.session: idleTimeout is longer than absoluteTimeout; the idle timeout would never apply',
    );
  }
  // Touches must come well inside the idle window, or an active session could still time out.
  const touchMs = Math.min(
    parseDuration(options.touchInterval ?? '1 m', 'kit.session touchInterval'),
    Math.floor(idleMs / 4),
  );

  const path = cookie.path ?? '/';
  const sameSite = cookie.sameSite ?? 'lax';
  const httpOnly = cookie.httpOnly ?? true;
  const hostPrefix = cookie.hostPrefix ?? false;
  let secure = cookie.secure ?? 'auto';
  if (typeof path !== 'string' || !PATH_OR_DOMAIN.test(path)) throw new ConfigError('kit.session cookie.path: invalid');
  if (cookie.domain !== undefined && (typeof cookie.domain !== 'string' || !PATH_OR_DOMAIN.test(cookie.domain))) {
    throw new ConfigError('kit.session cookie.domain: invalid');
  }
  if (!['lax', 'strict', 'none'].includes(sameSite)) {
    throw new ConfigError(`kit.session cookie.sameSite: expected 'lax', 'strict' or 'none', got ${String(sameSite)}`);
  }
  if (secure !== 'auto' && typeof secure !== 'boolean') {
    throw new ConfigError("kit.session cookie.secure: expected true, false or 'auto'");
  }
  if (hostPrefix) {
    if (path !== '/' || cookie.domain !== undefined || secure === false) {
      throw new ConfigError(
        'kit.session cookie.hostPrefix: a __Host- cookie needs path "/", no domain and secure not false',
      );
    }
    secure = true;
  }
  if (sameSite === 'none' && secure === false) {
    throw new ConfigError("kit.session cookie: sameSite 'none' requires secure (browsers drop it otherwise)");
  }
  let maxAgeMs: number | null;
  const maxAge = cookie.maxAge === undefined ? 'absolute' : cookie.maxAge;
  if (maxAge === null) maxAgeMs = null;
  else if (maxAge === 'absolute') maxAgeMs = absoluteMs;
  else maxAgeMs = parseDuration(maxAge, 'kit.session cookie.maxAge');

  const onStoreError = options.onStoreError ?? 'fail';
  if (onStoreError !== 'fail' && onStoreError !== 'degrade') {
    throw new ConfigError(`kit.session onStoreError: expected 'fail' or 'degrade', got ${String(onStoreError)}`);
  }
  const maxBytes = options.maxBytes ?? 65_536;
  if (!Number.isInteger(maxBytes) || maxBytes < 256) throw new ConfigError('kit.session maxBytes: at least 256');

  let attributes = `; Path=${path}`;
  if (cookie.domain) attributes += `; Domain=${cookie.domain}`;
  if (httpOnly) attributes += '; HttpOnly';
  attributes += `; SameSite=${sameSite[0]?.toUpperCase()}${sameSite.slice(1)}`;
  return {
    name,
    cookieName: hostPrefix ? `__Host-${name}` : name,
    keys,
    idleMs,
    absoluteMs,
    touchMs,
    attributes,
    cookie: { path, domain: cookie.domain, httpOnly, sameSite },
    secure,
    maxAgeMs,
    workspace: workspaceFn(options.workspace),
    onStoreError,
    maxBytes,
    userId: userIdFn(options.userId),
  };
}

/** HMAC-SHA256 of the id, base64url (43 characters). */
export function sign(id: string, key: Buffer): string {
  return createHmac('sha256', key).update(id).digest('base64url');
}
