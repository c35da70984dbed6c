// The lock demo routes: one generation however many clients ask, 409 on request, fencing on document writes.

import express from 'express';
import request from 'supertest';
import { locksDemoRoutes } from '../../demo/locks-routes';
import { describeForEachStore } from '../support/stores';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeForEachStore(
  'locks demo routes',
  ({ makeKit }) => {
    const appWith = (generate?: (id: string) => Promise<unknown>) => {
      const kit = makeKit();
      const app = express();
      app.use('/api/v1', locksDemoRoutes(kit, { generate }));
      return { app, kit };
    };

    test('POST /reports/:id/generate runs the generation once for 10 simultaneous clients', async () => {
      let calls = 0;
      const { app } = appWith(async (id) => {
        calls++;
        await sleep(150);
        return { id };
      });
      const responses = await Promise.all(
        Array.from({ length: 10 }, () => request(app).post('/api/v1/reports/q3/generate')),
      );
      expect(responses.map((r) => r.status)).toEqual(Array(10).fill(200));
      expect(calls).toBe(1);
      for (const r of responses) expect(r.body).toMatchObject({ id: 'q3', runs: 1, data: { id: 'q3' } });
      expect(responses.filter((r) => r.body.cached === false)).toHaveLength(1);
      // Later requests are served from the stored report.
      const later = await request(app).post('/api/v1/reports/q3/generate');
      expect(later.body).toMatchObject({ runs: 1, cached: true });
    });

    test('?wait=false answers 409 while another client generates', async () => {
      const { app } = appWith(async () => {
        await sleep(300);
        return 'ok';
      });
      const first = request(app)
        .post('/api/v1/reports/r1/generate')
        .then((r) => r);
      await sleep(100);
      const busy = await request(app).post('/api/v1/reports/r1/generate?wait=false');
      expect(busy.status).toBe(409);
      expect(busy.headers['retry-after']).toBe('1');
      expect((await first).body).toMatchObject({ runs: 1 });
      const after = await request(app).post('/api/v1/reports/r1/generate?wait=false');
      expect(after.status).toBe(200);
      expect(after.body.runs).toBe(1);
    });

    test('a bad report id is a 400', async () => {
      const { app } = appWith();
      const res = await request(app).post(`/api/v1/reports/${'x'.repeat(100)}/generate`);
      expect(res.status).toBe(400);
    });

    test('PUT /documents/:id accepts only a newer fencing token: a paused holder is turned away', async () => {
      const { app, kit } = appWith();
      const a = await kit.locks.acquire('doc:d1', { ttl: 150 });
      await sleep(300); // A stalls past its lease
      const b = await kit.locks.acquire('doc:d1', { waitTimeout: '2 s' });
      const okB = await request(app)
        .put('/api/v1/documents/d1')
        .set('Fencing-Token', String(b.fencingToken))
        .send({ content: 'from B' });
      expect(okB.status).toBe(200);
      const lateA = await request(app)
        .put('/api/v1/documents/d1')
        .set('Fencing-Token', String(a.fencingToken))
        .send({ content: 'from A, late' });
      expect(lateA.status).toBe(409);
      expect(lateA.body).toEqual({ error: 'stale fencing token', lastFencingToken: b.fencingToken });
      const doc = await request(app).get('/api/v1/documents/d1');
      expect(doc.body).toMatchObject({ content: 'from B', fencingToken: b.fencingToken });
      await b.release();
    });

    test('PUT /documents/:id rejects a missing or malformed token and non-string content', async () => {
      const { app } = appWith();
      expect((await request(app).put('/api/v1/documents/d2').send({ content: 'x' })).status).toBe(400);
      expect(
        (await request(app).put('/api/v1/documents/d2').set('Fencing-Token', 'abc').send({ content: 'x' })).status,
      ).toBe(400);
      expect((await request(app).put('/api/v1/documents/d2').send({ content: 5, fencingToken: 3 })).status).toBe(400);
      expect((await request(app).put('/api/v1/documents/d2').send({ content: 'x', fencingToken: 3 })).status).toBe(200);
      expect((await request(app).put('/api/v1/documents/d2').send({ content: 'y', fencingToken: 3 })).status).toBe(409);
      expect((await request(app).get('/api/v1/documents/nope')).status).toBe(404);
    });
  },
  { tiers: ['memory', 'standalone'] },
);
