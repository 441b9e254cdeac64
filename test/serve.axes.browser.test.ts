/**
 * The page's axes, markers and groups (issue 15 §2, §3's group by), in a real headless Chromium
 * on a real `rowlog serve` over runs written by hand as JSONL (bare NaN / Infinity tokens, as
 * rowlog writes them) with a params.json each:
 * - NaN, +Infinity and −Infinity are marked at their steps (pixels of the marker near the
 *   expected x, none elsewhere) and named in the chart's header;
 * - the x-axis select: `epoch`, relative time and wall time change the chart's x data and the
 *   tick texts a user reads (uPlot draws them on the canvas: read from the axis' values), and
 *   the header at the cursor; the choice is kept in the address;
 * - the log-y toggle changes the chart's scale and its ticks;
 * - grouped by `lr`, three seeds are ONE mean line with a min–max band (pixels of the band's fill
 *   between its edges, and of the mean line), labelled `lr=0.1 (3 runs)`; ± std is narrower.
 * A screenshot of the whole page is saved to test-output/serve-page.png (the README's picture).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import t from 'tap';
import { openBrowser, pageProblems, startServe, waitFor } from './browser.js';
import { ROOT, tmpdir } from './helpers.js';
import { needs, peer } from './peers.js';

const SCREENSHOT = path.join(ROOT, 'test-output', 'serve-page.png');
const T0 = Date.UTC(2026, 0, 1, 9, 0, 0);
const N = 2000;
const BLUE = [0x25, 0x63, 0xeb]; // the first checked run's colour (web/state.ts PALETTE[0])
const PURPLE = [0x93, 0x33, 0xea]; // the fourth's
const NAN_RED = [0xe1, 0x1d, 0x48]; // web/charts.ts NAN_COLOR

/** A run folder `id` with params.json and train.jsonl: loss falls to 0.3·seed (+2 for lr=0.01), acc rises, grad_norm falls; extra cells by step. */
function writeRun(root: string, id: string, lr: number, seed: number, extra: Record<number, [string, string]> = {}): void {
  const dir = path.join(root, id);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'params.json'), JSON.stringify({ lr, seed, optim: { name: 'adam' } }));
  const lines: string[] = [];
  for (let i = 0; i < N; i++) {
    const loss = Math.exp(-i / 300) + 0.3 * seed + (lr === 0.01 ? 2 : 0) + 0.02 * Math.sin(i / 7 + seed);
    const acc = 1 - 0.6 * Math.exp(-i / (lr === 0.1 ? 400 : 700)) - 0.02 * seed;
    const grad = 1 + 0.5 * Math.exp(-i / 300) * (lr === 0.1 ? 1 : 2) + 0.05 * seed;
    let line = `{"$step":${i},"$time":${T0 + i * 1000},"epoch":${Math.floor(i / 100)},"loss":${loss.toFixed(5)},"acc":${acc.toFixed(5)},"grad_norm":${grad.toFixed(5)}}`;
    const cell = extra[i];
    if (cell !== undefined) line = line.replace(new RegExp(`"${cell[0]}":[^,}]+`), `"${cell[0]}":${cell[1]}`); // a bare NaN / Infinity token, as rowlog writes it
    lines.push(line);
  }
  fs.writeFileSync(path.join(dir, 'train.jsonl'), `${lines.join('\n')}\n`);
}

const frames = `new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))`;
const chart = (col: string) => `window.rowlog.charts.get(${JSON.stringify(col)})`;

/**
 * Pixels of chart `col`'s canvas within `dist` of colour `rgb`, in the device-pixel box x0..x1 × y0..y1:
 * opaque ones, or with `rgb[3]`, of about that alpha (the canvas is transparent: a band's fill is its colour at 20 %).
 */
