/**
 * `rowlog serve` in a real browser (headless Chromium through playwright-core): the page a user
 * opens on a run logged by rowlog's logger loads with no console error and no failed request,
 * draws every chart (pixels read back from each canvas), and shows a row that ANOTHER process
 * logs after the page loaded, live (the delay is printed; on a quiet machine well under 2 s): in the row count and last step a user reads, and in
 * the chart's data. A screenshot is saved to .tap/serve.png for a look.
 *
 * Chromium must be at /usr/bin/chromium (Debian's `chromium`): without it this test is a peer
 * skip (`skip: needs Debian chromium`), and a failure in CI, which installs it (test/peers.ts).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import t from 'tap';
import { openBrowser, startServe, waitFor } from './browser.js';
import { ROOT, tmpdir } from './helpers.js';
import { needs, peer } from './peers.js';

const WRITER = path.join(ROOT, 'test', 'fixtures', 'serve-writer.mjs');
const SCREENSHOT = path.join(ROOT, '.tap', 'serve.png');

/** Runs the fixture writer (another process, logging with the built package) to its end. */
function writer(...args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`serve-writer exited with ${code}`))));
  });
}

t.test('the page plots a logged run and shows a row logged by another process, live', async (t) => {
  const CHROMIUM = peer('chromium');
  if (!needs(t, 'chromium') || CHROMIUM === undefined) return;
  const root = tmpdir(t);
  const run = path.join(root, 'demo');
  await writer(path.join(root, 'base'), 'rows', '120');
  await writer(run, 'rows', '200'); // logged last: the page starts with it

  const { server, url } = await startServe(t, root);
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);

  const { browser, page } = await openBrowser(t, CHROMIUM, { width: 1280, height: 800 });

  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  const requested: string[] = [];
  page.on('request', (r) => requested.push(r.url()));

  await page.goto(url, { waitUntil: 'load' });
  // Browser-side code is passed as text: this project compiles without the DOM types.
  // The run is picked by itself (the one logged last), its table too: 3 columns, 3 charts.
  await waitFor(page, `document.querySelectorAll('.chart canvas').length === 3 && window.rowlog.data.get('demo')?.total === 200`, 15_000);
  const texts = await page.evaluate<{ columns: string[]; rows: string; live: string }>(`({
    columns: [...document.querySelectorAll('.chart h3')].map((h) => h.textContent),
    rows: document.querySelector('.run-status[data-run="demo"] .rows')?.textContent,
    live: document.getElementById('live')?.dataset.state,
  })`);
  t.same(texts.columns, ['acc', 'loss', 'lr'], 'one chart per numeric column');
  t.equal(texts.rows, '200 rows · step 199');
  t.equal(texts.live, 'live', 'the live indicator says so');

  // Every chart has drawn its line: count coloured (not grey, not transparent) pixels.
  await page.evaluate(`new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))`);
  const inked = await page.evaluate<number[]>(`[...document.querySelectorAll('.chart canvas')].map((c) => {
    const { data } = c.getContext('2d').getImageData(0, 0, c.width, c.height);
    let n = 0;
    for (let i = 0; i < data.length; i += 4) {
      const r = data[i], g = data[i + 1], b = data[i + 2], a = data[i + 3];
      if (a > 64 && Math.max(r, g, b) - Math.min(r, g, b) > 60) n++;
    }
    return n;
  })`);
  t.equal(inked.length, 3);
  for (const n of inked) t.ok(n > 300, `a chart drew ${n} coloured pixels`);

  // Another process logs a row with a step of its own; the page shows it (under 2 s on a quiet machine).
  await writer(run, 'row', '250', '0.125');
  const logged = Date.now();
  await waitFor(page, `document.querySelector('.run-status[data-run="demo"] .rows')?.textContent === '201 rows · step 250'`, 2000);
  t.comment(`the row was on the page ${Date.now() - logged} ms after it was logged`);
  const chart = await page.evaluate(`(() => {
    const u = window.rowlog.charts.get('loss').u;
    return { length: u.data[0].length, lastStep: u.data[0].at(-1), lastLoss: u.data[1].at(-1), header: document.querySelector('.chart[data-column="loss"] .value')?.textContent };
  })()`);
  t.same(chart, { length: 201, lastStep: 250, lastLoss: 0.125, header: '0.125' }, "the chart's data has the new row");

  t.same(problems.splice(0), [], 'no console error, no failed request while loading and following');

  // Overlay: tick the other run; each chart gets its raw and smoothed series, in its colour.
  await page.locator('#runs li[data-run="base"] input').check();
  await waitFor(page, `window.rowlog.data.get('base')?.total === 120 && window.rowlog.data.get('demo')?.total === 201`, 5000);
  await page.evaluate(`new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))`);
  const overlay = await page.evaluate<{ series: number; statuses: string[]; xs: number }>(`({
    series: window.rowlog.charts.get('loss').u.series.length,
    statuses: [...document.querySelectorAll('.run-status')].map((e) => e.textContent),
    xs: window.rowlog.charts.get('loss').u.data[0].length,
  })`);
  t.same(overlay, { series: 5, statuses: ['demo201 rows · step 250', 'base120 rows · step 119'], xs: 201 }, 'two runs on one step axis');
  // The filter: substring or regex on column names.
  await page.locator('#filter').fill('^l');
  await waitFor(page, `document.querySelectorAll('.chart').length === 2`, 2000);
  t.equal(await page.evaluate<string>(`document.querySelector('.status .columns').textContent`), '2 of 3 columns match');
  await page.locator('#filter').fill('');
  await waitFor(page, `document.querySelectorAll('.chart').length === 3`, 2000);
  // Smoothing 0: the smoothed line is the raw one; 0.9: much smoother (sum of |second differences|).
  const data = `window.rowlog.charts.get('loss').u.data`;
  await page.locator('#smoothing').fill('0');
  await page.evaluate(`new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))`);
  t.ok(await page.evaluate<boolean>(`${data}[2].every((v, i) => v === ${data}[1][i])`), 'smoothing 0: smoothed = raw');
  await page.locator('#smoothing').fill('0.9');
  await page.evaluate(`new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))`);
  const [raw, smooth] = await page.evaluate<number[]>(`[1, 2].map((k) => {
    const ys = ${data}[k].filter((v) => v != null);
    let s = 0;
    for (let i = 2; i < ys.length; i++) s += Math.abs(ys[i] - 2 * ys[i - 1] + ys[i - 2]);
    return s;
  })`);
  t.ok((smooth as number) < (raw as number) / 2, `smoothing 0.9: roughness ${smooth?.toFixed(3)} < ${raw?.toFixed(3)} / 2`);
  t.equal(await page.locator('#smoothing-value').textContent(), '0.90');
  t.match(page.url(), /#run=demo&run=base&table=train&smooth=0\.9$/, 'the settings are kept in the address');

  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  t.comment(`screenshot: ${SCREENSHOT}`);
  // Changing the runs replaces the page's event stream: the old one is aborted, nothing else fails.
  t.same(
    problems.filter((p) => !/^request failed: \S+\/api\/events\?\S+ net::ERR_ABORTED$/.test(p)),
    [],
    'no console error, no failed request while using the controls',
  );
  t.same(
    requested.filter((u) => !u.startsWith(url)),
    [],
    'nothing requested from anywhere but this server',
  );
  page.removeAllListeners();
  await browser.close();
  server.kill('SIGTERM');
  t.equal(await new Promise((resolve) => server.once('exit', resolve)), 0, 'rowlog serve stopped cleanly');
});
