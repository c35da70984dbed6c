// Running shipped Lua: EVALSHA first, EVAL only when the server says NOSCRIPT (after a restart, a failover or a
// SCRIPT FLUSH). Any other error is not retried: a script that failed may have written.
//
// A server that lost its script cache answers NOSCRIPT once per script, the first time each one is used again, and
// a script on a rare path (a reconciliation, a stalled-job sweep) meets it minutes later. So the first NOSCRIPT a
// client sees also loads, in the background, every script this process has run: one SCRIPT LOAD each, at most once
// per second per client. Not on a Cluster, where SCRIPT LOAD reaches one node only and EVAL loads per node anyway.

import type { CommandClient, RedisArg, Script } from './types.js';
import { isNoScript } from './errors.js';

/** Every script this process has run, by SHA1. Bounded by the scripts the package ships. */
const ran = new Map<string, Script>();
/** When each client last reloaded the scripts (a WeakMap: a closed client is forgotten with it). */
const reloadedAt = new WeakMap<CommandClient, number>();
const RELOAD_EVERY_MS = 1000;

/** The copies of variadic scripts with their key count set, by script and count (bounded: counts are small). */
const withKeyCounts = new WeakMap<Script, Script[]>();

/**
 * `script` declared with `keys` keys, for a script that takes a variable number (a batch, a key per tag):
 * runScript checks the count, and the store labels its calls by the script object, so one object per count.
 */
export function withKeys(script: Script, keys: number): Script {
  let copies = withKeyCounts.get(script);
  if (copies === undefined) {
    copies = [];
    withKeyCounts.set(script, copies);
  }
  let copy = copies[keys];
  if (copy === undefined) {
    copy = keys === script.keys ? script : { ...script, keys };
    copies[keys] = copy;
  }
  return copy;
}

/** Records that a script is in use, so a reload after a lost script cache includes it. */
export function noteScript(script: Pick<Script, 'sha' | 'source' | 'name' | 'keys'>): void {
  if (!ran.has(script.sha)) ran.set(script.sha, script as Script);
}

/**
 * Called when `client` was answered NOSCRIPT: loads every script this process has run, in the background, so the
 * next use of each is an EVALSHA that succeeds. Errors are ignored (each script still falls back to EVAL).
 */
export function reloadScripts(client: CommandClient): Promise<void> {
  if (client.mode === 'cluster') return Promise.resolve();
  const now = Date.now();
  const last = reloadedAt.get(client);
  if (last !== undefined && now - last < RELOAD_EVERY_MS) return Promise.resolve();
  reloadedAt.set(client, now);
  const commands = [...ran.values()].map((s) => ['SCRIPT', 'LOAD', s.source] as const);
  if (commands.length === 0) return Promise.resolve();
  return client.pipeline(commands).then(
    () => undefined,
    () => undefined,
  );
}

export async function runScript(
  client: CommandClient,
  script: Script,
  keys: readonly string[],
  args: readonly RedisArg[],
): Promise<unknown> {
  if (keys.length !== script.keys) {
    throw new TypeError(`script ${script.name} takes ${script.keys} keys, got ${keys.length}`);
  }
  noteScript(script);
  try {
    return await client.evalsha(script.sha, keys, args);
  } catch (error) {
    if (!isNoScript(error)) throw error;
    void reloadScripts(client);
    return client.eval(script.source, keys, args);
  }
}