function count(page: Page, col: string, box: string, rgb: number[], dist = 40): Promise<number> {
  return page.evaluate<number>(`(() => {
    const u = ${chart(col)}.u;
    const [x0, x1, y0, y1] = (${box})(u).map(Math.round);
    const { data } = u.ctx.getImageData(x0, y0, Math.max(1, x1 - x0 + 1), Math.max(1, y1 - y0 + 1));
    let n = 0;
    const alpha = ${rgb[3] ?? -1};
    for (let k = 0; k < data.length; k += 4) if ((alpha < 0 ? data[k + 3] > 200 : Math.abs(data[k + 3] - alpha) < 16) && Math.hypot(data[k] - ${rgb[0]}, data[k + 1] - ${rgb[1]}, data[k + 2] - ${rgb[2]}) < ${dist}) n++;
    return n;
  })()`);
}

/** The tick texts of chart `col`'s axis `k` as drawn (0: x, 1: y). */
const ticks = (page: Page, col: string, k: number) => page.evaluate<string[]>(`${chart(col)}.u.axes[${k}]._values.slice()`);

/** Moves the mouse over chart `col` at x = `x` and returns the header's texts a user reads there, joined by ` | `. */
async function hover(page: Page, col: string, x: number): Promise<string> {
  const p = await page.evaluate<{ x: number; y: number }>(`(() => { const u = ${chart(col)}.u; const r = u.over.getBoundingClientRect(); return { x: r.left + u.valToPos(${x}, 'x'), y: r.top + r.height / 2 }; })()`);
  await page.mouse.move(p.x, p.y);
  await page.evaluate(frames);
  return page.evaluate<string>(`[...document.querySelectorAll('.chart[data-column="${col}"] .value span')].map((s) => s.textContent).join(' | ')`);
}

/** Chooses x-axis `value` in the select, as a user does, and waits for the charts on it. */
async function chooseAxis(page: Page, value: string, server: string): Promise<void> {
  await page.locator('#x-axis').selectOption(value);
  await waitFor(page, `window.rowlog.data.get('a1')?.x === ${JSON.stringify(server)} && ${chart('loss')}?.u.data[0].length > 0`, 10_000);
  await page.evaluate(frames);
}

