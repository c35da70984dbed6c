// Requests through an app without a network: each request gets a real http.IncomingMessage and ServerResponse on a
// socket stand-in that accepts and drops every write, so Express, the middleware and Node's response code run as
// they do for a real request, while the kernel, the HTTP parser and the load generator (and their noise) are left
// out. The harness's --in-process mode (lib/in-process-run.ts) uses it to measure what a middleware adds to a
// request, in CPU time.

import { channel } from 'node:diagnostics_channel';
import { IncomingMessage, ServerResponse } from 'node:http';
import { Duplex } from 'node:stream';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

// What Node's HTTP server does for each response it finishes, and what a socket it accepted carries: the server.
// Request metrics listen on this channel (plugin/observability/finish.ts) when a request came through a server,
// and fall back to a 'finish' listener of their own otherwise; the stand-in behaves as a server so that they take
// the path they take in production.
const responseFinish = channel('http.server.response.finish');
const server = Object.freeze({ name: 'in-process stand-in for an http.Server' });

class NullSocket extends Duplex {
  readonly remoteAddress = '127.0.0.1';
  readonly remotePort = 40000;
  readonly remoteFamily = 'IPv4';
  readonly localAddress = '127.0.0.1';
  readonly localPort = 3000;
  readonly encrypted = false;
  readonly server = server;
  override _read(): void {}
  override _write(_chunk: unknown, _encoding: BufferEncoding, callback: () => void): void {
    callback();
  }
  setTimeout(): this {
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
}

/**
 * One GET through `handler`; settles with the response's status once it has finished, or with 0 when the response
 * was closed without finishing (counted as a failure, never waited for).
 */
function request(handler: Handler, path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const socket = new NullSocket();
    const req = new IncomingMessage(socket as never);
    req.method = 'GET';
    req.url = path;
    req.httpVersion = '1.1';
    req.httpVersionMajor = 1;
    req.httpVersionMinor = 1;
    req.headers = { host: '127.0.0.1:3000', ...headers };
    req.rawHeaders = Object.entries(req.headers).flatMap(([k, v]) => [k, String(v)]);
    req.complete = true;
    req.push(null);
    const res = new ServerResponse(req);
    res.assignSocket(socket as never);
    // Node's server listens for 'finish' on each response it creates, and publishes the event there.
    res.once('finish', () => {
      if (responseFinish.hasSubscribers) responseFinish.publish({ request: req, response: res, socket, server });
      res.detachSocket(socket as never);
      resolve(res.statusCode);
    });
    res.once('close', () => {
      if (!res.writableFinished) resolve(0);
    });
    try {
      handler(req, res);
    } catch {
      resolve(0);
    }
  });
}

export interface BlockResult {
  /** Responses that were not 2xx. */
  failed: number;
}

/**
 * Sends `count` requests through `handler`, `concurrency` at a time (a new one starts as each finishes, as on a
 * busy server with that many clients).
 */
export function runBlock(
  handler: Handler,
  path: string,
  headers: Record<string, string>,
  count: number,
  concurrency = 16,
): Promise<BlockResult> {
  if (!(count > 0) || !(concurrency > 0)) return Promise.resolve({ failed: 0 });
  return new Promise((resolve) => {
    let started = 0;
    let finished = 0;
    let failed = 0;
    const next = (): void => {
      if (started >= count) {
        if (finished >= count) resolve({ failed });
        return;
      }
      started++;
      request(handler, path, headers).then((status) => {
        if (status < 200 || status > 299) failed++;
        finished++;
        next();
      });
    };
    for (let i = 0; i < Math.min(concurrency, count); i++) next();
  });
}
