// kit.sessionStore(): an express-session Store on the kit's store, for apps that keep express-session. Sessions
// are hashes (one field per top-level property) under their own namespace, with an index of ids so that all(),
// ids(), length() and clear() need no SCAN. express-session writes whole sessions, so this adapter does too; the
// field-level writes and laziness are kit.session()'s.

import { EventEmitter } from 'node:events';
import { type Duration, parseDuration } from '../core/duration.js';
import { ConfigError } from '../core/errors.js';
import { assertKnownKeys, assertPlainObject } from '../core/options.js';
import { fieldName, type SessionBackend } from './backend.js';
import type { SessionKeys } from './keys.js';

export interface SessionStoreOptions {
  /** Time to live of a session whose cookie has no expiry (express-session's default cookie). @default '1 d' */
  ttl?: Duration;
  /** A session ends this long after it was created, whatever its cookie says. @default '14 d' */
  absoluteTimeout?: Duration;
}

type Callback<T = void> = (err: unknown, value?: T) => void;
// express-session's session objects are open-ended.
type SessionData = any;
// express-session's request type is not imported at run time.
type AnyRequest = any;

const NEVER_TOUCH = 2 ** 31 - 1;

function settle<T>(promise: Promise<T>, cb: Callback<T> | undefined): Promise<T> {
  if (typeof cb === 'function') {
    promise.then(
      (value) => cb(null, value),
      (err: unknown) => cb(err),
    );
  }
  return promise;
}

export class KitSessionStore extends EventEmitter {
  /** Assigned by express-session when the store is passed to it. */
  declare generate: (req: AnyRequest) => void;
  private readonly ttlMs: number;
  private readonly absoluteMs: number;

  constructor(
    private readonly backend: SessionBackend,
    private readonly keys: SessionKeys,
    options: SessionStoreOptions = {},
  ) {
    super();
    assertPlainObject(options, 'kit.sessionStore');
    assertKnownKeys(options, ['ttl', 'absoluteTimeout'], 'kit.sessionStore');
    this.ttlMs = parseDuration(options.ttl ?? '1 d', 'kit.sessionStore ttl');
    this.absoluteMs = parseDuration(options.absoluteTimeout ?? '14 d', 'kit.sessionStore absoluteTimeout');
    if (this.ttlMs > this.absoluteMs) throw new ConfigError('kit.sessionStore: ttl is longer than absoluteTimeout');
  }

  private ttlOf(session: SessionData | undefined): number {
    const expires = session?.cookie?.expires;
    const at = expires ? new Date(expires).getTime() : Number.NaN;
    const ttl = Number.isFinite(at) ? at - Date.now() : this.ttlMs;
    return Math.max(1, Math.min(Math.round(ttl), this.absoluteMs));
  }

  get(sid: string, cb?: Callback<SessionData | null>): Promise<SessionData | null> {
    return settle(this.read(sid), cb);
  }

  private async read(sid: string): Promise<SessionData | null> {
    // The key's own expiry carries each session's ttl; the script still enforces the absolute lifetime.
    const limits = { idleMs: this.absoluteMs, absoluteMs: this.absoluteMs };
    const raw = await this.backend.load(this.keys.adapterSession(sid), limits, NEVER_TOUCH);
    if (!raw) return null;
    const out: SessionData = {};
    for (const [field, json] of raw) {
      if (field.charCodeAt(0) === 64 && field.charCodeAt(1) !== 64) continue;
      const name = field.charCodeAt(0) === 64 ? field.slice(1) : field;
      if (name === '__proto__') continue;
      try {
        out[name] = JSON.parse(json);
      } catch {
        // Not written by us: leave it out.
      }
    }
    return out;
  }

  set(sid: string, session: SessionData, cb?: Callback): Promise<void> {
    return settle(this.write(sid, session), cb);
  }

