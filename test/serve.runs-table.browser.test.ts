/**
 * The runs table (web/runs-table.ts, issue 15 point 3) in headless Chromium on a real
 * `rowlog serve`: five run folders with params (lr, seed, nested optim/beta) and a train table
 * of known last / min / max. The table shows each run's params and figures; a click on the `lr`
 * header orders the rows by lr, a second click reverses them; the filter leaves the matching
 * rows; ticking two rows puts both runs on the charts; the group-by select sets state.groupBy
 * and the charts are built again. A screenshot is kept in test-output/serve-runs-table.png.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { openBrowser, pageProblems, startServe, waitFor } from './browser.js';
import { ROOT, tmpdir } from './helpers.js';
import { needs, peer } from './peers.js';

const SCREENSHOT = path.join(ROOT, 'test-output', 'serve-runs-table.png');
const PAGE_SHOT = path.join(ROOT, 'test-output', 'serve-runs-table-page.png');

const LR = [0.1, 0.001, 0.03, 0.01, 0.3];
const BETA = [0.9, 0.99, 0.9, 0.95, 0.99];
/** Run k's loss at row i (20 rows): known, with a minimum and maximum inside. */
const loss = (k: number, i: number) => ((k + 1) * (1 + ((i * 7) % 10))) / 4;
const acc = (k: number, i: number) => i / 20 + k / 100;

