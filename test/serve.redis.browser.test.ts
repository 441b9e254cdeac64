/**
 * A run that only Redis holds, on the page (issue 14 point 3): a trainer in another process logs
 * with `createLogger({redis})` (its run folder is elsewhere), `rowlog serve --redis URL` in
 * headless Chromium lists it as `redis:<run>` beside the folder's runs, draws its curve from the
 * stream, and then draws a row the trainer logs later, within a few seconds. The page is the
 * same code path as for a folder's run.
 *
 * Needs redis-server and Chromium at /usr/bin/chromium: without either it is a peer skip.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { openBrowser, startServe, waitFor } from './browser.js';
import { startChild } from './child.js';
import { ROOT, tmpdir } from './helpers.js';
import { needs, peer } from './peers.js';
import { removeRedis, startRedis } from './redis.js';

t.test('the page lists a Redis run, draws its curve and a live row', async (t) => {
  const CHROMIUM = peer('chromium');
  if (!needs(t, ['chromium', 'redis-server']) || CHROMIUM === undefined) return;
  const redis = await startRedis();
  t.teardown(() => removeRedis(redis));
  const root = tmpdir(t);
  const script = path.join(root, 'trainer.mjs');
  // 100 rows, flushed to Redis; then one more row per line on stdin; ends when stdin does.
  fs.writeFileSync(
    script,
    `import readline from 'node:readline';
import { createLogger } from ${JSON.stringify(path.join(ROOT, 'dist', 'lib', 'index.js'))};
const log = createLogger({ dir: process.argv[2], redis: process.argv[3], console: false, exitHooks: false, tensorboard: false });
for (let i = 0; i < 100; i++) log.row('train', { loss: 1 / (i + 1) });
await log.flush();
console.log('flushed');
let step = 100;
for await (const _ of readline.createInterface({ input: process.stdin })) {
  log.row('train', { loss: -1 });
  await log.flush();
  console.log('row ' + step++);
}
await log.close();
`,
  );
  const trainer = startChild(script, [path.join(root, 'elsewhere', 'exp-r'), redis.url]);
  t.teardown(() => trainer.proc.kill('SIGKILL'));
  await trainer.line(/^flushed$/);

  const runs = path.join(root, 'runs');
  fs.mkdirSync(runs);
  const { server, url, stderr: serverErr } = await startServe(t, runs, ['--redis', redis.url]);
  const { browser, page } = await openBrowser(t, CHROMIUM);
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));

  await page.goto(`${url}#run=redis:exp-r&table=train`, { waitUntil: 'load' });
  await waitFor(page, `window.rowlog.data.get('redis:exp-r')?.total === 100 && window.rowlog.charts.get('loss')?.u.data[0].length === 100`, 15_000);
  const curve = await page.evaluate<{ steps: number[]; loss: number[]; name: string | undefined; title: string | undefined }>(`(() => {
    const u = window.rowlog.charts.get('loss').u;
    const li = document.querySelector('li.run[data-run="redis:exp-r"]');
    return { steps: [...u.data[0]], loss: [...u.data[1]], name: li?.querySelector('.name')?.textContent, title: li?.querySelector('label')?.title };
  })()`);
  t.same(curve.steps, Array.from({ length: 100 }, (_, i) => i), 'the curve: steps 0..99 from the stream');
  t.same(curve.loss, Array.from({ length: 100 }, (_, i) => 1 / (i + 1)));
  t.equal(curve.name, 'redis:exp-r', 'listed as a Redis run');
  t.match(curve.title, /^redis:\/\/127\.0\.0\.1:\d+ rowlog:exp-r:\*$/, 'its label says where it lives');

  // The trainer logs one more row: the page draws it.
  trainer.proc.stdin?.write('\n');
  await trainer.line(/^row 100$/);
  await waitFor(page, `document.querySelector('.run-status[data-run="redis:exp-r"] .rows')?.textContent === '101 rows · step 100'`, 5000);
  const last = await page.evaluate<number | null | undefined>(`window.rowlog.charts.get('loss').u.data[1].at(-1)`);
  t.equal(last, -1, 'the live row is on the curve');
  t.same(problems, [], 'no console error');
  t.equal(serverErr(), '', 'no warning from the server');
  trainer.proc.stdin?.end();
  t.same(await trainer.exited, { code: 0, signal: null });
  page.removeAllListeners();
  await browser.close();
  server.kill('SIGTERM');
  t.equal(await new Promise((resolve) => server.once('exit', resolve)), 0);
});
