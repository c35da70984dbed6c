// The storage contract of sessions, implemented twice: in TypeScript on the embedded store (memory.ts) and with
// the Lua scripts in lua/ on every Redis-protocol store (redis.ts). A session is a hash: one field per top-level
// property (JSON text) plus metadata fields whose names start with '@' (a user field that itself starts with '@'
// is stored with one more '@' in front).

/** Metadata fields of a session hash. */
export const META = {
  created: '@c',
  seen: '@s',
  user: '@u',
  ip: '@ip',
  agent: '@ua',
  tombstone: '@x',
} as const;

export interface Timeouts {
  idleMs: number;
  absoluteMs: number;
}

/** A live session as read from the store: raw fields (user fields still escaped, values still JSON). */
export type RawSession = Map<string, string>;

export type WriteMode = 'create' | 'update' | 'replace';

export interface WriteOp extends Timeouts {
  mode: WriteMode;
  /** Field/value pairs to set, flat: [field, value, field, value, ...]. */
  set: string[];
  /** Fields to delete. */
  del: string[];
}

/** What `kit.sessions.list()` shows of a session. */
export interface SessionMeta {
  created: number;
  lastSeen: number;
  user: string | undefined;
  ip: string | undefined;
  userAgent: string | undefined;
}

export interface SessionBackend {
  /**
   * One round trip: the live session or null (the store has already ended it when past either timeout). Moves
   * its idle deadline when the last touch is `touchMs` old or more.
   */
  load(key: string, timeouts: Timeouts, touchMs: number): Promise<RawSession | null>;
  /**
   * load() for a store that answers in the same turn (the embedded one): the middleware then calls next() without
   * a promise in between. Absent on network stores.
   */
  loadNow?(key: string, timeouts: Timeouts, touchMs: number): RawSession | null;
  /** Returns 2 created, 1 written, 0 refused (see lua/save.lua). */
  write(key: string, op: WriteOp): Promise<0 | 1 | 2>;
  /** Deletes a session, optionally leaving a tombstone; returns the user id it was logged in as. */
  destroy(key: string, tombstoneMs: number): Promise<string | null>;
  indexAdd(index: string, id: string, absoluteMs: number): Promise<void>;
  indexRemove(index: string, ids: string[]): Promise<void>;
  /**
   * Removes those of `ids` that were indexed more than `graceMs` ago (an index entry is made before its session is
   * created, so a younger one may belong to a session a login is still creating).
   */
  indexForget(index: string, ids: string[], absoluteMs: number, graceMs: number): Promise<void>;
  /** Removes and returns every id except `keep`. */
  indexTake(index: string, keep: string[]): Promise<string[]>;
  indexMembers(index: string): Promise<string[]>;
  /** Metadata of several sessions (null for a missing one); keys may live in different Cluster slots. */
  meta(keys: string[]): Promise<Array<SessionMeta | null>>;
  deleteKey(key: string): Promise<void>;
}

export function metaFrom(values: ReadonlyArray<string | null | undefined>): SessionMeta | null {
  // Order: created, seen, user, ip, agent, tombstone.
  const [created, seen, user, ip, agent, tombstone] = values;
  if (!created || !seen || tombstone) return null;
  return {
    created: Number(created),
    lastSeen: Number(seen),
    user: user ?? undefined,
    ip: ip ?? undefined,
    userAgent: agent ?? undefined,
  };
}

export const META_FIELDS = [META.created, META.seen, META.user, META.ip, META.agent, META.tombstone];

/** Store name of a user field. */
export function fieldName(name: string): string {
  return name.charCodeAt(0) === 64 /* @ */ ? `@${name}` : name;
}
