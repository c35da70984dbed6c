// kit.sessions: a user's sessions without SCAN. Each user has an index (sorted set of session ids) beside the
// sessions; on a Cluster the index and each session sit in different slots, so every step is a single-slot call,
// ordered so that races end safely (see middleware.ts login() and lua/destroy.lua for the tombstone).

import type { SessionFeature } from './middleware.js';
import { TOMBSTONE_MS } from './middleware.js';
import { isSessionId } from './keys.js';

export interface SessionInfo {
  id: string;
  /** Epoch ms the session was created (at login, for a logged-in session). */
  created: number;
  /** Epoch ms of the last touch or write (reads touch at most once per touchInterval). */
  lastSeen: number;
  ip: string | undefined;
  userAgent: string | undefined;
}

export interface WorkspaceOption {
  /** The workspace the sessions belong to, when the middleware uses workspaces. @default undefined (none) */
  workspace?: string;
}

export interface SessionManager {
  /** The live sessions of a user, newest first. */
  list(userId: string | number, options?: WorkspaceOption): Promise<SessionInfo[]>;
  /** Ends one session; resolves to whether it existed. */
  revoke(id: string, options?: WorkspaceOption): Promise<boolean>;
  /** Ends every session of a user ("log out everywhere"), except the ids in `except`; resolves to how many ended. */
  revokeAll(userId: string | number, options?: WorkspaceOption & { except?: string | string[] }): Promise<number>;
}

/** How young an index entry without session data may be and still belong to a session being created. */
const INDEX_GRACE_MS = 60_000;

export function sessionManager(feature: SessionFeature): SessionManager {
  const { backend, keys } = feature;
  return {
    async list(userId, options = {}) {
      const ws = keys.workspace(options.workspace);
      const index = keys.user(ws, String(userId));
      const ids = (await backend.indexMembers(index)).filter(isSessionId);
      const metas = await backend.meta(ids.map((id) => keys.session(ws, id)));
      const out: SessionInfo[] = [];
      const gone: string[] = [];
      ids.forEach((id, i) => {
        const meta = metas[i];
        if (meta && meta.user === String(userId)) {
          out.push({ id, created: meta.created, lastSeen: meta.lastSeen, ip: meta.ip, userAgent: meta.userAgent });
        } else gone.push(id);
      });
      // Ids of sessions that expired by themselves leave the index here (it has no other way to learn of it), but
      // not those indexed in the last minute: a login indexes its new id before it creates the session, and
      // forgetting such an id would leave a live session out of the list and out of "log out everywhere".
      if (gone.length > 0) {
        await backend.indexForget(index, gone, feature.minAbsoluteMs, INDEX_GRACE_MS).catch(() => undefined);
      }
      return out.sort((a, b) => b.created - a.created);
    },

    async revoke(id, options = {}) {
      if (!isSessionId(id)) return false;
      const ws = keys.workspace(options.workspace);
      const [meta] = await backend.meta([keys.session(ws, id)]);
      const user = await backend.destroy(keys.session(ws, id), 0);
      if (user) await backend.indexRemove(keys.user(ws, user), [id]);
      return meta !== null && meta !== undefined;
    },

    async revokeAll(userId, options = {}) {
      const ws = keys.workspace(options.workspace);
      const except = options.except === undefined ? [] : [options.except].flat();
      const taken = await backend.indexTake(keys.user(ws, String(userId)), except);
      // One call per session (each in its own slot). The tombstone stops a login racing with us (it indexed the
      // id before we took the index, and creates the session after) from creating it.
      const users = await Promise.all(
        taken.filter(isSessionId).map((id) => backend.destroy(keys.session(ws, id), TOMBSTONE_MS)),
      );
      return users.filter((u) => u !== null).length;
    },
  };
}
