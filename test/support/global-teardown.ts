// Stops the servers global-setup started.

export default async function globalTeardown(): Promise<void> {
  const servers = globalThis.__REDIS_KIT_SERVERS__;
  await servers?.standalone?.stop();
  await servers?.cluster?.stop();
}
