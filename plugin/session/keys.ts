// Session keys: `prefix:session:{<workspace>:<id>}` for a session and `prefix:session:{<workspace>:u:<user>}:idx`
// for a user's index. The workspace is part of the hash tag, so the same id in another workspace is another key,
// and a user's index and one of their sessions may sit in different Cluster slots (see manager.ts).

import { safeId } from '../core/keys.js';

export const DEFAULT_WORKSPACE = '_';
const ID = /^[A-Za-z0-9_-]{22}$/;

export function isSessionId(id: unknown): id is string {
  return typeof id === 'string' && ID.test(id);
}

export class SessionKeys {
  private readonly head: string;
  private readonly adapterHead: string;

  constructor(prefix: string) {
    this.head = `${prefix}:session:{`;
    this.adapterHead = `${prefix}:session-store:{`;
  }

  /** The key segment of a workspace: safe short names verbatim, others hashed (never contains ':' or braces). */
  workspace(ws: string | undefined): string {
    return ws === undefined ? DEFAULT_WORKSPACE : safeId(ws);
  }

  session(wsPart: string, id: string): string {
    return `${this.head}${wsPart}:${id}}`;
  }

  user(wsPart: string, user: string): string {
    return `${this.head}${wsPart}:u:${safeId(user)}}:idx`;
  }

  /** The index of every session the express-session adapter holds (one key, one slot). */
  adapterIndex(): string {
    // '~index' cannot be a safeId() output (those are 25 characters after '~').
    return `${this.adapterHead}~index}:ids`;
  }

  adapterSession(id: string): string {
    return `${this.adapterHead}${safeId(id)}}`;
  }
}
