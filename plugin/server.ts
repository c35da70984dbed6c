// createServer(app): an HTTP server whose requests and responses are born with the app's prototypes.
//
// Express gives every request and response its app's prototype as they arrive (Object.setPrototypeOf in app.handle,
// the init middleware in Express 4), so that `req.get()`, `res.json()` and the rest are found. In V8 that move is
// cheap once, but what follows is not: Express then adds properties (res.locals, req.baseUrl, req.params, ...), and
// V8 does not cache the hidden class of an object whose prototype was changed when a property is added to it. So
// every request and every response ends up with a hidden class of its own, and every property access on them, in
// Express, in Node's HTTP code and in every middleware, meets a shape it has never seen. Checked with V8's
// %HaveSameMap on Node 20 and Express 5.3: two responses of consecutive requests share a hidden class until
// `res.locals` is set, and never after. test/unit/server.test.ts checks the finished requests and responses of
// Express 5.3 and 4.22: under app.listen() none shares its predecessor's.
//
// Node's HTTP server can build its requests and responses from given classes (the `IncomingMessage` and
// `ServerResponse` options). Given constructors whose prototypes are the app's own `app.request` and `app.response`,
// the objects have Express's prototype from birth; Express's Object.setPrototypeOf then sets the prototype they
// already have, which changes nothing, and V8 shares hidden classes between requests as for any other object.
// Sustained load on GET /ping (docs/performance.md, "Serving Express from createServer()"): Express 5 and 4 served
// 2.8 and 2.3 times the requests per CPU second. The same idea is proposed to Express itself in expressjs/express#5998.
//
// What differs from app.listen(), besides speed (docs/server.md):
// - The server builds every request this way, before it has read the headers, so the requests an 'upgrade',
//   'connect', 'checkContinue' or 'checkExpectation' listener receives have the app's prototype too, without
//   Express having run: Express 5's getters such as req.query then cannot be assigned in them.
// - A request that enters a mounted sub-app is moved onto the sub-app's prototypes, as before, and from then on
//   has a hidden class of its own again, for the rest of that request.
// - server.listen(port, callback) does not hand a listen error to the callback as Express 5's app.listen() does: it
//   is the server's 'error' event, as for any node:http server.

import {
  IncomingMessage,
  type Server,
  type ServerOptions,
  ServerResponse,
  createServer as httpServer,
} from 'node:http';
import { ConfigError } from './core/errors.js';

/** What createServer() needs of an app: Express's request handler and its two prototypes (Express 4 and 5). */
export interface ExpressApp {
  (req: IncomingMessage, res: ServerResponse): void;
  request: object;
  response: object;
}

/** The `IncomingMessage` and `ServerResponse` options of `http.createServer()` / `https.createServer()`. */
export interface ServerClasses {
  IncomingMessage: typeof IncomingMessage;
  ServerResponse: typeof ServerResponse;
}

/** One pair per app, so that every server of an app builds objects of the same hidden classes. */
const made = new WeakMap<object, ServerClasses>();

let warnedClassSyntax = false;

type Constructor = (this: object, ...args: unknown[]) => unknown;

/**
 * A constructor that runs `base`'s body on an object whose prototype is `prototype`: `base` must be callable
 * without `new`, as Node's IncomingMessage and ServerResponse are (plain functions in Node 20). A `base` that, called
 * so, builds and returns an object of its own instead (some runtimes' polyfills do) still works: that object is
 * returned, moved onto `prototype` as Express would have moved it.
 */
export function bornWith(base: Constructor, prototype: object): Constructor {
  // Not Reflect.construct(base, args, born): objects made that way get the prototype but share no hidden class
  // (checked with %HaveSameMap), which is the point of this file.
  const born = function (this: object, ...args: unknown[]): object | undefined {
    const own: unknown = base.apply(this, args);
    if (typeof own !== 'object' || own === null || own === this) return undefined;
    Object.setPrototypeOf(own, prototype);
    return own;
  };
  born.prototype = prototype;
  return born as Constructor;
}

