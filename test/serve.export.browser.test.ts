/**
 * A chart's export (web/export.ts, issue 15 point 4) in headless Chromium on a real
 * `rowlog serve`: a run of 100 known rows, the loss chart zoomed to steps 10–20, and its CSV,
 * JSON and PNG buttons clicked. Each is a real download (Playwright's `download` event, through
 * the page's blob URL under its CSP): the CSV and the JSON hold exactly the zoomed rows (the raw
 * values as logged, the smoothed ones as the chart holds them), the PNG is a PNG of the chart's
 * canvas size plus its title band.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type { Page } from 'playwright-core';
import { openBrowser, pageProblems, startServe, waitFor } from './browser.js';
import { ROOT, tmpdir } from './helpers.js';
import { needs, peer } from './peers.js';

const SAVED = path.join(ROOT, 'test-output', 'serve-export.png');

/** The loss logged at step i. */
const loss = (i: number) => 100 - i * 0.5 + (i % 3) * 0.25;

/** Clicks `selector` and waits for the download it starts: its suggested name and content. */
async function download(page: Page, selector: string): Promise<{ name: string; body: Buffer }> {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click(selector)]);
  const file = await dl.path();
  return { name: dl.suggestedFilename(), body: fs.readFileSync(file) };
}

t.test('CSV, JSON and PNG of a zoomed chart', async (t) => {
  const CHROMIUM = peer('chromium');
  if (!needs(t, 'chromium') || CHROMIUM === undefined) return;
  const root = tmpdir(t);
  const dir = path.join(root, 'exp');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'run.json'), '{"name":"exp"}');
  // Step 15's loss is NaN (a bare token, as rowlog writes it): a marker on the chart, a row of the export.
  const rows = Array.from({ length: 100 }, (_, i) => JSON.stringify({ $step: i, loss: i === 15 ? 'NAN' : loss(i), acc: i / 100 }).replace('"NAN"', 'NaN'));
  fs.writeFileSync(path.join(dir, 'train.jsonl'), `${rows.join('\n')}\n`);

  const { url } = await startServe(t, root);
  const { page } = await openBrowser(t, CHROMIUM, { width: 1280, height: 900 });
  const problems = pageProblems(page);
  await page.goto(`${url}#run=exp&table=train`, { waitUntil: 'load' });
  const chart = `window.rowlog.charts.get('loss')`;
  await waitFor(page, `${chart}?.u.data[0].length === 99 && document.querySelector('.chart[data-column="loss"] .export-csv') !== null`, 15_000);

  // Zoom to steps 10..20 (as a drag would), and wait for what the chart holds then.
  await page.evaluate(`${chart}.u.setScale('x', { min: 10, max: 20 })`);
  await waitFor(page, `${chart}.u.scales.x.min === 10 && ${chart}.u.scales.x.max === 20`, 5000);
  await page.evaluate(`new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))`);
  const shown = await page.evaluate<{ labels: string[]; rows: Array<Array<number | null>> }>(`(() => {
    const u = ${chart}.u;
    const rows = [];
    for (let i = 0; i < u.data[0].length; i++) {
      const x = u.data[0][i];
      if (x >= u.scales.x.min && x <= u.scales.x.max) rows.push(u.data.map((s) => s[i] ?? null));
    }
    return { labels: u.series.map((s) => s.label), rows };
  })()`);
  const steps = Array.from({ length: 11 }, (_, k) => 10 + k);
  t.same(shown.rows.map((r) => r[0]), steps.filter((s) => s !== 15), 'the chart’s lines hold steps 10..20 but the NaN (a marker)');
  // What the export holds: those rows, and the NaN's own row at its step in the raw series.
  shown.rows.splice(5, 0, [15, Number.NaN, ...shown.rows[0]!.slice(2).map(() => null)]);

  const csv = await download(page, '.chart[data-column="loss"] .export-csv');
  t.equal(csv.name, 'train-loss.csv');
  const lines = csv.body.toString('utf8').trimEnd().split('\n');
  t.equal(lines[0], shown.labels.join(','), `the header: the x-axis, then each series (${lines[0]})`);
  t.same(lines.slice(1).map((l) => l.split(',').map((v) => (v === '' ? null : Number(v)))), shown.rows, 'every visible row, every value, as the chart holds them');
  t.same(lines.slice(1).map((l) => Number(l.split(',')[1])), steps.map((s) => (s === 15 ? Number.NaN : loss(s))), 'the raw series: the logged values');
  t.equal(lines[6], '15,NaN,', 'the NaN by name at its step');

  const json = await download(page, '.chart[data-column="loss"] .export-json');
  t.equal(json.name, 'train-loss.json');
  const doc = JSON.parse(json.body.toString('utf8')) as { xLabel: string; x: number[]; series: Array<{ label: string; values: number[] }> };
  t.equal(doc.xLabel, shown.labels[0]);
  t.same(doc.x, steps);
  t.equal(doc.series[0]?.values[5], 'NaN', 'the NaN as "NaN" in JSON');
  t.same(doc.series.map((s) => s.label), shown.labels.slice(1));
  t.same(
    doc.series.map((s) => s.values),
    shown.labels.slice(1).map((_, k) => shown.rows.map((r) => (Number.isNaN(r[k + 1]) ? 'NaN' : r[k + 1]))),
  );

  const png = await download(page, '.chart[data-column="loss"] .export-png');
  t.equal(png.name, 'train-loss.png');
  t.same([...png.body.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG magic bytes');
  t.equal(png.body.subarray(12, 16).toString('latin1'), 'IHDR');
  const size = await page.evaluate<{ w: number; h: number; css: number }>(`({ w: ${chart}.u.ctx.canvas.width, h: ${chart}.u.ctx.canvas.height, css: ${chart}.u.width })`);
  const band = Math.round(24 * (size.w / size.css));
  t.same({ w: png.body.readUInt32BE(16), h: png.body.readUInt32BE(20) }, { w: size.w, h: size.h + band }, `the canvas' size (${size.w}×${size.h}) plus the title band (${band})`);

  // Not a blank image: decoded in the page, the PNG has the run's line (blue) in the plot and the dark title above it.
  const drawn = await page.evaluate<{ line: number; title: number }>(`(async () => {
    const bytes = Uint8Array.from(atob(${JSON.stringify(png.body.toString('base64'))}), (c) => c.charCodeAt(0));
    const img = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
    const c = document.createElement('canvas');
    c.width = img.width;
    c.height = img.height;
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    const px = g.getImageData(0, 0, c.width, c.height).data;
    let line = 0, title = 0;
    for (let k = 0; k < px.length; k += 4) {
      const y = Math.floor(k / 4 / c.width);
      if (y >= ${band} && Math.hypot(px[k] - 0x25, px[k + 1] - 0x63, px[k + 2] - 0xeb) < 40) line++;
      if (y < ${band} && px[k] < 80 && px[k + 1] < 80 && px[k + 2] < 80) title++;
    }
    return { line, title };
  })()`);
  t.ok(drawn.line > 100, `the PNG holds the line: ${drawn.line} pixels of the run's colour`);
  t.ok(drawn.title > 20, `and the title: ${drawn.title} dark pixels`);

  fs.mkdirSync(path.dirname(SAVED), { recursive: true });
  fs.writeFileSync(SAVED, png.body);
  t.comment(`the exported PNG: ${SAVED}`);
  t.same(problems, [], 'no console error (no CSP violation), no page error');
});
