// One 'finish' listener per response for all of the kit's middlewares (request metrics, usage): each extra listener
// on a response costs an array copy and a max-listeners check in Node's EventEmitter, per request.

import type { Response } from 'express';

const HOOKS = Symbol('rediskit.finish');

type Hook = () => void;
type WithHooks = Response & { [HOOKS]?: Hook[] };

/** Runs `fn` once when the response has been handed to the OS (the 'finish' event). */
export function onFinish(res: Response, fn: Hook): void {
  const r = res as WithHooks;
  const hooks = r[HOOKS];
  if (hooks) {
    hooks.push(fn);
    return;
  }
  const list: Hook[] = [fn];
  r[HOOKS] = list;
  res.on('finish', () => {
    for (let i = 0; i < list.length; i++) (list[i] as Hook)();
  });
}
