// kit.session(): the middleware. Per request it only checks the cookie (no cookie, or a bad one: no store call);
// a valid cookie costs one store round trip (a plain read; a touch goes with it at most once per interval).
// Writes happen once, at the end of the request (or on save()), and carry only the fields whose JSON changed.
// A route that never touches req.session pays for one key in res.locals and, with a cookie, the read: the
// fields are parsed on first use, and the end-of-response work runs only for a request whose session was used.
//
// Why no per-request writes to req and res: Express 5 moves each request and response onto its app's prototype
// (Object.setPrototypeOf), and on those objects every new own property costs V8 far more than on a plain object
// (profiled: two symbol stores on req and two wrapper functions on res were most of the ~25 µs this middleware
// added to a request that never read its session). So the accessors and the response hooks are defined once on
// Express's shared prototypes, and what they look up, one slot per request, is a key of the response's
// `res.locals`: Express makes that object per request in dictionary mode, where one more key is a hash insert.
// The slot had been an own symbol property of the request; in-process profiles of the embedded-store read
// (2026-11-27) put that one store at about a quarter of the middleware's own time, as observability found for
// its response property (plugin/observability/finish.ts). Requests without an Express `res.locals` keep the slot
// on the request itself.

import { inspect } from 'node:util';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { ClosedError, StoreUnavailableError } from '../core/errors.js';
import { type KitLogger, throttledWarning } from '../core/logger.js';
import { localsOf, SharedPrototypes } from '../core/prototypes.js';
import { META, type RawSession, type SessionBackend, fieldName } from './backend.js';
import { newId, readCookie, VerifiedCookies } from './cookie.js';
import { SessionGoneError, SessionRevokedError, SessionTooLargeError } from './errors.js';
import type { SessionKeys } from './keys.js';
import { type SessionConfig, sign } from './options.js';
import { cookieOf, Session, type SessionOwner, setId } from './session.js';

/** What the middleware shares with kit.sessions. */
export interface SessionFeature {
  readonly backend: SessionBackend;
  readonly keys: SessionKeys;
  readonly logger: KitLogger;
  /** Logs a store failure, at most once per interval with a count of the ones left out (an outage is loud enough). */
  storeFailed(error: unknown, outcome: string): void;
  /**
   * The shortest absolute lifetime of this kit's session middlewares (0 before the first one is made): how far back
   * `kit.sessions.list()` may date an index entry when it forgets the ids of sessions that no longer exist.
   */
  minAbsoluteMs: number;
}

export function storeFailureLogger(logger: KitLogger): SessionFeature['storeFailed'] {
  const warn = throttledWarning(logger, 'ERR_KIT_SESSION_STORE');
  return (error, outcome) => warn(`session store unavailable: ${outcome}`, { err: error });
}

declare global {
  namespace Express {
    interface Request {
      /** Set to true when the session store was unreachable and onStoreError is 'degrade'. */
      sessionDegraded?: boolean;
    }
  }
}

const MAX_USER_ID = 256;
const MAX_AGENT = 256;
/** How long a revoked id stays dead; far longer than the gap between a login's two store calls. */
export const TOMBSTONE_MS = 60_000;

type Snapshot = Map<string, string>;

interface Diff {
  set: string[];
  del: string[];
  current: Snapshot;
}

export function storeErrorBody(): string {
  return JSON.stringify({
    error: {
      code: 'ERR_KIT_SESSION_STORE_UNAVAILABLE',
      message: 'The session store is unavailable; please retry shortly.',
    },
  });
}

export function sendStoreError(res: Response, end: (chunk?: unknown) => void = (c) => res.end(c)): void {
  res.statusCode = 503;
  // Drop what described the route's own body; keep headers earlier middleware set (CORS, security).
  for (const name of ['content-length', 'content-type', 'content-encoding', 'etag', 'last-modified', 'set-cookie']) {
    res.removeHeader(name);
  }
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Retry-After', '1');
  end(storeErrorBody());
}

/** The snapshot of a session that has none yet (never written to: adopt() and persist() replace it). */
const NO_SNAPSHOT: Snapshot = new Map();

