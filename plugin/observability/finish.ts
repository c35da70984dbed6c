// The kit's middlewares (request metrics, usage) act when the response has finished. They share one state object
// per response, and learn of the finish from Node's diagnostics channel 'http.server.response.finish', which the
// HTTP server publishes for every response it finishes: subscribing once per process replaces a 'finish' listener
// per request, which cost more than everything else the middlewares do (about 1 µs: the response already has a
// listener, so each addListener copies an array and checks the max-listeners limit). Responses that do not come
// from a Node HTTP server (test doubles, serverless adapters) get a plain 'finish' listener instead.
//
// The state is kept under a symbol in the response's `res.locals`, not in a property of the response: adding any
// property to a request or response object (a symbol as much as a string) made the process allocate about 10 % more
// per request (V8 builds a new hidden class and copies the property arrays of these objects, which have some forty
// properties), and that showed as about 10 % more garbage collections under load (bench/suites/observability.ts).
// Express creates `res.locals` per request as a dictionary-mode object, where one more key is a hash insert. A
// WeakMap keyed by the response, used before, cost more still: paired runs (2026-11-27, 20 pairs each) put
// kit.observe() at 0.864 x bare Express with it and 0.924 x with res.locals. Responses without a `res.locals`
// object (not from Express) keep the WeakMap. A handler that replaces `res.locals` with a new object, instead of
// adding to it, leaves its response uncounted (docs/observability.md); spreading or assigning the old one into
// the new one keeps the symbol.

import { subscribe } from 'node:diagnostics_channel';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { localsOf } from '../core/prototypes.js';

/** Called once the response has been handed to the OS. Created once per middleware, never per request. */
export type FinishHook = (req: Request, res: Response, state: FinishState) => void;

export interface FinishState {
  /** performance.now() when the metrics middleware saw the request (NaN if it is not mounted). */
  started: number;
  /**
   * The request's route template once a hook with the default label has computed it (`routeOf` in http.ts):
   * request metrics and usage both label by it, and the second reads it here instead of computing it again.
   */
  route: string | undefined;
  /**
   * The response's `res.locals`, set when the response finishes from the object its state was found in (undefined
   * for responses without one): hooks read it here, not from the response (a slow load on Express's responses).
   */
  locals: Record<string, unknown> | undefined;
  first: FinishHook;
  /** The second hook (kit.metrics() then kit.usage(): the common pair, kept without allocating a list). */
  second: FinishHook | undefined;
  rest: FinishHook[] | undefined;
}

type WithReq = Response & { req: Request };

const STATE = Symbol('rediskit finish state');

/** Responses without a res.locals object. */
const states = new WeakMap<Response, FinishState>();
/** Whether any response has used `states`: until one has, an Express response is not looked up there. */
let statesUsed = false;

/** The response's state, with `locals` set to the response's res.locals now. */
function stateOf(res: Response): FinishState | undefined {
  const locals = localsOf<FinishState>(res);
  // A response that had no res.locals when its state was made may have gained one since: the WeakMap then.
  const state = locals?.[STATE] ?? (statesUsed ? states.get(res) : undefined);
  if (state !== undefined) state.locals = locals as Record<string, unknown> | undefined;
  return state;
}

function run(req: Request, res: Response, state: FinishState): void {
  state.first(req, res, state);
  if (state.second !== undefined) {
    state.second(req, res, state);
    if (state.rest !== undefined) for (const hook of state.rest) hook(req, res, state);
  }
}

// `this` is the response: EventEmitter calls listeners with the emitter as `this`, so no closure is needed.
function onResponseFinish(this: WithReq): void {
  const state = stateOf(this);
  if (state !== undefined) run(this.req, this, state);
}

function onChannelMessage(message: unknown): void {
  // The message carries the request too: no read of res.req.
  const { request, response } = message as { request?: Request; response?: WithReq };
  if (response === undefined) return;
  // Responses the kit's middlewares did not see (other apps on the server, routes mounted before them) have none.
  const state = stateOf(response);
  if (state !== undefined) run(request ?? response.req, response, state);
}

let subscribed = false;

/** Registers `hook` for this response; returns the shared state (to record a start time in). */
export function onFinish(res: Response, hook: FinishHook): FinishState {
  // res.locals is read once here (stateOf would read it again to store the new state).
  const locals = localsOf<FinishState>(res);
  const existing = locals?.[STATE] ?? (statesUsed ? states.get(res) : undefined);
  if (existing !== undefined) {
    if (existing.second === undefined) existing.second = hook;
    else if (existing.rest) existing.rest.push(hook);
    else existing.rest = [hook];
    return existing;
  }
  const state: FinishState = {
    started: Number.NaN,
    route: undefined,
    locals: undefined,
    first: hook,
    second: undefined,
    rest: undefined,
  };
  if (locals !== undefined) locals[STATE] = state;
  else {
    statesUsed = true;
    states.set(res, state);
  }
  // A Node HTTP server publishes the finish of its responses (net.Server sets socket.server on the sockets it
  // accepts). Two property reads, where an instanceof walked Express's reshaped prototype chain per request.
  const socket = res.socket as { server?: unknown } | null | undefined;
  if (socket != null && socket.server !== undefined) {
    if (!subscribed) {
      subscribe('http.server.response.finish', onChannelMessage);
      subscribed = true;
    }
  } else {
    res.on('finish', onResponseFinish);
  }
  return state;
}

/** kit.observe(): request metrics and usage in one router layer, one hook call per finished response. */
export function observeMiddleware(http: FinishHook | undefined, usage: FinishHook | undefined): RequestHandler {
  const hook: FinishHook | undefined =
    http && usage
      ? (req, res, state) => {
          http(req, res, state);
          usage(req, res, state);
        }
      : (http ?? usage);
  if (!hook) return (_req: Request, _res: Response, next: NextFunction) => next();
  return function rediskitObserve(_req: Request, res: Response, next: NextFunction): void {
    onFinish(res, hook).started = performance.now();
    next();
  };
}