t.test('NaN and ±Infinity marked, any x-axis, log-y, and a group of seeds as a mean with a band', async (t) => {
  const CHROMIUM = peer('chromium');
  if (!needs(t, 'chromium') || CHROMIUM === undefined) return;
  const root = tmpdir(t);
  writeRun(root, 'a1', 0.1, 1, { 700: ['loss', 'NaN'], 1300: ['grad_norm', 'Infinity'], 1600: ['acc', '-Infinity'] });
  for (const [id, lr, seed] of [['a2', 0.1, 2], ['a3', 0.1, 3], ['b1', 0.01, 1], ['b2', 0.01, 2], ['b3', 0.01, 3]] as const) writeRun(root, id, lr, seed);

  const { url } = await startServe(t, root);
  const { page } = await openBrowser(t, CHROMIUM, { width: 1280, height: 800 });
  const problems = pageProblems(page);
  await page.goto(`${url}#run=a1&table=train&smooth=0`, { waitUntil: 'load' });
  await waitFor(page, `document.querySelectorAll('.chart canvas').length === 4 && window.rowlog.data.get('a1')?.total === ${N}`, 20_000);
  await page.evaluate(frames);

  // --- markers: a NaN in loss at step 700, +Infinity in grad_norm at 1300, −Infinity in acc at 1600.
  const column = (x: number, y0: string, y1: string) => `(u) => { const px = u.valToPos(${x}, 'x', true); return [px - 3, px + 3, ${y0}, ${y1}]; }`;
  const whole = (x: number) => column(x, 'u.bbox.top', 'u.bbox.top + u.bbox.height - 1');
  const top = (x: number) => column(x, 'u.bbox.top + 2 * devicePixelRatio', 'u.bbox.top + 8 * devicePixelRatio');
  const bottom = (x: number) => column(x, 'u.bbox.top + u.bbox.height - 8 * devicePixelRatio', 'u.bbox.top + u.bbox.height - 2 * devicePixelRatio');
  const nan = await count(page, 'loss', whole(700), NAN_RED);
  t.ok(nan > 20, `the NaN's marker (a ✕ and a dashed line) at step 700: ${nan} pixels`);
  t.equal(await count(page, 'loss', whole(1000), NAN_RED), 0, 'none at step 1000');
  t.ok((await count(page, 'grad_norm', top(1300), BLUE)) > 4, '+Infinity: a ▲ at the top edge at step 1300, in the run’s colour');
  t.equal(await count(page, 'grad_norm', top(1000), BLUE), 0, 'nothing there at step 1000');
  t.ok((await count(page, 'acc', bottom(1600), BLUE)) > 4, '−Infinity: a ▼ at the bottom edge at step 1600');
  t.equal(await count(page, 'acc', bottom(1000), BLUE), 0, 'nothing there at step 1000');
  const notes = await page.evaluate<Record<string, string>>(
    `Object.fromEntries([...document.querySelectorAll('.chart')].map((c) => [c.dataset.column, c.querySelector('.nonfinite').textContent]))`,
  );
  t.same(notes, { acc: '−∞ at step 1,600', epoch: '', grad_norm: '+∞ at step 1,300', loss: 'NaN at step 700' }, 'each chart’s header names its non-finite value');
  t.ok(await page.locator('.chart[data-column="loss"].has-nan').count(), 'the chart with a NaN is marked');
  const near = await hover(page, 'loss', 700);
  t.ok(/^step \d+ \| [\d.]+ \| NaN$/.test(near) && Math.abs(Number(/^step (\d+)/.exec(near)?.[1]) - 700) < 20, `the header at the cursor says NaN there: ${near}`);

  // --- the x-axis: epoch, relative time, wall time (the ticks a user reads, the data, the header).
  t.same(await page.evaluate(`[...document.querySelectorAll('#x-axis option')].map((o) => o.textContent)`), ['step', 'relative time', 'wall time', 'acc', 'epoch', 'grad_norm', 'loss']);
  t.same((await ticks(page, 'loss', 0)).slice(0, 3), ['0', '500', '1000'], 'step ticks');
  await chooseAxis(page, 'epoch', 'epoch');
  const epoch = await page.evaluate<{ min: number; max: number; n: number }>(`(() => { const xs = ${chart('loss')}.u.data[0]; return { min: xs[0], max: xs.at(-1), n: xs.length }; })()`);
  t.same([epoch.min, epoch.max], [0, 19], 'x is the epoch column: 0..19');
  t.ok(epoch.n > 200, `rows of one epoch keep their own slots (${epoch.n} points on 20 epochs)`);
  t.ok((await ticks(page, 'loss', 0)).every((s) => Number(s) >= 0 && Number(s) <= 20), `epoch ticks: ${(await ticks(page, 'loss', 0)).join(' ')}`);
  t.match(await hover(page, 'loss', 10), /^epoch 10 \| /);
  t.match(page.url(), /&x=epoch(&|$)/, 'kept in the address');

  await chooseAxis(page, '$relative', '$time');
  const rel = await page.evaluate<number[]>(`[${chart('loss')}.u.data[0][0], ${chart('loss')}.u.data[0].at(-1)]`);
  t.same(rel, [0, (N - 1) * 1000], 'relative time: ms since the run’s first $time');
  const relTicks = await ticks(page, 'loss', 0);
  t.ok(relTicks.length > 1 && relTicks.every((s) => /^\d+ (ms|s|min)( \d+ s)?$/.test(s)), `durations: ${relTicks.join(' | ')}`);
  t.match(await hover(page, 'loss', 600_000), /^relative time (9 min \d+ s|10 min( \d+ s)?) \| /);
  t.equal(await page.locator('.chart[data-column="loss"] .nonfinite').textContent(), 'NaN at 11 min 40 s', 'the NaN at its relative time');

  await chooseAxis(page, '$time', '$time');
  const wall = await page.evaluate<{ first: number; time: boolean }>(`({ first: ${chart('loss')}.u.data[0][0], time: ${chart('loss')}.u.scales.x.time })`);
  t.same(wall, { first: T0, time: true }, 'wall time: ms since the epoch on a time scale');
  const wallTicks = await ticks(page, 'loss', 0);
  t.ok(wallTicks.some((s) => /\d:\d\d/.test(s)), `clock times: ${wallTicks.join(' | ')}`);
  t.match(await hover(page, 'loss', T0 + 600_000), /^wall time \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \| /);

  await chooseAxis(page, '$step', '$step');
  t.notMatch(page.url(), /x=/, 'step is the default: not in the address');

  // --- log-scale y on one chart.
  const linear = await ticks(page, 'loss', 1);
  await page.locator('.chart[data-column="loss"] .log-toggle').click();
  await waitFor(page, `${chart('loss')}.u.scales.y.distr === 3`, 5000);
  await page.evaluate(frames);
  const logTicks = await ticks(page, 'loss', 1);
  t.not(logTicks.join(' '), linear.join(' '), `the y ticks change: ${linear.join(' ')} → ${logTicks.join(' ')}`);
  t.equal(await page.locator('.chart[data-column="loss"] .log-toggle').getAttribute('aria-pressed'), 'true');
  t.equal(await page.evaluate(`${chart('acc')}.u.scales.y.distr`), 1, 'the other charts stay linear');
  t.match(page.url(), /&log=loss(&|$)/, 'kept in the address');
  await page.locator('.chart[data-column="loss"] .log-toggle').click();
  await waitFor(page, `${chart('loss')}.u.scales.y.distr === 1`, 5000);

  // --- group by lr: tick the other five runs, as a user does.
  for (const id of ['a2', 'a3', 'b1', 'b2', 'b3']) await page.locator(`#runs li[data-run="${id}"] input`).check();
  await waitFor(page, `['a1','a2','a3','b1','b2','b3'].every((id) => window.rowlog.data.get(id)?.total === ${N})`, 20_000);
  // The runs table's controls, as a user picks them: its params come from /api/summary (the params.json above).
  await waitFor(page, `[...document.querySelectorAll('#group-by option')].some((o) => o.value === 'lr')`, 20_000);
  await page.selectOption('#band', 'minmax');
  await page.selectOption('#group-by', 'lr');
  await waitFor(page, `${chart('loss')}?.u.series.length === 7 && ${chart('loss')}.u.data[0].length > 0`, 5000);
  await page.evaluate(frames);
  const g = await page.evaluate<{ labels: string[]; legend: string[]; lo: number; hi: number; mean: number; x: number }>(`(() => {
    const u = ${chart('loss')}.u;
    const xs = u.data[0];
    const k = xs.findIndex((x) => x >= 1100);
    return { labels: u.series.map((s) => s.label), legend: [...document.querySelectorAll('.group-status .name')].map((e) => e.textContent), lo: u.data[1][k], hi: u.data[2][k], mean: u.data[3][k], x: xs[k] };
  })()`);
  t.same(g.labels, ['step', 'lr=0.1 (3 runs) (low)', 'lr=0.1 (3 runs) (high)', 'lr=0.1 (3 runs)', 'lr=0.01 (3 runs) (low)', 'lr=0.01 (3 runs) (high)', 'lr=0.01 (3 runs)'], 'one mean line and two band edges per group');
  t.same(g.legend, ['lr=0.1 (3 runs)', 'lr=0.01 (3 runs)'], 'the groups are named in the status bar');
  t.ok(Math.abs(g.lo - (0.3 + Math.exp(-g.x / 300))) < 0.05 && Math.abs(g.hi - (0.9 + Math.exp(-g.x / 300))) < 0.05, `min–max of the seeds at step ${g.x.toFixed(0)}: ${g.lo.toFixed(3)}..${g.hi.toFixed(3)}`);
  t.ok(Math.abs(g.mean - (0.6 + Math.exp(-g.x / 300))) < 0.05, `their mean: ${g.mean.toFixed(3)}`);
  // Pixels: the band's fill (the group colour at 20 % alpha) between the low edge and the mean; the mean line in full colour.
  const fill = (rgb: number[]) => [...rgb, 0x33];
  const at = (y: number) => `(u) => { const px = u.valToPos(${g.x}, 'x', true), py = u.valToPos(${y}, 'y', true); return [px - 1, px + 1, py - 1, py + 1]; }`;
  t.ok((await count(page, 'loss', at(g.lo + (g.mean - g.lo) / 3), fill(BLUE))) >= 6, 'the band’s fill between the low edge and the mean');
  t.ok((await count(page, 'loss', at(g.mean), BLUE, 60)) >= 1, 'the mean line');
  const b = await page.evaluate<number>(`(() => { const u = ${chart('loss')}.u; const k = u.data[0].findIndex((x) => x >= 1100); return (u.data[4][k] + u.data[6][k]) / 2; })()`);
  t.ok((await count(page, 'loss', at(b), fill(PURPLE))) >= 6, 'the other group’s band in its colour');

  // ± std: a narrower band.
  await page.selectOption('#band', 'std');
  await waitFor(page, `${chart('loss')}?.u.data[0].length > 0`, 5000);
  const sd = await page.evaluate<{ lo: number; hi: number; mean: number }>(`(() => { const u = ${chart('loss')}.u; const k = u.data[0].findIndex((x) => x >= 1100); return { lo: u.data[1][k], hi: u.data[2][k], mean: u.data[3][k] }; })()`);
  t.ok(Math.abs(sd.hi - sd.mean - Math.sqrt(0.06)) < 0.02 && Math.abs(sd.mean - sd.lo - Math.sqrt(0.06)) < 0.02, `mean ± std (std of 0.3, 0.6, 0.9 = ${Math.sqrt(0.06).toFixed(3)}): ${sd.lo.toFixed(3)}..${sd.hi.toFixed(3)}`);
  await page.selectOption('#band', 'minmax');
  await waitFor(page, `${chart('loss')}?.u.data[0].length > 0`, 5000);
  await page.evaluate(frames);

  fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
  await page.mouse.move(5, 5);
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  t.comment(`screenshot: ${SCREENSHOT}`);
  t.same(problems, [], 'no page error');
});