type Method = (...args: any[]) => unknown;

class SessionRequest implements SessionOwner {
  session: Session | undefined;
  /** The id the request's verified cookie carried. It becomes the session's id only if the store has it. */
  cookieId: string | undefined;
  /** Fields read from the store and not parsed yet: a route that never touches req.session never parses them. */
  private raw: RawSession | undefined;
  private snapshot: Snapshot = NO_SNAPSHOT;
  private persisted = false;
  private user: string | undefined;
  private destroyed = false;
  /** The store refused a write because the session ended elsewhere: nothing more is written for it. */
  private gone = false;
  degraded = false;
  /** req.session was used: the end of the response runs finish(). */
  private used = false;
  /** Something may need a Set-Cookie (a new session, a new id, a destroy, a changed cookie): writeHead looks. */
  private cookieWatch = false;
  /** The hooks live on this response itself (not an Express response: see hookOwn()). */
  private ownHooks = false;
  private ending = false;
  private touchWanted = false;
  private cookieDone = false;
  private chain: Promise<void> | undefined;
  private pending = 0;
  private wsPartCache: string | undefined;

  constructor(
    readonly config: SessionConfig,
    private readonly feature: SessionFeature,
    readonly req: Request,
    private readonly res: Response,
  ) {}

  /** What util.inspect shows of res.locals (or of a request): not the config, whose keys are the secrets. */
  [inspect.custom](): string {
    return 'SessionRequest';
  }

  private get wsPart(): string {
    this.wsPartCache ??= this.feature.keys.workspace(this.config.workspace?.(this.req));
    return this.wsPartCache;
  }

  private key(id: string): string {
    return this.feature.keys.session(this.wsPart, id);
  }

  loadKey(id: string): string {
    return this.key(id);
  }

  /** What the middleware's read found for the cookie's id (null: no such live session). */
  loaded(id: string, raw: RawSession | null): void {
    this.cookieId = id;
    if (raw) {
      this.raw = raw;
      this.persisted = true;
    }
  }

  /** The session as it stands, parsing the fields read by the middleware on first need. */
  private current(): Session | undefined {
    const raw = this.raw;
    if (raw !== undefined) {
      this.raw = undefined;
      this.adopt(this.cookieId as string, raw);
    }
    return this.session;
  }

  private adopt(id: string, raw: RawSession): void {
    const session = new Session(this, id);
    const snapshot: Snapshot = new Map();
    for (const [field, json] of raw) {
      let name = field;
      if (field.charCodeAt(0) === 64) {
        if (field.charCodeAt(1) !== 64) {
          if (field === META.user) this.user = json;
          continue;
        }
        name = field.slice(1);
      }
      // Names the Session object owns, or that would reach its prototype, are never data.
      if (name === '__proto__' || name === 'id' || name === 'cookie') continue;
      try {
        session[name] = JSON.parse(json);
        snapshot.set(name, json);
      } catch {
        // A field that is not JSON was not written by us: leave it out rather than fail the request.
      }
    }
    this.snapshot = snapshot;
    this.session = session;
    this.cookieId = id;
    this.persisted = true;
  }

  /** The getter behind req.session. */
  access(): Session | undefined {
    if (this.destroyed) return undefined;
    const session = this.current();
    if (!this.used) this.use();
    if (session !== undefined) return session;
    // A new session: its cookie goes out once it holds something.
    this.watchCookie();
    this.session = new Session(this);
    return this.session;
  }

  assign(value: unknown): void {
    const session = this.current();
    if (!this.used) this.use();
    this.watchCookie();
    // `req.session = null` is how cookie-session style code logs out: treat it as destroy at the end.
    if (value === null || value === undefined) {
      if (session) {
        this.destroy(session).catch((error: unknown) => this.feature.storeFailed(error, 'session not destroyed'));
      }
      this.destroyed = true;
    } else if (value instanceof Session) {
      this.session = value;
    }
  }

  /** The session's cookie object was looked at: code may change its max age, which needs a Set-Cookie. */
  cookieTouched(): void {
    this.watchCookie();
  }

