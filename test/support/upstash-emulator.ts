// A small HTTP server speaking Upstash's REST protocol in front of a real Redis, so that the real @upstash/redis
// client is exercised against a real server: single commands (POST / with a JSON array), /pipeline and
// /multi-exec, bearer-token auth, and the base64 response encoding the client asks for with `Upstash-Encoding`.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Redis from 'ioredis';

export interface UpstashEmulator {
  url: string;
  token: string;
  /** Requests served, by path: lets tests count round trips. */
  requests: { single: number; pipeline: number; multiExec: number };
  close(): Promise<void>;
}

type Reply = { result: unknown } | { error: string };

function encode(value: unknown, topLevel: boolean): unknown {
  // Upstash leaves the status reply OK readable; every other string is base64 when the client asks for it.
  if (typeof value === 'string')
    return topLevel && value === 'OK' ? value : Buffer.from(value, 'utf8').toString('base64');
  if (Array.isArray(value)) return value.map((v) => encode(v, false));
  return value;
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

export async function startUpstashEmulator(redisUrl: string, token = 'test-token'): Promise<UpstashEmulator> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  const requests = { single: 0, pipeline: 0, multiExec: 0 };

  const run = async (command: unknown): Promise<Reply> => {
    if (!Array.isArray(command) || command.length === 0) return { error: 'ERR malformed command' };
    const [name, ...args] = command.map((x) => String(x));
    try {
      return { result: await redis.call(name as string, ...args) };
    } catch (error) {
      return { error: (error as Error).message };
    }
  };

  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };

  const server: Server = createServer((req, res) => {
    void (async () => {
      if (req.method !== 'POST') return send(res, 405, { error: 'only POST' });
      if (req.headers.authorization !== `Bearer ${token}`) return send(res, 401, { error: 'Unauthorized' });
      const base64 = String(req.headers['upstash-encoding'] ?? '').toLowerCase() === 'base64';
      const out = (reply: Reply): Reply =>
        'result' in reply && base64 ? { result: encode(reply.result, true) } : reply;
      let body: unknown;
      try {
        body = await readBody(req);
      } catch {
        return send(res, 400, { error: 'ERR invalid JSON body' });
      }
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/pipeline' || path === '/multi-exec') {
        if (!Array.isArray(body)) return send(res, 400, { error: 'ERR expected a list of commands' });
        if (path === '/pipeline') {
          requests.pipeline++;
          const replies = [];
          for (const command of body) replies.push(out(await run(command)));
          return send(res, 200, replies);
        }
        requests.multiExec++;
        const multi = redis.multi(body.map((c: unknown[]) => c.map(String)));
        const results = (await multi.exec()) ?? [];
        return send(
          res,
          200,
          results.map(([error, value]) => out(error ? { error: error.message } : { result: value })),
        );
      }
      requests.single++;
      const reply = await run(body);
      // Upstash answers an error reply with HTTP 400 and {"error": "..."}.
      return send(res, 'error' in reply ? 400 : 200, out(reply));
    })().catch((error: unknown) => send(res, 500, { error: String(error) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    token,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      redis.disconnect();
    },
  };
}
