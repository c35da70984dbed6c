// Accuracy: a limit of 100 per second, 300 calls/s offered for 10 s on one key, from two app processes sharing
// one Redis (150/s each) and from one process. Admitted calls are compared with what the algorithm's definition
// admits: 1,000 for the sliding window (target ±2 %), burst + rate x time for the token bucket and GCRA.

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { CustomContext, Suite } from '../lib/types';

const SECONDS = 10;
const RATE = 300;
const LIMIT = 100;

function worker(ctx: CustomContext, algorithm: string, rate: number, key: string, startAt: number) {
  return new Promise<{ sent: number; admitted: number; failed: number }>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(__dirname, '..', 'lib', 'accuracy-worker.ts'),
        ctx.env.redisUrl,
        algorithm,
        String(rate),
        String(SECONDS),
        key,
        String(startAt),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`worker exited ${code}`))));
  });
}

const ideal: Record<string, number> = {
  'sliding-window': LIMIT * SECONDS,
  'token-bucket': LIMIT + LIMIT * SECONDS,
  gcra: LIMIT + LIMIT * SECONDS,
  // Calendar windows: 10 s of traffic touch 10 or 11 windows; the first and last are partial.
  'fixed-window': LIMIT * SECONDS,
};

export const suite: Suite = {
  name: 'rate-limit-accuracy',
  description: 'admitted calls vs the ideal at 100/s with 300/s offered for 10 s (two processes on one Redis, and one)',
  async custom(ctx) {
    const rows: Array<Record<string, unknown>> = [];
    let ok = true;
    const cases: Array<[string, number]> = [
      ['sliding-window', 2],
      ['sliding-window', 1],
      ['token-bucket', 2],
      ['gcra', 2],
      ['fixed-window', 2],
    ];
    for (const [algorithm, processes] of cases) {
      const key = `acc-${algorithm}-${processes}-${Date.now()}`;
      const startAt = Date.now() + 3000; // time for the workers to start and load the script
      const results = await Promise.all(
        Array.from({ length: processes }, () => worker(ctx, algorithm, RATE / processes, key, startAt)),
      );
      const admitted = results.reduce((s, r) => s + r.admitted, 0);
      const sent = results.reduce((s, r) => s + r.sent, 0);
      const failed = results.reduce((s, r) => s + r.failed, 0);
      const target = ideal[algorithm] as number;
      const error = (admitted - target) / target;
      const gated = algorithm === 'sliding-window';
      const pass = Math.abs(error) <= 0.02 && failed === 0;
      if (gated && !pass) ok = false;
      rows.push({ algorithm, processes, sent, admitted, ideal: target, error, failed });
      ctx.log(
        `${algorithm} x${processes}: sent ${sent}, admitted ${admitted}, ideal ${target} (${(error * 100).toFixed(2)} %)${failed ? `, ${failed} failed` : ''}`,
      );
    }
    const lines = [
      `### rate-limit-accuracy: ${this.description}`,
      '',
      `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC. Command: \`npm run bench -- rate-limit-accuracy\`.`,
      '',
      '| algorithm | app processes | sent | admitted | ideal | error |',
      '|---|---|---|---|---|---|',
      ...rows.map(
        (r) =>
          `| ${r.algorithm} | ${r.processes} | ${r.sent} | ${r.admitted} | ${r.ideal} | ${((r.error as number) * 100).toFixed(2)} % |`,
      ),
      '',
      ok ? 'Sliding window within ±2 % of the ideal in both set-ups.' : '**Sliding window outside ±2 %: FAILED.**',
    ];
    return { markdown: lines.join('\n'), json: { rows }, ok };
  },
};