  // Runs store work one piece at a time, in call order, so save(), regenerate() and the final flush never race.
  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    this.pending++;
    const next = (this.chain ?? Promise.resolve()).then(work).finally(() => {
      this.pending--;
    });
    this.chain = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }

  private diff(session: Session): Diff {
    const set: string[] = [];
    const del: string[] = [];
    const current: Snapshot = new Map();
    let bytes = 0;
    for (const name of Object.keys(session)) {
      const json = JSON.stringify(session[name]);
      if (json === undefined) continue;
      bytes += Buffer.byteLength(name) + Buffer.byteLength(json);
      current.set(name, json);
      if (this.snapshot.get(name) !== json) set.push(fieldName(name), json);
    }
    for (const name of this.snapshot.keys()) if (!current.has(name)) del.push(fieldName(name));
    if (bytes > this.config.maxBytes) throw new SessionTooLargeError(bytes, this.config.maxBytes);
    return { set, del, current };
  }

  private metaFields(user: string | undefined): string[] {
    const out: string[] = [];
    const ip = this.req.ip;
    if (ip) out.push(META.ip, ip);
    const agent = this.req.headers['user-agent'];
    if (agent) out.push(META.agent, agent.slice(0, MAX_AGENT));
    if (user !== undefined) out.push(META.user, user);
    return out;
  }

  /** Writes what changed. `explicit`: save() was called, so even an empty new session is created. */
  private async persist(session: Session, explicit: boolean): Promise<void> {
    if (this.destroyed || this.degraded || this.gone || session !== this.session) return;
    const { set, del, current } = this.diff(session);
    const { idleMs, absoluteMs } = this.config;
    const { backend, keys } = this.feature;
    // A user id that appeared in the data (passport's, by default) binds the session to that user's index. The
    // index entry goes first, as in login(), so a concurrent revoke-all cannot miss this session.
    const previousUser = this.user;
    const user = previousUser ?? this.config.userId(session);
    if (user !== undefined && user !== previousUser) {
      await backend.indexAdd(keys.user(this.wsPart, user), session.id, absoluteMs);
    }
    if (!this.persisted) {
      if (current.size === 0 && !explicit) return;
      // Once the headers are out, a new session could not get its cookie: do not store what no one can use.
      if (this.res.headersSent && !this.cookieDone) return;
      const result = await backend.write(this.key(session.id), {
        mode: 'create',
        set: [...set, ...this.metaFields(user)],
        del: [],
        idleMs,
        absoluteMs,
      });
      if (result === 0) throw new SessionRevokedError();
      this.persisted = true;
    } else {
      const newUser = user !== previousUser;
      if (set.length === 0 && del.length === 0 && !this.touchWanted && !newUser) return;
      if (newUser) set.push(META.user, user as string);
      const result = await backend.write(this.key(session.id), { mode: 'update', set, del, idleMs, absoluteMs });
      if (result === 0) {
        // Expired, revoked or regenerated by a parallel request meanwhile: never bring it back. The cookie is left
        // alone (it now reads as no session): clearing it could erase the new cookie a parallel login just set.
        this.persisted = false;
        this.gone = true;
        return;
      }
    }
    this.user = user;
    this.snapshot = current;
    this.touchWanted = false;
  }

  private needsWrite(session: Session): boolean {
    if (this.touchWanted) return true;
    if (this.user === undefined && this.config.userId(session) !== undefined) return true;
    const keys = Object.keys(session);
    if (!this.persisted) return keys.length > 0;
    let count = 0;
    for (const name of keys) {
      const json = JSON.stringify(session[name]);
      if (json === undefined) continue;
      count++;
      if (this.snapshot.get(name) !== json) return true;
    }
    return count !== this.snapshot.size;
  }

  save(session: Session): Promise<void> {
    return this.enqueue(() => this.persist(session, true));
  }

  touch(): void {
    this.touchWanted = true;
  }

  private async drop(id: string, tombstoneMs: number): Promise<void> {
    const user = await this.feature.backend.destroy(this.key(id), tombstoneMs);
    if (user) await this.feature.backend.indexRemove(this.feature.keys.user(this.wsPart, user), [id]);
  }

  regenerate(session: Session): Promise<void> {
    this.watchCookie();
    return this.enqueue(async () => {
      if (this.persisted) await this.drop(session.id, 0);
      this.persisted = false;
      this.destroyed = false;
      this.gone = false;
      this.user = undefined;
      this.snapshot = NO_SNAPSHOT;
      this.session = new Session(this);
    });
  }

  destroy(session: Session): Promise<void> {
    this.watchCookie();
    this.destroyed = true;
    return this.enqueue(async () => {
      if (this.persisted) await this.drop(session.id, 0);
      this.persisted = false;
    });
  }

  reload(session: Session): Promise<void> {
    return this.enqueue(async () => {
      if (!this.persisted) return;
      const { idleMs, absoluteMs, touchMs } = this.config;
      const raw = await this.feature.backend.load(this.key(session.id), { idleMs, absoluteMs }, touchMs);
      if (!raw) {
        this.persisted = false;
        throw new SessionGoneError();
      }
      for (const name of Object.keys(session)) delete session[name];
      this.adopt(session.id, raw);
      // adopt() made a new object; keep the caller's one, as express-session does.
      const fresh = this.session as Session;
      for (const name of Object.keys(fresh)) session[name] = fresh[name];
      this.session = session;
    });
  }

  login(session: Session, userId: string): Promise<void> {
    if (userId.length === 0 || userId.length > MAX_USER_ID) {
      return Promise.reject(new TypeError(`session.login: user id must be 1 to ${MAX_USER_ID} characters`));
    }
    this.watchCookie();
    return this.enqueue(async () => {
      const { backend, keys } = this.feature;
      const { idleMs, absoluteMs } = this.config;
      const oldId = session.id;
      const wasPersisted = this.persisted;
      const id = newId();
      // The data first: a session too large to store (SessionTooLargeError) must not leave its id in the index.
      const { current } = this.diff(session);
      const set: string[] = [];
      for (const [name, json] of current) set.push(fieldName(name), json);
      // Index, then create: a revoke-all that takes the index in between tombstones this id, and the create below
      // is then refused, so a session the user asked to end cannot appear after the fact.
      await backend.indexAdd(keys.user(this.wsPart, userId), id, absoluteMs);
      const result = await backend.write(this.key(id), {
        mode: 'create',
        set: [...set, ...this.metaFields(userId)],
        del: [],
        idleMs,
        absoluteMs,
      });
      if (result === 0) throw new SessionRevokedError();
      setId(session, id);
      this.persisted = true;
      this.gone = false;
      this.user = userId;
      this.snapshot = current;
      this.session = session;
      if (wasPersisted) await this.drop(oldId, 0);
    });
  }

  /** First use of req.session: from now on the end of the response waits for finish(). */
  private use(): void {
    this.used = true;
    if (this.ownHooks) hookOwn(this.res, this);
  }

  private watchCookie(): void {
    this.cookieWatch = true;
  }

  /**
   * The response's end(), for a request whose session was used (see responseHooks()): writes what changed, then
   * ends the response. `end` is the method the hook stands in for.
   */
  end(res: Response, end: Method, args: unknown[]): unknown {
    if (!this.used || this.ending) return end.apply(res, args);
    this.ending = true;
    let work: Promise<void> | undefined;
    try {
      work = this.finish();
    } catch (error) {
      work = Promise.reject(error);
    }
    if (!work) return end.apply(res, args);
    const original = () => end.apply(res, args);
    work
      .then(original, (error: unknown) => {
        this.writeFailed();
        if (!(error instanceof StoreUnavailableError || error instanceof ClosedError)) {
          // Not the store's weather (e.g. a session over maxBytes): the response stands, the write is logged.
          this.feature.logger.error({ err: error }, 'session could not be saved');
          original();
        } else if (this.config.onStoreError === 'fail' && !res.headersSent) {
          this.feature.storeFailed(error, 'session not saved, answered 503');
          sendStoreError(res, (chunk) => end.call(res, chunk));
        } else {
          this.feature.storeFailed(error, 'session not saved');
          original();
        }
      })
      // A throw from the deferred end() (e.g. the socket is gone) must not become an unhandled rejection.
      .catch((error: unknown) => this.feature.logger.error({ err: error }, 'response could not be ended'));
    return res;
  }

  /** A new session that could not be stored gets no cookie (an id stored earlier, e.g. by login(), keeps it). */
  writeFailed(): void {
    if (!this.persisted) this.cookieDone = true;
  }

  /** End-of-request work: undefined when there is nothing to write (the response goes out at once). */
  finish(): Promise<void> | undefined {
    const session = this.session;
    if (this.degraded || this.destroyed || this.gone || !session) return this.pending > 0 ? this.chain : undefined;
    if (!this.needsWrite(session)) return this.pending > 0 ? this.chain : undefined;
    return this.enqueue(() => this.persist(session, false));
  }

  /** Just before the headers go out: the Set-Cookie, when one is due. */
  onHeaders(): void {
    if (!this.cookieWatch || this.cookieDone || this.degraded || this.gone) return;
    const res = this.res;
    const config = this.config;
    if (this.destroyed) {
      if (this.cookieId !== undefined) {
        this.cookieDone = true;
        res.appendHeader('Set-Cookie', `${config.cookieName}=${config.attributes}${this.secure()}; Max-Age=0`);
      }
      return;
    }
    const session = this.session;
    if (!session) return;
    // A new session is sent when it has data (streaming responses send headers before the final write).
    const exists = this.persisted || Object.keys(session).length > 0;
    const cookie = cookieOf(session);
    if (!exists || (session.id === this.cookieId && !cookie?.changed)) return;
    this.cookieDone = true;
    const key = config.keys[0] as Buffer;
    const maxAge = cookie ? cookie.maxAge : config.maxAgeMs;
    let value = `${config.cookieName}=${session.id}.${sign(session.id, key)}${config.attributes}${this.secure()}`;
    if (maxAge !== null) value += `; Max-Age=${Math.floor(maxAge / 1000)}`;
    res.appendHeader('Set-Cookie', value);
  }

  private secure(): string {
    const secure = this.config.secure;
    return secure === true || (secure === 'auto' && this.req.secure) ? '; Secure' : '';
  }

  /** This request is not an Express one: its response gets hooks of its own on first use (see hookOwn()). */
  hooksOnResponse(): void {
    this.ownHooks = true;
  }
}

