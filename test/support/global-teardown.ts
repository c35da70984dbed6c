// Stops the servers global-setup started.

import { STOP_SIGNALS } from './global-setup';

export default async function globalTeardown(): Promise<void> {
  const servers = globalThis.__REDIS_KIT_SERVERS__;
  const onSignal = servers?.onSignal;
  if (onSignal) for (const s of STOP_SIGNALS) process.off(s, onSignal);
  await servers?.standalone?.stop();
  await servers?.cluster?.stop();
}
