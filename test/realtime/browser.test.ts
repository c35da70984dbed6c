// The demo page in headless Chromium: two pages of one room see each other's presence and messages, through the
// browser client, the SSE route and presence over HTTP. Needs Debian's chromium (.ci/run installs it).

import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { type Browser, chromium } from 'playwright-core';
import { demoRealtimeOptions, realtimeDemoRoutes } from '../../demo/realtime-routes';
import { createRedisKit } from '../../plugin/index';

const CHROMIUM = '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
if (!available && process.env.CI === 'true')
  throw new Error(`CI=true and ${CHROMIUM} is missing (apt-get install chromium)`);
const maybe = available ? test : test.skip;

// The predicates below run in the page. They are functions, not strings: Playwright runs a string predicate through
// eval() while it polls, which the demo page's Content-Security-Policy (default-src 'self') refuses, so a string
// failed whenever its condition was not already true at the first check (a CI run, 2026-11-27 23:06 UTC).
declare const document: any;

let browser: Browser | undefined;
afterAll(async () => {
  await browser?.close();
});

maybe(
  'two pages see each other in the room and exchange messages',
  async () => {
    const kit = createRedisKit({ store: 'memory', logger: false, env: {}, realtime: demoRealtimeOptions });
    const app = express();
    kit.mount(app);
    app.use(realtimeDemoRoutes());
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      });
      const ann = await (await browser.newContext()).newPage();
      const bob = await (await browser.newContext()).newPage();
      const errors: string[] = [];
      for (const page of [ann, bob]) page.on('pageerror', (e) => errors.push(e.message));
      await ann.goto(`${origin}/realtime?room=t1&name=ann`);
      await bob.goto(`${origin}/realtime?room=t1&name=bob`);
      for (const page of [ann, bob]) {
        await page.waitForSelector('#members li[data-member="ann"]', { timeout: 10_000 });
        await page.waitForSelector('#members li[data-member="bob"]', { timeout: 10_000 });
        await page.waitForFunction(() => document.getElementById('status')?.textContent === 'open');
      }
      await ann.fill('#text', 'hello from ann');
      await ann.click('#send button');
      await bob.waitForFunction(
        () => document.getElementById('messages')?.textContent?.includes('ann: hello from ann'),
        undefined,
        { timeout: 10_000 },
      );
      await bob.fill('#text', 'hi ann');
      await bob.press('#text', 'Enter');
      await ann.waitForFunction(
        () => document.getElementById('messages')?.textContent?.includes('bob: hi ann'),
        undefined,
        { timeout: 10_000 },
      );
      // Bob leaves: Ann's list drops him from the leave event.
      await bob.close();
      await ann.waitForFunction(() => !document.querySelector('#members li[data-member="bob"]'), undefined, {
        timeout: 10_000,
      });
      expect(await ann.locator('#members li').allTextContents()).toEqual(['ann (you)']);
      expect(errors).toEqual([]);
      expect(await kit.presence.list('demo:t1')).toEqual([{ member: 'ann', meta: expect.any(Object) }]);
    } finally {
      await browser?.close();
      browser = undefined;
      server.closeAllConnections();
      server.close();
      await kit.close();
    }
  },
  60_000,
);
