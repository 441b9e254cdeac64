/**
 * Headless Chromium for the page's tests (test/serve*.browser.test.ts), through playwright-core:
 * a browser on a fresh profile, closed and removed at the test's end, and a poll of a page
 * expression.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import type { Test } from 'tap';
import { patient } from './wait.js';

/** Chromium at `executablePath` on a fresh profile, headless; closed and its profile removed at `t`'s end. */
export async function openBrowser(t: Test, executablePath: string, viewport?: { width: number; height: number }): Promise<{ browser: BrowserContext; page: Page }> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'rowlog-chromium-'));
  t.teardown(() => fs.rmSync(profile, { recursive: true, force: true }));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    ...(viewport === undefined ? {} : { viewport }),
    timeout: patient(60_000),
  });
  t.teardown(() => browser.close());
  return { browser, page: browser.pages()[0] ?? (await browser.newPage()) };
}

/**
 * Polls the page expression `expr` until it is true; rejects after `patient(ms)` (`ms` is what
 * it takes at most on a quiet machine: a ceiling, not a latency assertion). (Playwright's own
 * waitForFunction evaluates a text predicate with eval inside the page, which the page's CSP
 * rightly forbids; page.evaluate goes through the debugger protocol instead.)
 */
export async function waitFor(page: Page, expr: string, ms: number): Promise<void> {
  const deadline = Date.now() + patient(ms);
  while (!(await page.evaluate<boolean>(expr))) {
    if (Date.now() > deadline) throw new Error(`not true within ${patient(ms)} ms: ${expr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