  private async write(sid: string, session: SessionData): Promise<void> {
    const set: string[] = [];
    for (const name of Object.keys(session)) {
      const json = JSON.stringify(session[name]);
      if (json !== undefined) set.push(fieldName(name), json);
    }
    const result = await this.backend.write(this.keys.adapterSession(sid), {
      mode: 'replace',
      set,
      del: [],
      idleMs: this.ttlOf(session),
      absoluteMs: this.absoluteMs,
    });
    if (result === 2) await this.backend.indexAdd(this.keys.adapterIndex(), sid, this.absoluteMs);
  }

  touch(sid: string, session: SessionData, cb?: Callback): Promise<void> {
    const work = this.backend
      .write(this.keys.adapterSession(sid), {
        mode: 'update',
        set: [],
        del: [],
        idleMs: this.ttlOf(session),
        absoluteMs: this.absoluteMs,
      })
      .then(() => undefined);
    return settle(work, cb);
  }

  destroy(sid: string, cb?: Callback): Promise<void> {
    const work = (async () => {
      await this.backend.destroy(this.keys.adapterSession(sid), 0);
      await this.backend.indexRemove(this.keys.adapterIndex(), [sid]);
    })();
    return settle(work, cb);
  }

  /** Ids of every live session. */
  ids(cb?: Callback<string[]>): Promise<string[]> {
    const work = (async () => {
      const index = this.keys.adapterIndex();
      const ids = await this.backend.indexMembers(index);
      const metas = await this.backend.meta(ids.map((id) => this.keys.adapterSession(id)));
      const live = ids.filter((_, i) => metas[i]);
      const gone = ids.filter((_, i) => !metas[i]);
      if (gone.length > 0) await this.backend.indexRemove(index, gone);
      return live;
    })();
    return settle(work, cb);
  }

  /** Every live session, each with its `id`. */
  all(cb?: Callback<SessionData[]>): Promise<SessionData[]> {
    const work = (async () => {
      const ids = await this.ids();
      const sessions = await Promise.all(ids.map((id) => this.read(id)));
      const out: SessionData[] = [];
      sessions.forEach((s, i) => {
        if (s) out.push({ ...s, id: ids[i] });
      });
      return out;
    })();
    return settle(work, cb);
  }

  length(cb?: Callback<number>): Promise<number> {
    return settle(
      this.ids().then((ids) => ids.length),
      cb,
    );
  }

  clear(cb?: Callback): Promise<void> {
    const work = (async () => {
      const ids = await this.backend.indexTake(this.keys.adapterIndex(), []);
      await Promise.all(ids.map((id) => this.backend.destroy(this.keys.adapterSession(id), 0)));
    })();
    return settle(work, cb);
  }

  // What express-session's own Store base class provides, written here so the kit needs no runtime dependency
  // on express-session.

  regenerate(req: AnyRequest, fn: (err?: unknown) => void): void {
    this.destroy(req.sessionID, (err) => {
      this.generate(req);
      fn(err);
    });
  }

  load(sid: string, fn: (err: unknown, session?: AnyRequest) => void): void {
    this.get(sid, (err, session) => {
      if (err) return fn(err);
      if (!session) return fn(null);
      fn(null, this.createSession({ sessionID: sid, sessionStore: this }, session));
    });
  }

  createSession(req: AnyRequest, data: SessionData): AnyRequest {
    // express-session's Session and Cookie classes are reached through its own generate() (assigned to this
    // store by express-session): it builds a fresh session whose constructors we reuse for the stored data.
    const sid = req.sessionID;
    const probe: AnyRequest = { sessionID: sid, sessionStore: this, headers: {}, connection: {}, socket: {} };
    this.generate(probe);
    const SessionClass = probe.session.constructor;
    const CookieClass = probe.session.cookie.constructor;
    const stored = data.cookie ?? {};
    const expires = stored.expires;
    const originalMaxAge = stored.originalMaxAge;
    data.cookie = new CookieClass(stored);
    if (typeof expires === 'string') data.cookie.expires = new Date(expires);
    data.cookie.originalMaxAge = originalMaxAge;
    req.sessionID = sid;
    req.session = new SessionClass(req, data);
    return req.session;
  }
}
