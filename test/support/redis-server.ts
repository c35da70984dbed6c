// Starting and stopping real redis-server processes (standalone and a small Cluster) on free ports for the tests.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function hasRedisServer(): boolean {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    execFileSync('redis-cli', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

function redisCli(port: number, ...args: string[]): string {
  return execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], {
    encoding: 'utf8',
    timeout: 5000,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
}

/** `gone`: answers the error to stop with at once, when waiting longer cannot help (the process exited). */
async function waitFor(
  check: () => boolean,
  what: string,
  timeoutMs = 10_000,
  gone?: () => Error | undefined,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if (check()) return;
    } catch {
      // not yet
    }
    const error = gone?.();
    if (error) throw error;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** redis-server exited before it answered: most often its port, or a Cluster node's bus port (+10000), was taken. */
class ExitedEarly extends Error {}

export interface RedisProcess {
  port: number;
  url: string;
  pid: number;
  /** SIGSTOP: the server keeps its connections open but answers nothing (a black hole). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** Stops the server (SIGKILL unless graceful) and waits for the process to exit. */
  stop(options?: { graceful?: boolean }): Promise<void>;
}

interface StartOptions {
  port?: number;
  /** Extra arguments; a function of the port when they name it (a Cluster node's config file). */
  args?: string[] | ((port: number) => string[]);
  /** Data directory kept after stop() (a restart with `--appendonly yes` then reloads its data); else a temp dir. */
  dir?: string;
}

/** The servers this process started that have not exited, with the directory to remove after each (if any). */
const started = new Map<ChildProcess, string | undefined>();

/**
 * Kills, synchronously, every server this process started and that still runs, and removes their directories: for
 * a process about to end without its usual clean-up (global-setup's signal handler). Returns how many it signalled.
 */
export function killStartedServers(): number {
  let n = 0;
  for (const [child, dir] of started) {
    if (child.kill('SIGKILL')) n++;
    // A server killed this way may still hold its directory open for a moment: force, and never throw from here.
    if (dir !== undefined) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // Left in the temp directory: better than failing the clean-up of the others.
      }
    }
  }
  started.clear();
  return n;
}

export async function startRedis(options: StartOptions = {}): Promise<RedisProcess> {
  // A free port found here can be taken by another process before redis-server binds it (the test files run in
  // parallel, and a Cluster node binds port + 10000 too): the server then exits at once, and another port is tried.
  for (let attempt = 1; ; attempt++) {
    const port = options.port ?? (await freePort());
    try {
      return await startOn(port, options);
    } catch (error) {
      if (!(error instanceof ExitedEarly) || options.port !== undefined || attempt >= 5) throw error;
    }
  }
}

async function startOn(port: number, options: StartOptions): Promise<RedisProcess> {
  const keepDir = options.dir !== undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'rk-redis-'));
  const child: ChildProcess = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      ...(typeof options.args === 'function' ? options.args(port) : (options.args ?? [])),
    ],
    { stdio: 'ignore' },
  );
  started.set(child, keepDir ? undefined : dir);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      started.delete(child);
      resolve();
    }),
  );
  try {
    // Our child must be the one answering: if another process took the port first, ours exits.
    await waitFor(
      () => child.exitCode === null && redisCli(port, 'INFO', 'server').includes(`process_id:${child.pid}`),
      `redis-server (pid ${child.pid}) on port ${port}`,
      10_000,
      () =>
        child.exitCode !== null || child.signalCode !== null
          ? new ExitedEarly(`redis-server (pid ${child.pid}) on port ${port} exited at start (${child.exitCode})`)
          : undefined,
    );
  } catch (error) {
    child.kill('SIGKILL');
    if (!keepDir) rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid as number,
    pause: () => child.kill('SIGSTOP'),
    resume: () => child.kill('SIGCONT'),
    async stop({ graceful = false } = {}) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(graceful ? 'SIGTERM' : 'SIGKILL');
        child.kill('SIGCONT'); // a paused server must run to act on SIGTERM
      }
      await exited;
      if (!keepDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RedisCluster {
  nodes: Array<{ host: string; port: number }>;
  /** The nodes' process ids. */
  pids: number[];
  stop(): Promise<void>;
}

export async function startCluster(masters = 3): Promise<RedisCluster> {
  const servers: RedisProcess[] = [];
  try {
    for (let i = 0; i < masters; i++) {
      const port = await freePort();
      servers.push(
        await startRedis({
          port,
          args: [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            `nodes-${port}.conf`,
            '--cluster-node-timeout',
            '2000',
          ],
        }),
      );
    }
    const addresses = servers.map((s) => `127.0.0.1:${s.port}`);
    execFileSync('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], {
      stdio: 'ignore',
      timeout: 20_000,
    });
    await waitFor(
      () => servers.every((s) => redisCli(s.port, 'CLUSTER', 'INFO').includes('cluster_state:ok')),
      'cluster_state:ok',
      20_000,
    );
  } catch (error) {
    // The nodes started so far would otherwise outlive the run.
    await Promise.all(servers.map((s) => s.stop()));
    throw error;
  }
  return {
    nodes: servers.map((s) => ({ host: '127.0.0.1', port: s.port })),
    pids: servers.map((s) => s.pid),
    async stop() {
      await Promise.all(servers.map((s) => s.stop()));
    },
  };
}
