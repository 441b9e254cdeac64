/**
 * No spike lost (issue 15 §1): a 2M-row table with ONE spike at a random step, served by a real
 * `rowlog serve` and drawn in a real headless Chromium. The spike's pixel on the chart's canvas
 * has the series' colour (read back with getImageData at u.valToPos of the spike), although the
 * step is no multiple of 256 (so the old striding, every stride-th row, would have lost it: it
 * is drawn because of the M4 rule, lib/serve/decimate.ts). Then the user drags over the chart
 * to zoom, three times, down to a few hundred rows around the spike: that range comes from
 * `/api/rows?…&from&to` at bucket 1 (every row in it); a row logged meanwhile goes into the full
 * view without moving the zoom, and a double click goes back to all of it.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import t from 'tap';
import { openBrowser, pageProblems, startServe, waitFor } from './browser.js';
import { tmpdir } from './helpers.js';
import { needs, peer } from './peers.js';

const ROWS = 2_000_000;
const T0 = Date.UTC(2026, 0, 1);
const BLUE = [0x25, 0x63, 0xeb]; // the first run's colour (web/state.ts PALETTE[0])

/** Writes `train.jsonl` of `ROWS` rows, quickly (a plain `.jsonl` by hand): a slow wave, noise, and one spike at `spike`. */
function writeTable(file: string, spike: number): void {
  const fd = fs.openSync(file, 'w');
  let chunk: string[] = [];
  for (let i = 0; i < ROWS; i++) {
    const loss = i === spike ? 50 : 1 + 0.1 * Math.sin(i / 50_000) + 0.02 * Math.sin(i * 1.7);
    chunk.push(`{"$step":${i},"$time":${T0 + i * 10},"loss":${loss.toFixed(4)},"acc":${((i % 1000) / 1000).toFixed(3)}}\n`);
    if (chunk.length === 100_000) {
      fs.writeSync(fd, chunk.join(''));
      chunk = [];
    }
  }
  fs.writeSync(fd, chunk.join(''));
  fs.closeSync(fd);
}

/** Drags over the loss chart from x = a to x = b (on its current scale), as a user does with the mouse. */
async function drag(page: Page, a: number, b: number): Promise<void> {
  const box = await page.evaluate<{ x0: number; x1: number; y: number }>(`(() => {
    const u = window.rowlog.charts.get('loss').u;
    const r = u.over.getBoundingClientRect();
    return { x0: r.left + u.valToPos(${a}, 'x'), x1: r.left + u.valToPos(${b}, 'x'), y: r.top + r.height / 2 };
  })()`);
  await page.mouse.move(box.x0, box.y);
  await page.mouse.down();
  await page.mouse.move((box.x0 + box.x1) / 2, box.y, { steps: 3 });
  await page.mouse.move(box.x1, box.y, { steps: 3 });
  await page.mouse.up();
}

/** The colour nearest to `want` on the loss chart's canvas within ±`r` device pixels of (x, y) on its scales, and its distance. */
function pixelNear(page: Page, x: number, y: number, r = 3): Promise<{ px: number; py: number; rgba: number[]; dist: number }> {
  return page.evaluate(`(() => {
    const u = window.rowlog.charts.get('loss').u;
    const px = u.valToPos(${x}, 'x', true), py = u.valToPos(${y}, 'y', true); // canvas pixels (device-pixel ratio in)
    const ctx = u.ctx;
    const { data } = ctx.getImageData(Math.round(px) - ${r}, Math.round(py) - ${r}, ${2 * r + 1}, ${2 * r + 1});
    let best = { px, py, rgba: [], dist: Infinity };
    for (let k = 0; k < data.length; k += 4) {
      const d = Math.hypot(data[k] - ${BLUE[0]}, data[k + 1] - ${BLUE[1]}, data[k + 2] - ${BLUE[2]});
      if (data[k + 3] > 200 && d < best.dist) best = { px, py, rgba: [...data.slice(k, k + 4)], dist: d };
    }
    return best;
  })()`);
}

const frames = `new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))`;

