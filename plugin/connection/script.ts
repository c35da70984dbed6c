// Running shipped Lua: EVALSHA first, EVAL only when the server says NOSCRIPT (after a restart, a failover or a
// SCRIPT FLUSH). Any other error is not retried: a script that failed may have written.

import type { CommandClient, RedisArg, Script } from './types.js';
import { isNoScript } from './errors.js';

export async function runScript(
  client: CommandClient,
  script: Script,
  keys: readonly string[],
  args: readonly RedisArg[],
): Promise<unknown> {
  if (keys.length !== script.keys) {
    throw new TypeError(`script ${script.name} takes ${script.keys} keys, got ${keys.length}`);
  }
  try {
    return await client.evalsha(script.sha, keys, args);
  } catch (error) {
    if (!isNoScript(error)) throw error;
    return client.eval(script.source, keys, args);
  }
}
