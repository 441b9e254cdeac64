/**
 * A resumed run on the page (issue 13 §1): `rowlog serve` in headless Chromium draws a run
 * resumed with `resumeFrom` as ONE curve — the parent's steps first, the child's winning where
 * it redid steps — and follows the child's new rows live. The page itself is unchanged: the
 * server's snapshot reads the chain (lib/serve/snapshot.ts).
 *
 * Chromium must be at /usr/bin/chromium (Debian's `chromium`): without it this test is a peer skip.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { openBrowser, startServe, waitFor } from './browser.js';
import { ROOT, tmpdir } from './helpers.js';
import { needs, peer } from './peers.js';

/** Logs `train` rows at steps FROM.. (COUNT of them) into DIR, resumed from PARENT when given, in another process. */
function writer(script: string, dir: string, parent: string, from: number, count: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, dir, parent, String(from), String(count)], { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`writer exited with ${code}`))));
  });
}

t.test('the page draws a resumed run as one curve and follows the child', async (t) => {
  const CHROMIUM = peer('chromium');
  if (!needs(t, 'chromium') || CHROMIUM === undefined) return;
  const root = tmpdir(t);
  const script = path.join(root, 'writer.mjs');
  fs.writeFileSync(
    script,
    `import { createLogger } from ${JSON.stringify(path.join(ROOT, 'dist', 'lib', 'index.js'))};
const [dir, parent, from, count] = process.argv.slice(2);
const log = createLogger({ dir, console: false, exitHooks: false, ...(parent ? { resumeFrom: parent } : {}) });
for (let i = 0; i < Number(count); i++) log.row('train', { loss: parent ? -1 : 1 }, { step: Number(from) + i });
await log.close();
`,
  );
  const runs = path.join(root, 'runs');
  await writer(script, path.join(runs, 'exp1'), '', 0, 120);
  await writer(script, path.join(runs, 'exp1-b'), path.join(runs, 'exp1'), 100, 50); // redoes 100..119

  const { server, url, stderr: serverErr } = await startServe(t, runs);

  const { browser, page } = await openBrowser(t, CHROMIUM);
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));

  await page.goto(`${url}#run=exp1-b&table=train`, { waitUntil: 'load' });
  await waitFor(page, `window.rowlog.data.get('exp1-b')?.total === 150 && window.rowlog.charts.get('loss')?.u.data[0].length === 150`, 15_000);
  const curve = await page.evaluate<{ steps: number[]; loss: number[]; rows: string }>(`(() => {
    const u = window.rowlog.charts.get('loss').u;
    return { steps: [...u.data[0]], loss: [...u.data[1]], rows: document.querySelector('.run-status[data-run="exp1-b"] .rows')?.textContent };
  })()`);
  t.same(curve.steps, Array.from({ length: 150 }, (_, i) => i), "one curve: the parent's steps 0..99, then the child's 100..149");
  t.same(curve.loss, Array.from({ length: 150 }, (_, i) => (i < 100 ? 1 : -1)), "the child's rows win where it redid steps");
  t.equal(curve.rows, '150 rows · step 149');

  // The child goes on (another process reopens it): the page follows it.
  await writer(script, path.join(runs, 'exp1-b'), path.join(runs, 'exp1'), 150, 10);
  await waitFor(page, `document.querySelector('.run-status[data-run="exp1-b"] .rows')?.textContent === '160 rows · step 159'`, 5000);
  t.same(problems, [], 'no console error');
  t.equal(serverErr(), '', 'no warning from the server');
  page.removeAllListeners();
  await browser.close();
  server.kill('SIGTERM');
  t.equal(await new Promise((resolve) => server.once('exit', resolve)), 0);
});
