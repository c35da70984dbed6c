// The load generator of the harness's --http-blocks mode (lib/in-process-run.ts): a child process of its own, pinned
// to the CPU the servers do not use, that keeps open keep-alive connections to every server under test and, when
// asked, sends one server exactly `count` GET requests over them (at most one in flight per connection) and
// reports once every response has arrived. Connections stay open from block to block, so a block costs the server
// what serving requests costs, never a connect or a close.
//
// Raw sockets and a minimal response reader (lib/http-reader.ts) rather than an HTTP client library: the generator
// must keep up with a server on its own core, and needs to know only where a response ends.

import { connect, type Socket } from 'node:net';
import { readResponses } from './http-reader';

interface OpenMessage {
  open: { key: string; port: number; path: string; headers: Record<string, string>; connections: number };
}
interface BlockMessage {
  block: { key: string; count: number };
}

/** One keep-alive connection: sends a request, reads its response, reports the status (0: no usable response). */
class Connection {
  private pending: Buffer = Buffer.alloc(0);
  private waiting: ((status: number) => void) | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly request: Buffer,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.read(chunk));
    const fail = (): void => this.settle(0);
    socket.on('error', fail);
    socket.on('close', fail);
  }

  send(): Promise<number> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) {
        resolve(0);
        return;
      }
      this.waiting = resolve;
      this.socket.write(this.request);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private settle(status: number): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.(status);
  }

  private read(chunk: Buffer): void {
    const { statuses, rest, unreadable } = readResponses(
      this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]),
    );
    this.pending = rest;
    // One request is in flight per connection, so at most one response completes here.
    for (const status of statuses) this.settle(status);
    if (unreadable) {
      this.socket.destroy();
      this.settle(0);
    }
  }
}

const targets = new Map<string, Connection[]>();

async function open({ key, port, path, headers, connections }: OpenMessage['open']): Promise<void> {
  const lines = [`GET ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  const request = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  const list: Connection[] = [];
  try {
    for (let i = 0; i < connections; i++) {
      const socket = await new Promise<Socket>((resolve, reject) => {
        const s = connect(port, '127.0.0.1', () => resolve(s));
        s.once('error', reject);
      });
      list.push(new Connection(socket, request));
    }
  } catch (error) {
    // The connections already open would otherwise stay open, unused, for the rest of the run.
    for (const c of list) c.close();
    throw error;
  }
  for (const c of targets.get(key) ?? []) c.close();
  targets.set(key, list);
}

/** Sends `count` requests over the key's connections; settles with how many did not answer 2xx. */
async function block({ key, count }: BlockMessage['block']): Promise<number> {
  const list = targets.get(key);
  if (!list) throw new Error(`no connections open for ${key}`);
  let sent = 0;
  let failed = 0;
  const lane = async (c: Connection): Promise<void> => {
    while (sent < count) {
      sent++;
      const status = await c.send();
      if (status < 200 || status >= 300) failed++;
    }
  };
  await Promise.all(list.map(lane));
  return failed;
}

process.on('message', (message: unknown) => {
  if (message && typeof message === 'object' && 'open' in message) {
    const { open: spec } = message as OpenMessage;
    open(spec).then(
      () => process.send?.({ opened: {} }),
      (error: unknown) => process.send?.({ opened: { error: String(error) } }),
    );
  } else if (message && typeof message === 'object' && 'block' in message) {
    const { block: spec } = message as BlockMessage;
    block(spec).then(
      (failed) => process.send?.({ blockDone: { failed } }),
      (error: unknown) => {
        console.error(error);
        process.send?.({ blockDone: { failed: spec.count } });
      },
    );
  }
});
process.on('disconnect', () => process.exit(0));
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
process.send?.({ ready: true });
