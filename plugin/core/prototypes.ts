// Accessors on the prototypes Express's requests and responses share, instead of own properties on each of them.
//
// Express 5 moves each request and response onto its app's prototype (Object.setPrototypeOf), and on those objects
// every new own property costs V8 far more than on a plain object: a new hidden class and a copy of the property
// array of an object with some forty properties. Profiled on GET /ping (2026-11-27): `req.rateLimit = result` was
// about 1 % of the process's busy time by itself, and more in the garbage collector; the same value kept in the
// request's `res.locals` (a dictionary Express creates per request) cost a third of that. So a feature that offers
// a request property (req.session, req.rateLimit) defines an accessor once, on the last prototype before node's
// IncomingMessage.prototype (every Express app of one Express copy shares it; a sub-app's own request prototype
// inherits from it), and the response hooks likewise before ServerResponse.prototype.
//
// Why a new property costs so much there (found 2026-11-28): V8 does not cache the hidden class it makes when a
// property is added to an object whose prototype was changed, so each such addition builds a hidden class for that
// one request. createServer(app) (server.ts) avoids the prototype change altogether; the accessors stay, since most
// apps are served by app.listen().

import { IncomingMessage, ServerResponse } from 'node:http';

/** The last prototype before `base` in the chain of `object`, or undefined when `base` is not in it. */
function sharedTarget(object: object, base: object): object | undefined {
  let target: object | undefined;
  let proto = Object.getPrototypeOf(object) as object | null;
  while (proto !== null && proto !== base) {
    target = proto;
    proto = Object.getPrototypeOf(proto) as object | null;
  }
  return proto === null ? undefined : target;
}

/**
 * Installs a feature's accessors on the shared prototypes the first time it meets a request of a given Express
 * copy. `ready(req, res)` answers, for each request, whether they are in place (false: not an Express request and
 * response, which then need per-object definitions). The common case is two prototype reads and two comparisons.
 */
export class SharedPrototypes {
  private readonly installed = new WeakSet<object>();
  private readonly checked = new WeakSet<object>();
  /** Prototypes where another copy of the kit (its CJS and ESM builds both loaded) defined these names first. */
  private readonly foreign = new WeakSet<object>();
  private lastRequest: object | undefined;
  private lastResponse: object | undefined;

  /**
   * @param request the accessors for the request prototype
   * @param response builds the response prototype's properties from the prototype after it (whose methods they
   *   wrap); undefined when the feature needs none
   */
  constructor(
    private readonly request: PropertyDescriptorMap,
    private readonly response?: (parent: object) => PropertyDescriptorMap,
  ) {}

  ready(req: object, res: object): boolean {
    const reqProto = Object.getPrototypeOf(req) as object | null;
    const resProto = Object.getPrototypeOf(res) as object | null;
    if (reqProto === this.lastRequest && resProto === this.lastResponse) return true;
    if (reqProto === null || resProto === null) return false;
    if (this.foreign.has(reqProto)) return false;
    if (!this.checked.has(reqProto) || !this.checked.has(resProto)) {
      const reqTarget = sharedTarget(req, IncomingMessage.prototype);
      const resTarget = sharedTarget(res, ServerResponse.prototype);
      if (reqTarget === undefined || resTarget === undefined) return false;
      if (!this.installed.has(reqTarget)) {
        // Names another copy of the kit already defined there stay its own: this copy then works per request
        // (the caller's fallback), instead of replacing accessors whose state the other copy keeps.
        if (Object.keys(this.request).some((name) => Object.hasOwn(reqTarget, name))) {
          this.foreign.add(reqProto);
          return false;
        }
        Object.defineProperties(reqTarget, this.request);
        this.installed.add(reqTarget);
      }
      if (this.response !== undefined && !this.installed.has(resTarget)) {
        Object.defineProperties(resTarget, this.response(Object.getPrototypeOf(resTarget) as object));
        this.installed.add(resTarget);
      }
      this.checked.add(reqProto);
      this.checked.add(resProto);
    }
    this.lastRequest = reqProto;
    this.lastResponse = resProto;
    return true;
  }
}

/**
 * A response's `res.locals` when it is an object (an Express response), else undefined: where a feature keeps its
 * per-request state under a symbol key (a hash insert in that per-request dictionary, where a new own property of
 * the response or request costs far more; see above).
 */
export function localsOf<T>(res: { locals?: unknown } | undefined): Record<symbol, T | undefined> | undefined {
  const locals = res?.locals;
  return locals != null && typeof locals === 'object' ? (locals as Record<symbol, T | undefined>) : undefined;
}
