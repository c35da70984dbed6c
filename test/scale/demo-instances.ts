// The demo started as separate Node processes (`demo/server.ts`, as `npm start` runs it) on 127.0.0.1, and a small
// round-robin HTTP proxy in front of them, for the multi-instance and security suites. Each process's output is
// kept, so a test can look for secrets in what the demo logged.

import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type IncomingMessage, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { freePort } from '../support/redis-server';

const ROOT = join(__dirname, '..', '..');

export interface DemoProcess {
  port: number;
  url: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  proc: ChildProcess;
}

/** Starts `npm start`'s entry point with the given environment; resolves once it listens. */
export async function startDemo(env: Record<string, string>, timeoutMs = 45_000): Promise<DemoProcess> {
  const port = await freePort();
  // Only what the demo needs from this environment: no store or token leaks in from the developer's shell.
  const base: Record<string, string> = {};
  for (const name of ['PATH', 'HOME', 'TMPDIR', 'NODE_OPTIONS', 'TSX_TSCONFIG_PATH']) {
    const value = process.env[name];
    if (value !== undefined) base[name] = value;
  }
  const proc = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'demo', 'server.ts')], {
    cwd: ROOT,
    env: { ...base, ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  proc.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  proc.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`demo on port ${port} did not start in ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const check = () => {
      // The dashboard line (with a generated token) follows the listening line, possibly in a later chunk.
      if (output.includes('listening on') && output.includes('dashboard')) {
        clearTimeout(timer);
        proc.stdout?.off('data', check);
        resolve();
      }
    };
    proc.stdout?.on('data', check);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`demo exited with ${code} before listening:\n${output}`));
    });
  });
  return { port, url: `http://127.0.0.1:${port}`, output: () => output, proc };
}

/** SIGTERM (the demo closes its kit), then SIGKILL after a grace period. */
export async function stopDemo(demo: DemoProcess, graceMs = 5000): Promise<void> {
  const { proc } = demo;
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export interface RoundRobinProxy {
  url: string;
  /** How many requests each target got, by target index. */
  served: number[];
  close(): Promise<void>;
}

/**
 * A load balancer in a few lines: each request goes to the next target in turn, with the client's address
 * appended to X-Forwarded-For (the demo trusts loopback proxies) and `X-Served-By: <index>` on the answer.
 * Responses are streamed through, so Server-Sent Events work across it.
 */
export async function startProxy(targets: number[]): Promise<RoundRobinProxy> {
  let next = 0;
  const served = targets.map(() => 0);
  const server: Server = createServer((req: IncomingMessage, res) => {
    const index = next++ % targets.length;
    served[index] = (served[index] ?? 0) + 1;
    const forwarded = [req.headers['x-forwarded-for'], req.socket.remoteAddress].filter(Boolean).join(', ');
    const upstream = httpRequest(
      {
        host: '127.0.0.1',
        port: targets[index],
        method: req.method,
        path: req.url,
        headers: { ...req.headers, 'x-forwarded-for': forwarded },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, { ...answer.headers, 'x-served-by': String(index) });
        answer.pipe(res);
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    served,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
