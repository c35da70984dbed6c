// Locks across real processes on a real Redis: exclusivity under contention (with a non-atomic shared counter),
// fencing order, and recovery from a holder killed with SIGKILL. Children run TypeScript through tsx.
//
// Full-size exclusivity run (4 processes x 2,000 acquisitions):
//   LOCKS_EXCLUSIVITY_N=2000 npx jest test/locks/processes.test.ts

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createRedisKit } from '../../plugin/index';
import { standaloneUrl, uniquePrefix } from '../support/stores';

const ROOT = join(__dirname, '..', '..');
// `node --import tsx` rather than the tsx binary: the binary runs the script in a grandchild process, which a
// SIGKILL of the child would not reach.
const spawnTs = (script: string, args: string[]) =>
  spawn(process.execPath, ['--import', 'tsx', join(FIXTURES, script), ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
const FIXTURES = join(__dirname, 'fixtures');
const PER_PROCESS = Number(process.env.LOCKS_EXCLUSIVITY_N ?? 250);
const url = standaloneUrl();
const maybe = url ? describe : describe.skip;

interface ContenderReport {
  id: string;
  overlaps: number;
  records: Array<[value: number, fence: number]>;
}

function runChild(script: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawnTs(script, args);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${script} exited ${code}: ${err}`))));
  });
}

maybe('locks across processes [standalone]', () => {
  test(`4 processes x ${PER_PROCESS} acquisitions: no lost increment, no overlap, fencing strictly increasing`, async () => {
    const prefix = uniquePrefix();
    const outputs = await Promise.all(
      ['p1', 'p2', 'p3', 'p4'].map((id) => runChild('contender.ts', [url as string, prefix, String(PER_PROCESS), id])),
    );
    const reports = outputs.map((o) => JSON.parse(o.trim()) as ContenderReport);
    const total = 4 * PER_PROCESS;

    expect(reports.reduce((n, r) => n + r.overlaps, 0)).toBe(0);
    const kit = createRedisKit({ redis: url as string, prefix, logger: false, env: {} });
    try {
      const counter = await kit.store.get(kit.store.keys.key('test', 'shared', 'counter'));
      expect(Number(counter)).toBe(total);
    } finally {
      await kit.close();
    }
    // Every value read inside the lock was seen exactly once (a lost increment would repeat one), and in the
    // order of the counter the fencing tokens strictly increase.
    const all = reports.flatMap((r) => r.records).sort((a, b) => a[0] - b[0]);
    expect(all.map(([value]) => value)).toEqual(Array.from({ length: total }, (_, i) => i));
    for (let i = 1; i < all.length; i++) {
      expect((all[i] as [number, number])[1]).toBeGreaterThan((all[i - 1] as [number, number])[1]);
    }
    // Every process got its turns (the lock is not starving anyone).
    for (const r of reports) expect(r.records).toHaveLength(PER_PROCESS);
  }, 240_000);

  test('a holder killed with SIGKILL: the next waiter gets the lock within TTL + 100 ms', async () => {
    const prefix = uniquePrefix();
    const ttl = 2000; // extended every 667 ms: slack for a busy machine
    const child = spawnTs('holder.ts', [url as string, prefix, String(ttl)]);
    const holderToken = await new Promise<number>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        const match = /^ACQUIRED (\d+)/.exec(d.toString());
        if (match) resolve(Number(match[1]));
      });
      child.on('exit', (code) => reject(new Error(`holder exited early (${code})`)));
    });
    const kit = createRedisKit({
      redis: url as string,
      prefix,
      logger: false,
      env: {},
      locks: { pollInterval: '30 s' }, // only the lease's end may wake the waiter, not the fallback poll
    });
    try {
      let got = false;
      const waiting = kit.locks.acquire('crash', { waitTimeout: '10 s' }).then((lock) => {
        got = true;
        return lock;
      });
      // The live holder keeps extending: for two whole leases the waiter must not get in.
      await new Promise((r) => setTimeout(r, 2 * ttl));
      expect(got).toBe(false);
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      const killedAt = performance.now();
      await exited;
      const lock = await waiting;
      const gotAt = performance.now();
      expect(gotAt - killedAt).toBeLessThan(ttl + 100);
      expect(lock.fencingToken).toBeGreaterThan(holderToken);
      await lock.release();
    } finally {
      child.kill('SIGKILL');
      await kit.close();
    }
  }, 30_000);
});
