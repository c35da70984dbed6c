// One server under test, in its own process: loads the suite, builds the named set-up, listens on a free port and
// tells the parent the port on stdout.

import { pathToFileURL } from 'node:url';
import { runBlock } from './in-process';
import { createServer } from './kit';
import type { Suite } from './types';

/** The harness's --in-process mode: run this many requests through the app without the network (lib/in-process.ts). */
interface BlockMessage {
  block: { count: number; path: string; headers: Record<string, string>; concurrency: number };
}

const cpuNow = (): number => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

async function main(): Promise<void> {
  const [suiteFile, setupName, redisUrl] = process.argv.slice(2) as [string, string, string];
  const mod = (await import(pathToFileURL(suiteFile).href)) as { suite: Suite };
  const setup = mod.suite.setups?.find((s) => s.name === setupName);
  if (!setup) throw new Error(`no set-up ${setupName} in ${suiteFile}`);
  const app = await setup.build({ redisUrl });
  // The set-up's own choice, else the run's (run.ts sets BENCH_SERVER: 'kit' for --kit-server).
  const listen = (callback: () => void) =>
    (setup.server ?? process.env.BENCH_SERVER) === 'kit'
      ? createServer(app).listen(0, '127.0.0.1', callback)
      : app.listen(0, '127.0.0.1', callback);
  const server = listen(() => {
    const address = server.address();
    process.stdout.write(`READY ${typeof address === 'object' && address ? address.port : 0}\n`);
  });
  server.keepAliveTimeout = 60_000;
  // The parent asks for this process's CPU time around each run: CPU per request holds up far better than
  // requests/s when other work shares the machine.
  process.on('message', (message) => {
    if (message === 'cpu') {
      process.send?.({ cpu: cpuNow() });
    } else if (message && typeof message === 'object' && 'block' in message) {
      // The CPU time at the block's start: the caller charges a block with everything until the next one starts
      // (timers such as usage flushes, and garbage collection, that the block's requests left to run later).
      const { count, path, headers, concurrency } = (message as BlockMessage).block;
      const cpu = cpuNow();
      runBlock(app, path, headers, count, concurrency).then(
        ({ failed }) => process.send?.({ blockDone: { cpu, failed } }),
        // Every request counted as failed: the harness stops with the set-up's name.
        (error: unknown) => {
          console.error(error);
          process.send?.({ blockDone: { cpu, failed: count } });
        },
      );
    }
  });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
