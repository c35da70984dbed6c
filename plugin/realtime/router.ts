// The realtime HTTP routes, mounted under the kit's base path: Server-Sent Events per channel with heartbeats,
// Last-Event-ID replay and a bound on each client's buffer; publishing; and presence for browsers. Every route
// asks the `authorize` hook first.

import express, { type NextFunction, type Request, type Response, Router } from 'express';
import { KitError, StoreUnavailableError } from '../core/errors.js';
import { RealtimeInputError } from './errors.js';
import type { Entry } from './backend.js';
import type { Listener } from './hub.js';
import type { RealtimeAction } from './options.js';
import { assertChannel, parseEventId, type RealtimeService } from './service.js';

function sendError(res: Response, error: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const status = error instanceof KitError ? error.status : 500;
  const code = error instanceof KitError ? error.code : 'ERR_KIT_INTERNAL';
  const message = error instanceof KitError ? error.message : 'internal error';
  if (error instanceof StoreUnavailableError) res.setHeader('Retry-After', '1');
  // An SSE request that failed before its stream began already carries the event-stream headers.
  res.removeHeader('Content-Type');
  res.removeHeader('X-Accel-Buffering');
  res.status(status).setHeader('Cache-Control', 'no-store');
  res.json({ error: { code, message } });
}

class Forbidden extends KitError {
  constructor(action: RealtimeAction) {
    super('ERR_KIT_REALTIME_FORBIDDEN', `not allowed to ${action} on this channel`, { status: 403 });
  }
}

/** One SSE connection. Writes go straight to the socket; a client that cannot keep up is cut off. */
class SseClient implements Listener {
  cursor = 0;
  pending: Entry[] | null = null;
  ended = false;

  constructor(
    private readonly res: Response,
    private readonly maxBuffer: number,
    private readonly onDrop: () => void,
  ) {}

  write(chunk: string): void {
    if (this.ended) return;
    this.res.write(chunk);
    // writableLength counts what the response and its socket still hold: a reader that stopped reading makes it
    // grow without bound, so past the limit the connection is closed (the client reconnects and replays).
    if (this.res.writableLength > this.maxBuffer) {
      this.ended = true;
      this.onDrop();
      this.res.destroy();
    }
  }

