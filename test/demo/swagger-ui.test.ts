// Swagger UI at /docs in a real headless Chromium: it loads with every request outside 127.0.0.1 blocked (and none
// attempted), lists the demo's operations, and "Try it out" → "Execute" on the liveness route shows a 200.
// A screenshot goes to test/.tmp/ (git-ignored) for a human to look at.

import { existsSync, mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { createDemoApp, type DemoApp } from '../../demo/app';
import { createServer } from '../../plugin/index';
import { listSpecOperations } from '../support/openapi';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const OUT = join(__dirname, '..', '.tmp');

const run = existsSync(CHROMIUM) ? describe : describe.skip;
if (!existsSync(CHROMIUM) && process.env.CI === 'true') {
  throw new Error(`the Swagger UI test needs Chromium at ${CHROMIUM} (.ci/run installs it)`);
}

run('Swagger UI in headless Chromium', () => {
  let demo: DemoApp;
  let server: Server;
  let base: string;
  let browser: Browser;

  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    demo = createDemoApp({ store: 'memory', logger: false, env: {} }, { llmLatencyMs: [0, 0] });
    // As demo/server.ts serves it.
    server = createServer(demo.app).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // Generous: on a loaded 2-core machine Chromium alone can take many seconds to start.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], timeout: 60_000 });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => server?.close(resolve));
    await demo?.kit.close();
  });

  test('loads offline, lists the operations, and executes GET /api/v1/health with a 200', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1600 } });
    page.setDefaultTimeout(60_000);
    const outside: string[] = [];
    await page.route('**/*', (route) => {
      const url = new URL(route.request().url());
      if (url.hostname === '127.0.0.1' || url.protocol === 'data:') return route.continue();
      outside.push(route.request().url());
      return route.abort();
    });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));

    await page.goto(`${base}/docs/`);
    await page.locator('.opblock').first().waitFor();
    const summaries = await page.locator('.opblock-summary-path').allTextContents();
    const shown = new Set(summaries.map((s) => s.replace(/\u200b/g, '').trim()));
    for (const op of listSpecOperations()) expect(shown).toContain(op.path);
    expect(await page.locator('.opblock').count()).toBe(listSpecOperations().length);

    const health = page.locator('#operations-health-liveness');
    await health.locator('.opblock-summary').click();
    await health.getByRole('button', { name: 'Try it out' }).click();
    await health.getByRole('button', { name: 'Execute' }).click();
    const status = health.locator('.live-responses-table .response .response-col_status').first();
    await status.waitFor();
    expect((await status.textContent())?.trim()).toBe('200');
    const body = await health.locator('.live-responses-table .microlight').first().textContent();
    expect(body).toContain('"pass"');

    await health.scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(OUT, 'swagger-ui.png'), fullPage: false });
    expect(outside).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);
});
