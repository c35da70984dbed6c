// req.session: the object routes and passport use, with express-session's API (property access, id, cookie,
// regenerate, destroy, save, reload, touch) plus login(userId). Each method takes a callback or returns a promise.
// The methods live on the prototype and `id`/`cookie` are not enumerable, so Object.keys() lists only user data.

import { newId } from './cookie.js';
import type { SessionConfig } from './options.js';

/** What a Session needs from the request that owns it (implemented by SessionRequest in middleware.ts). */
export interface SessionOwner {
  readonly config: SessionConfig;
  save(session: Session): Promise<void>;
  regenerate(session: Session): Promise<void>;
  destroy(session: Session): Promise<void>;
  reload(session: Session): Promise<void>;
  login(session: Session, userId: string): Promise<void>;
  touch(session: Session): void;
  /** The cookie object was looked at or replaced: a Set-Cookie may be due (a changed max age). */
  cookieTouched(): void;
}

export const OWNER = Symbol('session owner');

type Callback = (err?: unknown) => void;

/** Mirrors express-session's `req.session.cookie`: the attributes the next Set-Cookie will carry. */
export class SessionCookie {
  path: string;
  domain: string | undefined;
  httpOnly: boolean;
  secure: boolean | 'auto';
  sameSite: string;
  /** Set on purpose by code that changes maxAge ("remember me"): a Set-Cookie goes out even for an old session. */
  changed = false;
  private ms: number | null;
  readonly originalMaxAge: number | null;

  constructor(config: SessionConfig) {
    this.ms = config.maxAgeMs;
    this.originalMaxAge = config.maxAgeMs;
    this.path = config.cookie.path;
    this.domain = config.cookie.domain;
    this.httpOnly = config.cookie.httpOnly;
    this.secure = config.secure;
    this.sameSite = config.cookie.sameSite;
  }

  /** Milliseconds the cookie lives from now; null for a browser-session cookie. */
  get maxAge(): number | null {
    return this.ms;
  }

  set maxAge(value: number | null) {
    this.ms = typeof value === 'number' && Number.isFinite(value) ? Math.max(0, Math.round(value)) : null;
    this.changed = true;
  }

  get expires(): Date | null {
    return this.ms === null ? null : new Date(Date.now() + this.ms);
  }

  set expires(value: Date | null) {
    this.maxAge = value instanceof Date ? value.getTime() - Date.now() : null;
  }

  toJSON(): object {
    return { originalMaxAge: this.originalMaxAge, maxAge: this.ms, path: this.path, httpOnly: this.httpOnly };
  }
}

function run(promise: Promise<void>, cb: Callback | undefined, self: Session): Session | Promise<void> {
  if (typeof cb !== 'function') return promise;
  promise.then(
    () => cb(),
    (err: unknown) => cb(err),
  );
  return self;
}

const ID = Symbol('session id');
const COOKIE = Symbol('session cookie');

/** The cookie object of a session, when code has looked at it (it is created on first use). */
export function cookieOf(session: Session): SessionCookie | undefined {
  return session[COOKIE];
}

/** Gives a session a new id in place (login keeps the object, and so every reference to it). */
export function setId(session: Session, id: string): void {
  session[ID] = id;
}

export class Session {
  /** Session data: one top-level property per stored field. */
  [field: string]: unknown;
  // Internal state sits under symbols: Object.keys(), for-in and JSON see only the data, and plain assignment
  // keeps construction cheap (defineProperty on every request costs more than the rest of the middleware).
  declare [OWNER]: SessionOwner;
  declare [ID]: string | undefined;
  declare [COOKIE]: SessionCookie | undefined;

  constructor(owner: SessionOwner, id?: string) {
    this[OWNER] = owner;
    this[ID] = id;
    this[COOKIE] = undefined;
  }

  /** 128 random bits, base64url; drawn on first use for a new session. */
  get id(): string {
    let id = this[ID];
    if (id === undefined) {
      id = newId();
      this[ID] = id;
    }
    return id;
  }

  /** express-session's cookie object: the attributes the next Set-Cookie carries. */
  get cookie(): SessionCookie {
    let cookie = this[COOKIE];
    if (cookie === undefined) {
      cookie = new SessionCookie(this[OWNER].config);
      this[COOKIE] = cookie;
      this[OWNER].cookieTouched();
    }
    return cookie;
  }

  set cookie(value: SessionCookie) {
    this[COOKIE] = value;
    this[OWNER].cookieTouched();
  }

  /** Writes the changed fields now (they are also written at the end of the request). */
  save(): Promise<void>;
  save(cb: Callback): Session;
  save(cb?: Callback): Session | Promise<void> {
    return run(this[OWNER].save(this), cb, this);
  }

  /** Ends this session and starts an empty one with a new id (express-session's semantics: data is dropped). */
  regenerate(): Promise<void>;
  regenerate(cb: Callback): Session;
  regenerate(cb?: Callback): Session | Promise<void> {
    return run(this[OWNER].regenerate(this), cb, this);
  }

  /** Deletes the session from the store; `req.session` is undefined afterwards. */
  destroy(): Promise<void>;
  destroy(cb: Callback): Session;
  destroy(cb?: Callback): Session | Promise<void> {
    return run(this[OWNER].destroy(this), cb, this);
  }

  /** Reads the session again from the store, dropping unsaved changes. */
  reload(): Promise<void>;
  reload(cb: Callback): Session;
  reload(cb?: Callback): Session | Promise<void> {
    return run(this[OWNER].reload(this), cb, this);
  }

  /** Marks the session active: its idle deadline moves at the end of the request even without changes. */
  touch(): Session {
    this[OWNER].touch(this);
    return this;
  }

  /** Sends the cookie again with its configured max age. */
  resetMaxAge(): Session {
    this.cookie.maxAge = this.cookie.originalMaxAge;
    return this;
  }

  /**
   * Binds the session to a user: a new id (session-fixation defence) that keeps the data, added to the user's
   * index so kit.sessions.list / revokeAll reach it.
   */
  login(userId: string | number): Promise<void>;
  login(userId: string | number, cb: Callback): Session;
  login(userId: string | number, cb?: Callback): Session | Promise<void> {
    return run(this[OWNER].login(this, String(userId)), cb, this);
  }
}
