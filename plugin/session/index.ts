// The session feature as the kit builds it: one backend per kit (memory or Redis), shared by every kit.session()
// middleware, kit.sessions and kit.sessionStore().

import type { FeatureContext } from '../core/context.js';
import type { SessionBackend } from './backend.js';
import { KitSessionStore, type SessionStoreOptions } from './express-store.js';
import { SessionKeys } from './keys.js';
import { sessionManager, type SessionManager } from './manager.js';
import { MemorySessionBackend } from './memory.js';
import { type SessionFeature, sessionMiddleware, storeFailureLogger } from './middleware.js';
import { parseSessionOptions, type SessionOptions } from './options.js';
import { RedisSessionBackend } from './redis.js';

export function createSessionFeature(context: FeatureContext): SessionFeature {
  const { store } = context;
  const storeFailed = storeFailureLogger(context.logger);
  let backend: SessionBackend;
  if (store.mode === 'memory') {
    backend = new MemorySessionBackend(store.engine);
  } else {
    const redis = new RedisSessionBackend(store, storeFailed);
    context.onClose(() => redis.close());
    backend = redis;
  }
  return { backend, keys: new SessionKeys(store.keys.prefix), logger: context.logger, storeFailed, minAbsoluteMs: 0 };
}

export function createSessionMiddleware(feature: SessionFeature, options: SessionOptions) {
  if (options === undefined) {
    throw new TypeError('kit.session(options): options with at least { secret } are required');
  }
  const o = options as unknown as Record<string, unknown>;
  if (typeof o.method === 'string' && typeof o.headers === 'object') {
    // app.use(kit.session) without calling it: Express hands us a request.
    throw new TypeError('kit.session must be called: app.use(kit.session({ secret })), not app.use(kit.session)');
  }
  const config = parseSessionOptions(options);
  feature.minAbsoluteMs =
    feature.minAbsoluteMs === 0 ? config.absoluteMs : Math.min(feature.minAbsoluteMs, config.absoluteMs);
  return sessionMiddleware(config, feature);
}

export function createSessionManager(feature: SessionFeature): SessionManager {
  return sessionManager(feature);
}

export function createSessionStore(feature: SessionFeature, options?: SessionStoreOptions): KitSessionStore {
  return new KitSessionStore(feature.backend, feature.keys, options);
}

export { KitSessionStore } from './express-store.js';
export { SessionGoneError, SessionRevokedError, SessionTooLargeError } from './errors.js';
export type { SessionInfo, SessionManager, WorkspaceOption } from './manager.js';
export type { SessionCookieOptions, SessionOptions, WorkspaceSource } from './options.js';
export { Session, SessionCookie } from './session.js';
export type { SessionStoreOptions } from './express-store.js';