t.test('the runs table: params and figures, sorted by a header, filtered, ticked onto the charts, grouped', async (t) => {
  const CHROMIUM = peer('chromium');
  if (!needs(t, 'chromium') || CHROMIUM === undefined) return;
  const root = tmpdir(t);
  for (let k = 0; k < 5; k++) {
    const dir = path.join(root, `r${k}`);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify({ name: `r${k}`, startTime: '2026-01-01T00:00:00.000Z' }));
    fs.writeFileSync(path.join(dir, 'params.json'), JSON.stringify({ lr: LR[k], seed: k % 2, optim: { beta: BETA[k] } }));
    const lines = Array.from({ length: 20 }, (_, i) => JSON.stringify({ $step: i, loss: loss(k, i), acc: acc(k, i) }));
    fs.writeFileSync(path.join(dir, 'train.jsonl'), `${lines.join('\n')}\n`);
  }
  // One more run without params.json and another table: not in the train table's rows.
  fs.mkdirSync(path.join(root, 'other'));
  fs.writeFileSync(path.join(root, 'other', 'run.json'), '{"name":"other"}');
  fs.writeFileSync(path.join(root, 'other', 'eval.jsonl'), '{"$step":0,"v":1}\n');

  const { url } = await startServe(t, root);
  const { page } = await openBrowser(t, CHROMIUM, { width: 1280, height: 900 });
  const problems = pageProblems(page);

  await page.goto(`${url}#run=r0&table=train`, { waitUntil: 'load' });
  await waitFor(page, `document.querySelectorAll('#runs-table-body tr').length === 5 && !window.rowlog.summary.runs.some((r) => r.pending)`, 15_000);
  await waitFor(page, `document.querySelector('#runs-table-body td[data-key="s:loss:last"]')?.textContent !== ''`, 15_000);

  const table = () =>
    page.evaluate<{ head: string[]; rows: Array<{ run: string; cells: Record<string, string>; checked: boolean }> }>(`({
      head: [...document.querySelectorAll('#runs-table-head th')].map((th) => th.textContent),
      rows: [...document.querySelectorAll('#runs-table-body tr')].map((tr) => ({
        run: tr.dataset.run,
        checked: tr.querySelector('input').checked,
        cells: Object.fromEntries([...tr.querySelectorAll('td[data-key]')].map((td) => [td.dataset.key, td.textContent])),
      })),
    })`);
  const order = async () => (await table()).rows.map((r) => r.run);

  const first = await table();
  t.same(first.head, ['', 'name', 'lr', 'optim/beta', 'seed', 'acc', 'loss', 'last', 'min', 'max', 'last', 'min', 'max'], 'a column per param, last/min/max of the first two data columns');
  t.same(await order(), ['r0', 'r1', 'r2', 'r3', 'r4'], 'as listed');
  for (const [k, row] of first.rows.entries()) {
    const ls = Array.from({ length: 20 }, (_, i) => loss(k, i));
    t.same(
      row.cells,
      {
        'p:lr': String(LR[k]),
        'p:optim/beta': String(BETA[k]),
        'p:seed': String(k % 2),
        's:acc:last': String(Number(acc(k, 19).toPrecision(4))),
        's:acc:min': String(acc(k, 0)),
        's:acc:max': String(Number(acc(k, 19).toPrecision(4))),
        's:loss:last': String(ls[19]),
        's:loss:min': String(Math.min(...ls)),
        's:loss:max': String(Math.max(...ls)),
      },
      `r${k}: its params and figures`,
    );
  }
  t.same(
    first.rows.map((r) => r.checked),
    [true, false, false, false, false],
    'the checked run (from the address) is ticked',
  );

  // Sorting by lr: ascending, then descending.
  await page.click('#runs-table-head th[data-sort="p:lr"]');
  t.same(await order(), ['r1', 'r3', 'r2', 'r0', 'r4'], 'lr ascending');
  await page.click('#runs-table-head th[data-sort="p:lr"]');
  t.same(await order(), ['r4', 'r0', 'r2', 'r3', 'r1'], 'lr descending');
  t.match(await page.evaluate<string>('location.hash'), /sort=-p%3Alr/, 'the order is in the address');
  await page.focus('#runs-table-head th[data-sort="p:seed"]');
  await page.keyboard.press('Enter');
  t.same(await order(), ['r0', 'r2', 'r4', 'r1', 'r3'], 'Enter on the seed header: seed ascending, ties as listed');
  await page.click('#runs-table-head th[data-sort="s:loss:max"]');
  t.same(await order(), ['r0', 'r1', 'r2', 'r3', 'r4'], 'loss max ascending');

  // Filtering.
  await page.fill('#runs-filter', 'seed=1');
  t.same(await order(), ['r1', 'r3'], 'seed=1');
  await page.fill('#runs-filter', 'lr>0.02 beta<0.95');
  t.same(await order(), ['r0', 'r2'], 'lr>0.02 and optim/beta<0.95');
  await page.fill('#runs-filter', 'r4');
  t.same(await order(), ['r4'], 'a substring of the name');
  await page.fill('#runs-filter', '');
  t.equal((await order()).length, 5);

  // The figures of other columns.
  await page.fill('#stat-columns', 'loss');
  t.same((await table()).head.slice(-4), ['loss', 'last', 'min', 'max'], 'only loss');
  await page.fill('#stat-columns', '');

  // Ticking two rows: both runs on the charts (with r0, checked before).
  await waitFor(page, `window.rowlog.charts.get('loss') !== undefined`, 15_000);
  await page.check('#runs-table-body tr[data-run="r3"] input');
  await page.check('#runs-table-body tr[data-run="r4"] input');
  await waitFor(page, `window.rowlog.data.has('r3') && window.rowlog.data.has('r4') && window.rowlog.charts.get('loss') !== undefined`, 15_000);
  const onChart = await page.evaluate<{ selected: string[]; labels: string[]; sidebar: string[] }>(`({
    selected: window.rowlog.selected,
    labels: window.rowlog.charts.get('loss').u.series.map((s) => s.label),
    sidebar: [...document.querySelectorAll('#runs li.checked')].map((li) => li.dataset.run),
  })`);
  t.same(onChart.selected, ['r0', 'r3', 'r4'], 'ticked: checked');
  t.same(onChart.sidebar, ['r0', 'r3', 'r4'], 'the run list shows them checked too');
  for (const r of ['r3', 'r4']) t.ok(onChart.labels.includes(r), `${r} is a series of the loss chart (${onChart.labels.join(', ')})`);
  t.same(
    (await table()).rows.filter((r) => r.checked).map((r) => r.run),
    ['r0', 'r3', 'r4'],
  );
  await page.uncheck('#runs-table-body tr[data-run="r0"] input');
  await waitFor(page, `!window.rowlog.selected.includes('r0') && !window.rowlog.charts.get('loss')?.u.series.some((s) => s.label === 'r0')`, 15_000);
  t.pass('unticked: off the charts');

  // Group by: the state the charts draw from, and the charts built again.
  t.same(await page.evaluate<string[]>(`[...document.querySelectorAll('#group-by option')].map((o) => o.value)`), ['', 'lr', 'optim/beta', 'seed'], 'group by: none or a param');
  await page.evaluate(`document.querySelectorAll('.chart').forEach((c) => (c.dataset.old = '1'))`);
  await page.selectOption('#group-by', 'optim/beta');
  await waitFor(page, `window.rowlog.groupBy === 'optim/beta' && document.querySelectorAll('.chart').length > 0 && !document.querySelector('.chart[data-old]')`, 5000);
  t.equal(await page.evaluate<number>(`window.rowlog.params.get('r3')['optim/beta']`), 0.95, 'state.params from the summary');
  await page.evaluate(`document.querySelectorAll('.chart').forEach((c) => (c.dataset.old = '1'))`);
  await page.selectOption('#band', 'std');
  await waitFor(page, `window.rowlog.band === 'std' && document.querySelectorAll('.chart').length > 0 && !document.querySelector('.chart[data-old]')`, 5000);
  t.match(await page.evaluate<string>('location.hash'), /group=optim%2Fbeta.*band=std|band=std.*group=optim%2Fbeta/, 'grouping in the address');

  // A reload keeps the settings.
  await page.reload({ waitUntil: 'load' });
  await waitFor(page, `document.querySelectorAll('#runs-table-body tr').length === 5`, 15_000);
  t.same(await page.evaluate<[string, string, string]>(`[window.rowlog.groupBy, window.rowlog.band, document.getElementById('group-by').value]`), ['optim/beta', 'std', 'optim/beta']);
  t.same(await order(), ['r0', 'r1', 'r2', 'r3', 'r4'], 'the order (loss max) kept');

  fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
  await page.locator('#runs-panel').screenshot({ path: SCREENSHOT });
  t.comment(`screenshot: ${SCREENSHOT}`);
  // The whole page: the table above the charts, the ticked runs grouped by optim/beta.
  for (const r of ['r0', 'r1', 'r2']) await page.check(`#runs-table-body tr[data-run="${r}"] input`);
  await waitFor(page, `['r0', 'r1', 'r2', 'r3', 'r4'].every((r) => window.rowlog.data.has(r)) && document.querySelectorAll('.chart canvas').length === 2`, 15_000);
  await page.evaluate(`new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))`);
  await page.screenshot({ path: PAGE_SHOT });
  t.comment(`the page: ${PAGE_SHOT}`);
  t.same(problems, [], 'no console error, no page error');
});