/** What one kit.session() middleware leaves on each request it sees: enough to build the request's state later. */
class MiddlewareContext {
  constructor(
    readonly config: SessionConfig,
    readonly feature: SessionFeature,
  ) {}

  [inspect.custom](): string {
    return 'SessionMiddlewareContext';
  }
}

/**
 * The request's one slot: the middleware that saw it, replaced by the request's session state on first use. A
 * second kit.session() on the same request (nested mounts) puts its own context there, and so starts over. It is
 * a key of the response's `res.locals` (see the top of this file), or for a request that is not an Express one
 * (or whose response has no `res.locals` object) an own property of the request.
 */
const STATE = Symbol('session state');

type Slot = MiddlewareContext | SessionRequest | undefined;
type Slots = Record<symbol, Slot>;
type RequestWithState = Request & { [STATE]: Slot };

/** Whether any request has kept its slot on itself: until one has, no request is looked up there. */
let ownSlots = false;

/** The request's slot: in its response's res.locals, else (requests that keep it on themselves) on the request. */
function slotOf(req: RequestWithState | undefined, locals: Slots | undefined): Slot {
  let state = locals === undefined ? undefined : locals[STATE];
  // A state built for another request (an app that gave several responses one shared res.locals object) is not
  // this request's: never hand one request another's session.
  if (state instanceof SessionRequest && state.req !== req) state = undefined;
  return state !== undefined || !ownSlots ? state : req?.[STATE];
}

