/**
 * Headless Chromium for the page's tests (test/serve*.browser.test.ts), through playwright-core:
 * a browser on a fresh profile, closed and removed at the test's end, a poll of a page
 * expression, and the `rowlog serve` the page is opened on.
 */
import type { ChildProcessByStdio } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import type { Readable } from 'node:stream';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import type { Test } from 'tap';
import { spawnCli } from './cli.js';
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

/** `rowlog serve DIR --port 0 [ARGS]` in the background (killed at `t`'s end): the process, its page address, its stderr so far. */
export async function startServe(t: Test, dir: string, args: string[] = []): Promise<{ server: ChildProcessByStdio<null, Readable, Readable>; url: string; stderr: () => string }> {
  const server = spawnCli(['serve', dir, '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => server.kill('SIGKILL'));
  let err = '';
  server.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const url = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: server.stdout }).once('line', (line) => resolve(line.replace(/^rowlog serve: /, '')));
    server.once('exit', () => reject(new Error(`rowlog serve exited: ${err}`)));
  });
  return { server, url, stderr: () => err };
}

/** Collects what goes wrong on `page` from now on: page errors and console errors, as lines. */
export function pageProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  return problems;
}