t.test('100 runs: the table is drawn at once, sorted and filtered', async (t) => {
  const CHROMIUM = peer('chromium');
  if (!needs(t, 'chromium') || CHROMIUM === undefined) return;
  const root = tmpdir(t);
  for (let k = 0; k < 120; k++) {
    const dir = path.join(root, `run-${k}`);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify({ name: `run-${k}` }));
    if (k % 3 !== 0) fs.writeFileSync(path.join(dir, 'params.json'), JSON.stringify({ lr: (k % 7) / 100, model: { width: 2 ** (k % 5), act: k % 2 ? 'relu' : 'tanh' }, tags: ['a', k] }));
    fs.writeFileSync(path.join(dir, 'train.jsonl'), `${Array.from({ length: 50 }, (_, i) => JSON.stringify({ $step: i, loss: k + 1 / (i + 1) })).join('\n')}\n`);
  }
  const { url } = await startServe(t, root);
  const { page } = await openBrowser(t, CHROMIUM, { width: 1280, height: 900 });
  const t0 = Date.now();
  await page.goto(`${url}#table=train`, { waitUntil: 'load' });
  await waitFor(page, `document.querySelectorAll('#runs-table-body tr').length === 120 && !window.rowlog.summary.runs.some((r) => r.pending)`, 20_000);
  t.comment(`120 runs read and drawn ${Date.now() - t0} ms after the page was asked for`);
  const ms = await page.evaluate<number>(`(() => {
    const t0 = performance.now();
    for (let i = 0; i < 11; i++) document.querySelector('#runs-table-head th[data-sort="s:loss:last"]').click();
    return (performance.now() - t0) / 11;
  })()`);
  t.comment(`one sort of 120 rows, drawn: ${ms.toFixed(1)} ms`);
  t.ok(ms < 200, 'a sort redraws 120 rows in well under 200 ms');
  t.same(await page.evaluate<string[]>(`[...document.querySelectorAll('#runs-table-body tr')].slice(0, 3).map((tr) => tr.dataset.run)`), ['run-0', 'run-1', 'run-2'], 'loss last ascending (an odd number of clicks)');
  await page.fill('#runs-filter', 'act=relu width>=8');
  const left = await page.evaluate<string[]>(`[...document.querySelectorAll('#runs-table-body tr')].map((tr) => tr.dataset.run)`);
  const want = Array.from({ length: 120 }, (_, k) => k).filter((k) => k % 3 !== 0 && k % 2 === 1 && 2 ** (k % 5) >= 8).map((k) => `run-${k}`);
  t.same(left, want, 'the filter on nested params; runs without params.json left out');
  t.equal(await page.evaluate<string>(`document.querySelector('#runs-table-body tr td[data-key="p:tags"]').textContent`), `["a",${want[0]?.slice(4)}]`, 'an array param as JSON text');
});