t.test('an x-axis column the newly chosen table lacks: back to step, not an empty page', async (t) => {
  const CHROMIUM = peer('chromium');
  if (!needs(t, 'chromium') || CHROMIUM === undefined) return;
  const root = tmpdir(t);
  writeRun(root, 'a1', 0.1, 1);
  // A second table of the same run without `epoch` (an eval table logged every 100 steps).
  const evalRows = Array.from({ length: 20 }, (_, k) => `{"$step":${k * 100},"$time":${T0 + k * 100_000},"val_acc":${(k / 20).toFixed(3)}}`);
  fs.writeFileSync(path.join(root, 'a1', 'eval.jsonl'), `${evalRows.join('\n')}\n`);

  const { url } = await startServe(t, root);
  const { page } = await openBrowser(t, CHROMIUM, { width: 1280, height: 800 });
  const problems = pageProblems(page);
  await page.goto(`${url}#run=a1&table=train&x=epoch&smooth=0`, { waitUntil: 'load' });
  await waitFor(page, `window.rowlog.data.get('a1')?.x === 'epoch' && ${chart('loss')}?.u.data[0].length > 0`, 20_000);

  await page.locator('#table').selectOption('eval');
  await waitFor(page, `window.rowlog.table === 'eval' && ${chart('val_acc')}?.u.data[0].length > 0`, 10_000);
  t.equal(await page.evaluate('window.rowlog.xAxis'), '$step', 'the x-axis is step again');
  t.equal(await page.locator('#x-axis').inputValue(), '$step', 'and the select says so');
  t.same(await page.evaluate(`[...document.querySelectorAll('#x-axis option')].map((o) => o.value)`), ['$step', '$relative', '$time', 'val_acc'], 'the select offers the columns of eval, not epoch');
  t.match(await page.locator('#message').textContent(), /has a column epoch: drawn against step/, 'and the page says why');
  t.notMatch(page.url(), /x=/, 'the address too');

  // Back to train: epoch can be chosen again, and the note goes.
  await page.locator('#table').selectOption('train');
  await waitFor(page, `${chart('loss')}?.u.data[0].length > 0 && [...document.querySelectorAll('#x-axis option')].some((o) => o.value === 'epoch')`, 10_000);
  await page.locator('#x-axis').selectOption('epoch');
  await waitFor(page, `window.rowlog.data.get('a1')?.x === 'epoch' && ${chart('loss')}?.u.data[0].length > 0`, 10_000);
  t.equal(await page.locator('#message').isHidden(), true, 'no note once the axis exists');

  // A run without $time on a time axis: not drawn, and its status says why.
  fs.mkdirSync(path.join(root, 'notime'));
  fs.writeFileSync(path.join(root, 'notime', 'train.jsonl'), '{"$step":0,"loss":1}\n{"$step":1,"loss":0.5}\n');
  await waitFor(page, `document.querySelector('#runs li[data-run="notime"] input') !== null`, 10_000);
  await page.locator('#runs li[data-run="notime"] input').check();
  await page.locator('#x-axis').selectOption('$relative');
  await waitFor(page, `window.rowlog.data.get('notime')?.x === '$time' && window.rowlog.data.get('a1')?.x === '$time'`, 10_000);
  await waitFor(page, `document.querySelector('.run-status[data-run="notime"] .rows')?.textContent === '2 rows · none has $time'`, 5000);
  t.pass('a run without $time on relative time: “2 rows · none has $time”');
  t.same(problems, [], 'no page error');
});

