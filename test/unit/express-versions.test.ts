// Express 4 and 5 are both supported peers: the kit's routers mount and answer on each.

import express5 from 'express';
import express4 from 'express4';
import request from 'supertest';
import { createRedisKit } from '../../plugin/index';

describe.each([
  ['Express 4', express4 as unknown as typeof express5],
  ['Express 5', express5],
])('%s', (_name, express) => {
  test('mount() serves the health routes under the base path, and nothing else', async () => {
    const kit = createRedisKit({ store: 'memory', logger: false });
    const app = express();
    kit.mount(app, { basePath: '/kit' });
    try {
      expect((await request(app).get('/kit/health')).status).toBe(200);
      const ready = await request(app).get('/kit/health/redis');
      expect(ready.status).toBe(200);
      expect(JSON.parse(ready.text).status).toBe('pass');
      expect((await request(app).get('/health')).status).toBe(404);
    } finally {
      await kit.close();
    }
  });
});
