// `npm test` stopped by a signal (a CI timeout's SIGTERM, Ctrl-C) ends jest's process without its global teardown.
// The redis-servers global-setup started must not outlive it: a nested run of test/support/run-tests.mjs, held
// open by test/support/held-run.ts, is sent SIGTERM once its servers are up, and every one of them must be gone
// afterwards.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeWithRedis } from '../support/require-redis';

const root = join(__dirname, '..', '..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether the process runs: a zombie (exited, not yet reaped by whoever adopted it) counts as gone. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // Linux: the state follows the command name in parentheses.
    return !/\)\s+Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return !existsSync('/proc/self/stat');
  }
}

describeWithRedis('npm test stopped by a signal', () => {
  let runner: ChildProcess | undefined;
  let dir: string | undefined;
  afterEach(() => {
    // The runner leads a process group of its own (detached), with the nested jest and its servers in it: a test
    // that failed half-way takes all of them down.
    if (runner?.pid !== undefined) {
      try {
        process.kill(-runner.pid, 'SIGKILL');
      } catch {
        // The group is gone already.
      }
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('SIGTERM to the runner leaves none of the redis-servers it started', async () => {
    dir = mkdtempSync(join(tmpdir(), 'rk-run-tests-'));
    const file = join(dir, 'servers.json');
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      REDIS_KIT_TEST_STATE_DIR: dir,
      // Never created: the held test waits until the signal ends the run.
      REDIS_KIT_TEST_RELEASE: join(dir, 'release'),
    };
    // The nested run starts servers of its own (no REDIS_URL) and is not a CI run of its own.
    delete env.REDIS_URL;
    delete env.CI;
    delete env.REDIS_KIT_TEST_NO_CLUSTER;
    runner = spawn(process.execPath, ['test/support/run-tests.mjs', '--testMatch', '**/test/support/held-run.ts'], {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    runner.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    runner.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      runner?.once('exit', (code, signal) => resolve({ code, signal })),
    );
    const deadline = Date.now() + 60_000;
    while (!existsSync(file)) {
      if (runner.exitCode !== null || runner.signalCode !== null) {
        const how = runner.signalCode ?? runner.exitCode;
        throw new Error(`the nested run ended (${how}) before its servers ran:\n${output.slice(-2000)}`);
      }
      if (Date.now() > deadline) {
        throw new Error(`the nested run started no servers within 60 s:\n${output.slice(-2000)}`);
      }
      await sleep(50);
    }
    const pids = (JSON.parse(readFileSync(file, 'utf8')) as { pids: number[] }).pids;
    // The standalone server and the Cluster's three masters.
    expect(pids).toHaveLength(4);
    for (const pid of pids) expect(alive(pid)).toBe(true);

    runner.kill('SIGTERM');
    expect(await exited).toEqual({ code: null, signal: 'SIGTERM' });
    // SIGKILL is immediate, but the kernel may take a moment to reap the orphans.
    const gone = Date.now() + 5000;
    while (pids.some(alive) && Date.now() < gone) await sleep(20);
    expect(pids.filter(alive)).toEqual([]);
  }, 90_000);
});
