// A pipeline reply can be the transport failure of that one command (ioredis's commandTimeout inside a pipeline, a
// Cluster node that is down). Found by the soak: GET /me/sessions answered 500 when the session meta pipeline timed
// out, because the raw error was rethrown. Such replies now carry the typed error a single command gets (503).

import express from 'express';
import request from 'supertest';
import { StoreCommandError, StoreTimeoutError, StoreUnavailableError } from '../../plugin/core/errors';
import { ReplyError } from '../../plugin/connection/types';
import { createRedisKit, type RedisKit } from '../../plugin/index';
import { describeWithRedis } from '../support/require-redis';
import { standaloneUrl, uniquePrefix } from '../support/stores';

type Client = { pipeline: (commands: unknown[]) => Promise<unknown[]> };

describeWithRedis('pipeline replies that are transport failures', () => {
  const kits: RedisKit[] = [];
  const makeKit = () => {
    const kit = createRedisKit({ redis: standaloneUrl(), logger: false, prefix: uniquePrefix(), env: {} });
    kits.push(kit);
    return kit;
  };
  afterEach(() => Promise.all(kits.splice(0).map((k) => k.close())));

  test('become typed store errors; error replies from the server stay as they are', async () => {
    const kit = makeKit();
    await kit.ready();
    const client = (kit.store as unknown as { client: Client }).client;
    client.pipeline = async () => [
      new Error('Command timed out'),
      new Error('Connection is closed.'),
      new ReplyError('WRONGTYPE Operation against a key holding the wrong kind of value'),
      'OK',
    ];
    const replies = await (kit.store as unknown as Client).pipeline([['GET', 'a']]);
    expect(replies[0]).toBeInstanceOf(StoreTimeoutError);
    expect(replies[1]).toBeInstanceOf(StoreUnavailableError);
    expect(replies[2]).toBeInstanceOf(ReplyError);
    expect(replies[2]).not.toBeInstanceOf(StoreCommandError);
    expect(replies[3]).toBe('OK');
  });

  test('GET of a user’s sessions answers 503, not 500, when the meta pipeline times out', async () => {
    const kit = makeKit();
    const app = express();
    app.use(kit.session({ secret: 'pipeline-errors-secret-0123456789' }));
    app.post('/login', async (req, res) => {
      await (req.session as unknown as { login(id: string): Promise<void> }).login('u1');
      res.end();
    });
    app.get('/sessions', async (_req, res, next) => {
      try {
        res.json(await kit.sessions.list('u1'));
      } catch (error) {
        next(error);
      }
    });
    app.use((error: { status?: number }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(error.status ?? 500).end();
    });
    await request(app).post('/login').expect(200);
    expect((await request(app).get('/sessions')).status).toBe(200);
    const client = (kit.store as unknown as { client: Client }).client;
    client.pipeline = async (commands) => commands.map(() => new Error('Command timed out'));
    expect((await request(app).get('/sessions')).status).toBe(503);
  });
});