/**
 * The request's session state, built on first use: a request without a session cookie whose route never reads
 * req.session allocates nothing. Undefined when no kit.session() middleware saw this request.
 */
function ownerOf(req: RequestWithState): SessionRequest | undefined {
  const res = req.res as Response;
  const locals = localsOf<Slot>(res);
  const state = slotOf(req, locals);
  if (state === undefined || state instanceof SessionRequest) return state;
  const owner = new SessionRequest(state.config, state.feature, req, res);
  if (locals !== undefined && locals[STATE] === state) locals[STATE] = owner;
  else req[STATE] = owner;
  return owner;
}

/** The session state of a response's request, once its session has been used (else the hooks pass through). */
function ownerOfResponse(res: Response): SessionRequest | undefined {
  // slotOf() for a response, reading res.req only when the answer depends on it: every response of the app comes
  // through here, and most of them (no session used: no slot, or the middleware's context) need only res.locals.
  const locals = localsOf<Slot>(res);
  const state = locals === undefined ? undefined : locals[STATE];
  if (state !== undefined && !(state instanceof SessionRequest)) return undefined;
  if (state === undefined && !ownSlots) return undefined;
  const own = slotOf(res.req as RequestWithState | undefined, locals);
  return own instanceof SessionRequest ? own : undefined;
}