t.test('log-y: values ≤ 0 are a gap in the line, not a straight line drawn across them', async (t) => {
  const CHROMIUM = peer('chromium');
  if (!needs(t, 'chromium') || CHROMIUM === undefined) return;
  const root = tmpdir(t);
  fs.mkdirSync(path.join(root, 's'));
  // sin(i / 200): negative for steps 629..1256, positive around them.
  const rows = Array.from({ length: 2000 }, (_, i) => `{"$step":${i},"signed":${Math.sin(i / 200).toFixed(5)}}`);
  fs.writeFileSync(path.join(root, 's', 'train.jsonl'), `${rows.join('\n')}\n`);
  const { url } = await startServe(t, root);
  const { page } = await openBrowser(t, CHROMIUM, { width: 1280, height: 800 });
  const problems = pageProblems(page);
  await page.goto(`${url}#run=s&table=train&smooth=0&log=signed`, { waitUntil: 'load' });
  await waitFor(page, `${chart('signed')}?.u.scales.y.distr === 3 && ${chart('signed')}.u.data[0].length > 0`, 20_000);
  await page.evaluate(frames);
  const whole = (x: number) => `(u) => { const px = u.valToPos(${x}, 'x', true); return [px - 2, px + 2, u.bbox.top, u.bbox.top + u.bbox.height - 1]; }`;
  t.ok((await count(page, 'signed', whole(150), BLUE)) > 0, 'the line where the values are > 0 (step 150)');
  t.equal(await count(page, 'signed', whole(940), BLUE), 0, 'nothing where they are ≤ 0 (step 940)');
  t.same(problems, [], 'no page error');
});
