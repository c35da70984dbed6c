// The dashboard in a real headless Chromium: refuses without the token, loads with it (from the URL fragment, which
// is then removed), and after traffic (real rate limit, response cache, locks and queue) its tiles and charts show
// non-zero figures. Screenshots are written to test/.tmp/ (git-ignored) for a human to look at.

import { existsSync, mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import express from 'express';
import { type Browser, chromium, type Page } from 'playwright-core';
import { createRedisKit, type RedisKit } from '../../plugin/index';
import { standaloneUrl } from '../support/stores';

// Browser globals for the functions that run in the page (the test tsconfig has no DOM lib).
declare const document: any;

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const TOKEN = 'dashboard-admin-token-0123456789';
const OUT = join(__dirname, '..', '.tmp');

const run = existsSync(CHROMIUM) && standaloneUrl() ? describe : describe.skip;
if (!existsSync(CHROMIUM) && process.env.CI === 'true') {
  throw new Error(`the dashboard test needs Chromium at ${CHROMIUM} (.ci/run installs it)`);
}

async function newPage(browser: Browser, options: Parameters<Browser['newPage']>[0] = {}): Promise<Page> {
  const page = await browser.newPage(options);
  page.setDefaultTimeout(60_000);
  return page;
}

run('dashboard in headless Chromium', () => {
  let kit: RedisKit;
  let server: Server;
  let base: string;
  let browser: Browser;
  let traffic: NodeJS.Timeout | undefined;

  beforeAll(async () => {
    // Generous bounds: on a loaded 2-core machine Chromium alone can take many seconds to start and render.
    mkdirSync(OUT, { recursive: true });
    kit = createRedisKit({
      redis: standaloneUrl() as string,
      prefix: 'dash',
      env: {},
      logger: false,
      admin: { token: TOKEN },
    });
    const app = express();
    app.use(kit.metrics());
    app.use(kit.usage());
    // The real features, so every chart is fed the way an app feeds it: a rate limit that refuses part of the
    // traffic, a response cache, contended locks and a queue that fills faster than its worker drains it.
    const limit = kit.rateLimit({ name: 'api', limit: 20, window: '1 s', keyBy: () => 'all' });
    app.get('/api/items/:id', limit, async (req, res) => {
      const n = await kit.store.incrBy(kit.store.keys.key('demo', String(req.params.id)), 1, 60_000);
      res.json(n);
    });
    app.get('/api/cached/:id', kit.cache({ ttl: '2 s' }), async (req, res) => {
      res.json({ v: await kit.store.get(kit.store.keys.key('demo', String(req.params.id))) });
    });
    const mail = kit.queue('mail');
    // A job every 2 s and 3 s of work each: from the first job on, one is always active and the rest wait.
    mail.process(
      async () => {
        await new Promise((r) => setTimeout(r, 3000));
      },
      { concurrency: 1 },
    );
    kit.mount(app, { basePath: '/kit' });
    await kit.ready();
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    let i = 0;
    traffic = setInterval(() => {
      for (let k = 0; k < 10; k++) {
        i++;
        void fetch(`${base}/api/${i % 3 ? 'items' : 'cached'}/${i % 50}`).catch(() => undefined);
      }
      // Two holders of one lock at a time: the second waits for the first.
      for (let k = 0; k < 2; k++) {
        void kit.locks
          .withLock('report', () => new Promise((r) => setTimeout(r, 5 + (i % 20))), { waitTimeout: '2 s' })
          .catch(() => undefined);
      }
      if (i % 20 === 0) void mail.add({ i }).catch(() => undefined);
    }, 100);
    traffic.unref();

    browser = await chromium.launch({
      timeout: 60_000,
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  }, 90_000);

  afterAll(async () => {
    clearInterval(traffic);
    await browser?.close();
    await new Promise((r) => server?.close(r));
    await kit?.close();
  });

  const nonBlankCanvas = (page: Page, id: string) =>
    page.evaluate((canvasId) => {
      const c = document.getElementById(canvasId);
      if (!c || c.hidden || !c.width) return 0;
      const data = c.getContext('2d')?.getImageData(0, 0, c.width, c.height).data ?? [];
      let painted = 0;
      for (let p = 3; p < data.length; p += 4) if ((data[p] as number) > 0) painted++;
      return painted;
    }, id);

  test('refuses without the token, and with a wrong one', async () => {
    const page = await newPage(browser);
    await page.goto(`${base}/kit/admin/dashboard`);
    await page.waitForSelector('#login:not([hidden])');
    expect(await page.isHidden('#app')).toBe(true);
    await page.fill('#token', 'not-the-token-at-all');
    await page.click('#login button');
    await page.waitForFunction(() => /Refused/.test(document.getElementById('login-error')?.textContent ?? ''));
    expect(await page.isHidden('#app')).toBe(true);
    expect(await page.textContent('#t-requests')).toBe('–');
    await page.close();
  }, 90_000);

  test('loads with the token, keeps it out of the URL, and shows live non-zero figures', async () => {
    const page = await newPage(browser, { viewport: { width: 1440, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const offsite: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(base)) offsite.push(r.url());
    });
    await page.goto(`${base}/kit/admin/dashboard#token=${TOKEN}`);
    await page.waitForSelector('#app:not([hidden])');
    expect(page.url()).toBe(`${base}/kit/admin/dashboard`);
    // Rates need two samples (one poll every 3 s).
    await page.waitForFunction(
      () => {
        const v = (id: string) => Number.parseFloat(document.getElementById(id)?.textContent ?? '') || 0;
        return v('t-rps') > 0 && v('t-requests') > 0 && v('t-p99') > 0 && v('t-ops') > 0;
      },
      undefined,
      { timeout: 60_000 },
    );
    // Let a few points accumulate so the lines are lines.
    await page.waitForTimeout(9_500);
    for (const id of [
      'c-throughput',
      'c-latency',
      'c-store',
      'c-hits',
      'c-ratelimit',
      'c-locks',
      'c-queue',
      'c-memory',
    ]) {
      expect([id, await nonBlankCanvas(page, id)]).toEqual([id, expect.any(Number)]);
      expect(await nonBlankCanvas(page, id)).toBeGreaterThan(500);
    }
    const now = await page.$$eval('[data-chart-value]', (els) => els.map((e) => e.textContent ?? ''));
    expect(now.filter((t) => Number.parseFloat(t) > 0).length).toBeGreaterThanOrEqual(5);
    expect(await page.textContent('#t-circuit')).toBe('closed');
    // The figures behind the feature charts come from the real features, and they moved.
    const res = await fetch(`${base}/kit/admin/redis-metrics`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    const report = (await res.json()) as { kit: Record<string, any> };
    expect(report.kit.rateLimit.blocked).toBeGreaterThan(0);
    expect(report.kit.cache.hitRatio).toBeGreaterThan(0);
    expect(report.kit.locks.contended).toBeGreaterThan(0);
    expect(report.kit.locks.waitMs.p99).toBeGreaterThan(0);
    expect(report.kit.queue.waiting + report.kit.queue.active).toBeGreaterThan(0);
    expect(await page.textContent('#routes')).toContain('/api/items/:id');
    await page.screenshot({ path: join(OUT, 'dashboard.png'), fullPage: true });

    // Same tab after a reload: the token was kept in sessionStorage.
    await page.reload();
    await page.waitForSelector('#app:not([hidden])');
    expect(errors).toEqual([]);
    expect(offsite).toEqual([]);
    await page.close();
  }, 120_000);

  test('readable on a phone', async () => {
    const page = await newPage(browser, { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 });
    // With a trailing slash: the page finds its API next to it all the same.
    await page.goto(`${base}/kit/admin/dashboard/#token=${TOKEN}`);
    await page.waitForSelector('#app:not([hidden])');
    await page.waitForFunction(() => Number.parseFloat(document.getElementById('t-requests')?.textContent ?? '') > 0);
    await page.waitForTimeout(6_500);
    const overflow = await page.evaluate(
      () => document.documentElement.scrollWidth - (globalThis as unknown as { innerWidth: number }).innerWidth,
    );
    expect(overflow).toBeLessThanOrEqual(0);
    await page.screenshot({ path: join(OUT, 'dashboard-phone.png'), fullPage: true });
    await page.close();
  }, 90_000);
});