  /** Ends the stream (the kit is closing); the client reconnects elsewhere or later. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.res.end();
  }

  deliver(_entry: Entry, chunk: string): void {
    this.write(chunk);
  }

  gap(after: number, firstHeld: number): void {
    const data = JSON.stringify({ type: 'realtime.gap', data: { after: String(after), firstHeld: String(firstHeld) } });
    this.write(`data: ${data}\n\n`);
  }
}

export function realtimeRouter(service: RealtimeService): Router {
  const { config, hub, presence, context } = service;
  const router = Router();
  const clients = new Set<SseClient>();
  let heartbeat: NodeJS.Timeout | undefined;
  const json = express.json({ limit: config.maxEventBytes + 1024, strict: false });

  service.closers.add(() => {
    clearInterval(heartbeat);
    for (const client of clients) client.end();
  });

  const authorize = async (req: Request, channel: string, action: RealtimeAction): Promise<void> => {
    assertChannel(channel);
    if (!config.authorize) {
      context.logger.warnOnce(
        'ERR_KIT_REALTIME_NO_AUTHORIZE',
        'realtime: no authorize hook configured, so every realtime HTTP request is refused (403). ' +
          'Pass createRedisKit({ realtime: { authorize: (req, { channel, action }) => ... } }).',
      );
      throw new Forbidden(action);
    }
    if ((await config.authorize(req, { channel, action })) !== true) throw new Forbidden(action);
  };

  const parseBody = (req: Request, res: Response): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      json(req, res, (error?: unknown) => {
        if (error) {
          const status = (error as { status?: number }).status;
          reject(
            new RealtimeInputError(
              status === 413 ? `body larger than ${config.maxEventBytes} bytes` : 'body: expected JSON',
              status === 413 ? 413 : 400,
            ),
          );
          return;
        }
        const body = req.body as unknown;
        if (body === undefined || body === null) return resolve({});
        if (typeof body !== 'object' || Array.isArray(body)) {
          return reject(new RealtimeInputError('body: expected a JSON object'));
        }
        resolve(body as Record<string, unknown>);
      });
    });

  const memberOf = (req: Request, body: Record<string, unknown>): string => {
    const member = config.identify ? config.identify(req) : (body.member ?? req.query.member);
    if (typeof member !== 'string') {
      throw new RealtimeInputError(
        config.identify ? 'presence: this request has no identity' : 'presence: body.member is required',
        config.identify ? 401 : 400,
      );
    }
    return member;
  };

  const route =
    (handler: (req: Request, res: Response) => Promise<void>) => (req: Request, res: Response, _next: NextFunction) => {
      handler(req, res).catch((error: unknown) => {
        if (!(error instanceof KitError)) context.logger.error({ err: error }, 'realtime: a request failed');
        sendError(res, error);
      });
    };

  router.get(
    '/realtime/:channel',
    route(async (req, res) => {
      const channel = String(req.params.channel);
      await authorize(req, channel, 'subscribe');
      if (service.isClosed || service.clients >= config.maxClients) {
        res.setHeader('Retry-After', '5');
        throw new KitError('ERR_KIT_REALTIME_BUSY', 'too many realtime clients on this instance', { status: 503 });
      }
      const after = parseEventId(req.get('last-event-id') ?? req.query.lastEventId);
      const client = new SseClient(res, config.maxClientBuffer, () => {
        service.dropped++;
      });
      service.clients++;
      let gone = false;
      const cleanup = () => {
        if (gone) return;
        gone = true;
        client.ended = true;
        service.clients--;
        clients.delete(client);
        if (clients.size === 0) {
          clearInterval(heartbeat);
          heartbeat = undefined;
        }
        void hub.detach(channel, client);
      };
      res.on('close', cleanup);
      res.status(200);
      res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
      res.setHeader('Cache-Control', 'no-store, no-transform');
      res.setHeader('Connection', 'keep-alive');
      res.setHeader('X-Accel-Buffering', 'no'); // nginx: do not hold events back
      try {
        await hub.attach(channel, client, after);
      } catch (error) {
        cleanup();
        throw error;
      }
      if (gone) return;
      // The retry hint is for EventSource; the kit's own client has its own backoff.
      if (!res.headersSent) res.flushHeaders();
      client.write('retry: 2000\n: connected\n\n');
      clients.add(client);
      if (!heartbeat) {
        heartbeat = setInterval(() => {
          for (const c of clients) c.write(': heartbeat\n\n');
        }, config.heartbeatMs);
        heartbeat.unref();
      }
    }),
  );

  router.post(
    '/realtime/:channel',
    route(async (req, res) => {
      const channel = String(req.params.channel);
      await authorize(req, channel, 'publish');
      const body = await parseBody(req, res);
      for (const key of Object.keys(body)) {
        if (key !== 'type' && key !== 'data') throw new RealtimeInputError(`body: unknown field '${key}' (type, data)`);
      }
      if (!('data' in body)) throw new RealtimeInputError('body: data is required');
      const type = body.type ?? 'message';
      if (typeof type === 'string' && type.startsWith('presence.')) {
        throw new RealtimeInputError("type: 'presence.*' is reserved for the server");
      }
      const { id } = await service.publish(channel, { type: type as string, data: body.data });
      res.status(201).setHeader('Cache-Control', 'no-store');
      res.json({ id });
    }),
  );

  // The presence routes share their prologue (authorise) and epilogue (an uncacheable JSON answer).
  const presenceRoute = (handle: (req: Request, res: Response, channel: string) => Promise<object>) =>
    route(async (req, res) => {
      const channel = String(req.params.channel);
      await authorize(req, channel, 'presence');
      const answer = await handle(req, res, channel);
      res.setHeader('Cache-Control', 'no-store');
      res.json(answer);
    });

  router.get(
    '/realtime/:channel/presence',
    presenceRoute(async (_req, _res, channel) => ({ members: await presence.list(channel) })),
  );

  router.post(
    '/realtime/:channel/presence',
    presenceRoute(async (req, res, channel) => {
      const body = await parseBody(req, res);
      const member = memberOf(req, body);
      return { member, ...(await presence.heartbeat(channel, member, body.meta)) };
    }),
  );

  router.delete(
    '/realtime/:channel/presence',
    presenceRoute(async (req, res, channel) => {
      const body = await parseBody(req, res);
      const member = memberOf(req, body);
      return { member, left: await presence.leave(channel, member) };
    }),
  );

  return router;
}