// One shared pair of accessors for every request. Not enumerable, so a logger or serialiser walking req does not
// create a session by reading it. A request no kit.session() middleware has seen reads undefined, and an assignment
// to it (express-session or cookie-session on other routes of the same app) becomes a plain property of that request.
const REQUEST_PROPERTIES: PropertyDescriptorMap = {
  session: {
    configurable: true,
    get(this: RequestWithState) {
      return ownerOf(this)?.access();
    },
    set(this: RequestWithState, value: unknown) {
      const owner = ownerOf(this);
      if (owner) owner.assign(value);
      else Object.defineProperty(this, 'session', { value, writable: true, configurable: true, enumerable: true });
    },
  },
  sessionID: {
    configurable: true,
    get(this: RequestWithState) {
      return ownerOf(this)?.access()?.id;
    },
    set(this: RequestWithState, value: unknown) {
      Object.defineProperty(this, 'sessionID', { value, writable: true, configurable: true, enumerable: true });
    },
  },
};

/**
 * writeHead and end for every response of this Express copy, defined once on its shared response prototype (the
 * one before node's ServerResponse.prototype) in front of the methods found there. A response whose request has
 * no used session goes straight through: one property read on its request. Middlewares that wrap res.end on the
 * instance (compression, caches) still reach these, through the method they wrapped.
 */
function responseHooks(parent: { writeHead: Method; end: Method }): PropertyDescriptorMap {
  // The methods are looked up on `parent` at each call, not kept: an agent that patches ServerResponse.prototype
  // after the first session request still sees every response.
  return {
    writeHead: {
      configurable: true,
      writable: true,
      // `arguments`, not a rest parameter: every response of the app passes through here, and `apply` with the
      // function's own arguments is optimised by V8 without building an array (both methods have several overloads,
      // passed through as they are).
      value: function writeHead(this: Response) {
        ownerOfResponse(this)?.onHeaders();
        // biome-ignore lint/complexity/noArguments: no array per response (see above)
        return parent.writeHead.apply(this, arguments as unknown as unknown[]);
      },
    },
    end: {
      configurable: true,
      writable: true,
      value: function end(this: Response) {
        const owner = ownerOfResponse(this);
        return owner === undefined
          ? // biome-ignore lint/complexity/noArguments: no array per response (see writeHead)
            parent.end.apply(this, arguments as unknown as unknown[])
          : // biome-ignore lint/complexity/noArguments: the session's end keeps them for later
            owner.end(this, parent.end, Array.prototype.slice.call(arguments));
      },
    },
  };
}