t.test('a one-step spike in a 2M-row table is drawn, and zooming fetches its range at full resolution', async (t) => {
  const CHROMIUM = peer('chromium');
  if (!needs(t, 'chromium') || CHROMIUM === undefined) return;
  const root = tmpdir(t);
  fs.mkdirSync(path.join(root, 'big'));
  // A random step, not a multiple of 256 (nor near either end).
  let spike = 0;
  while (spike % 256 === 0) spike = 100_000 + Math.floor(Math.random() * (ROWS - 200_000));
  t.comment(`spike at step ${spike}`);
  writeTable(path.join(root, 'big', 'train.jsonl'), spike);

  const { url } = await startServe(t, root);
  const { page } = await openBrowser(t, CHROMIUM, { width: 1280, height: 800 });
  const problems = pageProblems(page);
  await page.goto(`${url}#run=big&table=train&smooth=0`, { waitUntil: 'load' });
  await waitFor(page, `window.rowlog.data.get('big')?.total === ${ROWS} && window.rowlog.charts.get('loss')?.u.data[0].length > 0`, 120_000);
  await page.evaluate(frames);

  const full = await page.evaluate<{ bucket: number; points: number; held: boolean; width: number }>(`(() => {
    const d = window.rowlog.data.get('big');
    return { bucket: d.bucket, points: d.cols.get('loss').i.length, held: d.cols.get('loss').i.includes(${spike}), width: window.rowlog.charts.get('loss').u.bbox.width };
  })()`);
  t.comment(`full view: bucket ${full.bucket}, ${full.points} points of loss for ${ROWS} rows on ${full.width} canvas pixels`);
  t.ok(full.bucket >= 256, `decimated: ${full.bucket} rows per bucket`);
  t.not(spike % 256, 0, 'the spike is off every stride of 256 or more: striding would have lost it');
  t.ok(full.held, 'the spike row is among the points sent (M4 keeps each bucket’s max)');
  t.ok(full.points < 8 * 2048, `a few thousand points, not 2M (${full.points})`);
  const peak = await pixelNear(page, spike, 50);
  t.ok(peak.dist < 40, `the spike's pixel (${peak.px.toFixed(1)}, ${peak.py.toFixed(1)}) has the series' colour: rgba ${peak.rgba.join(',')}`);
  // And nothing blue up there where there is no spike (the peak is the spike's, not the axis').
  const off = spike > ROWS / 2 ? spike - 400_000 : spike + 400_000;
  t.ok((await pixelNear(page, off, 50)).dist > 100, 'no line at that height elsewhere');

  // Zoom: three drags, down to a few hundred rows around the spike.
  const zoom = `window.rowlog.zoom`;
  let prev = full.bucket;
  for (const half of [100_000, 4_000, 150]) {
    await drag(page, spike - half, spike + half);
    await waitFor(page, `${zoom}?.pending === 0 && ${zoom}.data.get('big') !== undefined && window.rowlog.charts.get('loss').u.scales.x.max < ${spike + 2 * half}`, 30_000);
    await page.evaluate(frames);
    const z = await page.evaluate<{ from: number; to: number; bucket: number; i: number[]; x: number[]; followed: boolean; scale: number[] }>(`(() => {
      const z = ${zoom}, d = z.data.get('big'), p = d.cols.get('loss'), u = window.rowlog.charts.get('loss').u;
      return { from: z.from, to: z.to, bucket: d.bucket, i: p.i, x: p.x, followed: d.followed, scale: [u.scales.x.min, u.scales.x.max] };
    })()`);
    t.comment(`zoomed to ${z.from.toFixed(1)}..${z.to.toFixed(1)}: bucket ${z.bucket}, ${z.i.length} points`);
    t.ok(z.from > spike - 2 * half && z.to < spike + 2 * half && z.from < spike && z.to > spike, 'the dragged range, around the spike');
    t.same(z.scale, [z.from, z.to], 'the chart shows that range');
    t.ok(z.bucket < prev, `finer than before (${z.bucket} < ${prev})`);
    t.ok(z.i.includes(spike), 'the spike is in the range’s points');
    t.equal(z.followed, false, 'a range is not followed');
    const p = await pixelNear(page, spike, 50);
    t.ok(p.dist < 40, `the spike drawn zoomed: rgba ${p.rgba.join(',')}`);
    prev = z.bucket;
    if (half === 150) {
      t.equal(z.bucket, 1, 'a range of a few hundred rows comes at full resolution');
      const first = Math.ceil(z.from);
      const last = Math.floor(z.to);
      t.same(z.i, Array.from({ length: last - first + 1 }, (_, k) => first + k), `every row of the range: ${first}..${last}`);
      t.same(z.x, z.i, 'at its step');
    }
  }
  t.match(await page.locator('.status .zoom').textContent(), /^zoomed: step [\d,]+ – [\d,]+ · double-click a chart for all$/);

  // A row logged while zoomed goes into the full view; the chart stays on its range.
  const scale = `[window.rowlog.charts.get('loss').u.scales.x.min, window.rowlog.charts.get('loss').u.scales.x.max]`;
  const before = await page.evaluate<number[]>(scale);
  fs.appendFileSync(path.join(root, 'big', 'train.jsonl'), `{"$step":${ROWS},"$time":${T0 + ROWS * 10},"loss":1.5,"acc":0.5}\n`);
  await waitFor(page, `window.rowlog.data.get('big').total === ${ROWS + 1}`, 10_000);
  await page.evaluate(frames);
  t.same(await page.evaluate<number[]>(scale), before, 'a live row while zoomed: the range stays');
  t.ok(await page.evaluate<boolean>(`window.rowlog.data.get('big').cols.get('loss').i.includes(${ROWS}) && window.rowlog.zoom !== undefined`), 'and the row is in the full view');

  // A double click: the full view again, with the new row.
  const over = await page.evaluate<{ x: number; y: number }>(`(() => { const r = window.rowlog.charts.get('loss').u.over.getBoundingClientRect(); return { x: r.left + 40, y: r.top + 40 }; })()`);
  await page.mouse.dblclick(over.x, over.y);
  await waitFor(page, `${zoom} === undefined && window.rowlog.charts.get('loss').u.scales.x.max === ${ROWS}`, 5000);
  t.equal(await page.locator('.status .zoom').count(), 0, 'no zoom note');
  t.same(problems, [], 'no page error');
});