/** Whether `fn` is written with `class` syntax (which cannot be called without `new`). */
function isClass(fn: unknown): boolean {
  return typeof fn === 'function' && /^class\b/.test(Function.prototype.toString.call(fn));
}

/**
 * Classes deriving from `bases` whose instances are born with the two prototypes; `bases` themselves, and a warning
 * (once per process), when either is written with `class` syntax. Exported for the tests, which give class-syntax
 * bases to check that fallback on a Node whose own classes are plain functions; not part of the package's API.
 */
export function classesOn(bases: ServerClasses, request: object, response: object): ServerClasses {
  if (isClass(bases.IncomingMessage) || isClass(bases.ServerResponse)) {
    if (!warnedClassSyntax) {
      warnedClassSyntax = true;
      process.emitWarning(
        "express-redis-kit: this Node's IncomingMessage/ServerResponse are classes; createServer() serves with them unchanged",
        { code: 'ERR_KIT_SERVER_CLASSES' },
      );
    }
    return bases;
  }
  return {
    IncomingMessage: bornWith(
      bases.IncomingMessage as unknown as Constructor,
      request,
    ) as unknown as typeof IncomingMessage,
    ServerResponse: bornWith(
      bases.ServerResponse as unknown as Constructor,
      response,
    ) as unknown as typeof ServerResponse,
  };
}

/**
 * The `IncomingMessage` and `ServerResponse` classes that build an Express app's requests and responses with the
 * app's prototypes, for `http.createServer(options, app)` and `https.createServer(options, app)`:
 *
 * ```ts
 * https.createServer({ key, cert, ...serverClasses(app) }, app).listen(443);
 * ```
 *
 * Throws a ConfigError when `app` is not an Express application (no `app.request` / `app.response` inheriting from
 * Node's). On a Node whose request classes are written with `class` syntax (not Node 20's) it returns Node's own
 * classes, which behave as app.listen() does, and warns once (code ERR_KIT_SERVER_CLASSES).
 */
export function serverClasses(app: ExpressApp): ServerClasses {
  const request = (app as Partial<ExpressApp> | undefined)?.request;
  const response = (app as Partial<ExpressApp> | undefined)?.response;
  if (
    typeof app !== 'function' ||
    typeof request !== 'object' ||
    request === null ||
    typeof response !== 'object' ||
    response === null ||
    !Object.prototype.isPrototypeOf.call(IncomingMessage.prototype, request) ||
    !Object.prototype.isPrototypeOf.call(ServerResponse.prototype, response)
  ) {
    throw new ConfigError(
      'createServer/serverClasses: expected an Express application (a function with app.request and app.response ' +
        "inheriting from node:http's IncomingMessage and ServerResponse)",
    );
  }
  const known = made.get(app);
  if (known) return known;
  const classes = classesOn({ IncomingMessage, ServerResponse }, request, response);
  made.set(app, classes);
  return classes;
}

/**
 * An HTTP server for an Express app, as `app.listen()` makes, but whose requests and responses are born with the
 * app's prototypes (see serverClasses()). Call `.listen()` on it:
 *
 * ```ts
 * createServer(app).listen(3000);
 * ```
 *
 * @param options node:http server options (timeouts, header limits, ...), without `IncomingMessage` and
 *   `ServerResponse` (a ConfigError when given: they are what this function sets).
 */
export function createServer(
  app: ExpressApp,
  options: Omit<ServerOptions, 'IncomingMessage' | 'ServerResponse'> = {},
): Server {
  if ('IncomingMessage' in options || 'ServerResponse' in options) {
    throw new ConfigError('createServer: the IncomingMessage and ServerResponse options are its own; leave them out');
  }
  return httpServer({ ...options, ...serverClasses(app) }, app);
}