/** Hooks on one response object, for a request that is not an Express one (tests, other frameworks). */
function hookOwn(res: Response, owner: SessionRequest): void {
  const writeHead = res.writeHead as Method;
  const end = res.end as Method;
  // Both have several overloads; the arguments are passed through as they are.
  res.writeHead = function (this: Response, ...args: unknown[]) {
    owner.onHeaders();
    return writeHead.apply(this, args);
  } as Response['writeHead'];
  res.end = function (this: Response, ...args: unknown[]) {
    return owner.end(res, end, args);
  } as Response['end'];
}

/**
 * Defining accessors on every request costs more than the rest of the middleware for a request without a cookie
 * (see the top of this file): they are defined once, on the prototypes the requests and responses of one Express
 * copy share (core/prototypes.ts). Objects that are not Express requests keep per-request definitions.
 */
const prototypes = new SharedPrototypes(REQUEST_PROPERTIES, (parent) =>
  responseHooks(parent as { writeHead: Method; end: Method }),
);

export function sessionMiddleware(config: SessionConfig, feature: SessionFeature): RequestHandler {
  const { backend } = feature;
  const timeouts = { idleMs: config.idleMs, absoluteMs: config.absoluteMs };
  const { touchMs, cookieName } = config;
  // Without a workspace option every request for an id reads the same key: it is built once, with the cookie's
  // verification, and the store's lookup of it then finds its hash already computed.
  const cookies = new VerifiedCookies(
    config.keys,
    config.workspace === undefined ? (id) => feature.keys.session(feature.keys.workspace(undefined), id) : undefined,
  );
  const context = new MiddlewareContext(config, feature);
  const failed = (owner: SessionRequest, req: Request, res: Response, next: NextFunction, error: unknown): void => {
    if (config.onStoreError === 'degrade') {
      feature.storeFailed(error, 'went on with an empty, unsaved session');
      owner.degraded = true;
      req.sessionDegraded = true;
      next();
    } else {
      feature.storeFailed(error, 'answered 503');
      sendStoreError(res);
    }
  };
  return function session(req: Request, res: Response, next: NextFunction): void {
    // The request's slot is written once: with the context when there is no session to read, else with the state
    // built here.
    let owner: SessionRequest | undefined;
    const locals = localsOf<Slot>(res);
    if (locals === undefined || !prototypes.ready(req, res) || req.res !== res || Object.hasOwn(req, 'session')) {
      // Not an Express request, or one whose req.session another middleware already set as a plain property:
      // the state is built now and kept on the request, the accessors defined on the request itself and the hooks
      // on the response.
      owner = new SessionRequest(config, feature, req, res);
      owner.hooksOnResponse();
      ownSlots = true;
      (req as RequestWithState)[STATE] = owner;
      // A slot a kit.session() earlier on this request left in res.locals would be found first.
      if (locals !== undefined) locals[STATE] = undefined;
      Object.defineProperties(req, REQUEST_PROPERTIES);
    }
    const header = req.headers.cookie;
    const value = header === undefined ? undefined : readCookie(header, cookieName);
    const found = value === undefined ? undefined : cookies.verify(value);
    if (found === undefined) {
      if (owner === undefined) (locals as Slots)[STATE] = context;
      next();
      return;
    }
    const id = found.id;
    if (owner === undefined) {
      owner = new SessionRequest(config, feature, req, res);
      (locals as Slots)[STATE] = owner;
    }
    const key = found.key ?? owner.loadKey(id);
    if (backend.loadNow !== undefined) {
      // The embedded store answers at once: no promise, no extra turn of the event loop.
      let raw: RawSession | null;
      try {
        raw = backend.loadNow(key, timeouts, touchMs);
      } catch (error) {
        failed(owner, req, res, next, error);
        return;
      }
      owner.loaded(id, raw);
      next();
      return;
    }
    backend.load(key, timeouts, touchMs).then(
      (raw) => {
        owner.loaded(id, raw);
        try {
          next();
        } catch (error) {
          feature.logger.error({ err: error }, 'session middleware failed after loading');
        }
      },
      (error: unknown) => {
        try {
          failed(owner, req, res, next, error);
        } catch (thrown) {
          feature.logger.error({ err: thrown }, 'session middleware failed after loading');
        }
      },
    );
  };
}
