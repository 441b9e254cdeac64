/**
 * `rowlog view` (lib/cli/view.ts, lib/cli/term-chart.ts; issue 15 §6) without a terminal, as a
 * user sees it: the charts of a run's columns (title with last / min / max, y labels, first and
 * last step), a spike in a long table drawn and labelled, NaN and ±Infinity counted and marked,
 * a resumed run as one curve, the options, the errors and their exit statuses, `-f` printing a
 * new frame as rows come, and the terminal's side (colours, redraws, `q`) with a stand-in TTY.
 * What a real terminal shows is test/cli-view.terminal.test.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import t from 'tap';
import { createLogger } from '../lib/log/logger.js';
import { chooseColumns, frameLines, noticeText, resolveTarget, runView, ViewTable, ViewUsageError } from '../lib/cli/view.js';
import { cellsOf, envelope, fitCharts, formatNumber, renderChart, titleOf, yLabels } from '../lib/cli/term-chart.js';
import { runCli, spawnCli } from './cli.js';
import { tmpdir } from './helpers.js';
import { until } from './wait.js';

const quiet = { console: false, exitHooks: false, tensorboard: false } as const;

/** A JSONL line as rowlog writes it (non-finite numbers as bare tokens). */
const line = (row: Record<string, number | string>) => `${JSON.stringify(row, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? `@${v}@` : v)).replace(/"@(NaN|Infinity|-Infinity)@"/g, '$1')}\n`;

/** The lines of a view's output between a title starting `name  ` and the next blank line. */
function chart(out: string, name: string): string[] {
  const lines = out.split('\n');
  const at = lines.findIndex((l) => l.startsWith(`${name}  `));
  if (at === -1) return [];
  const end = lines.indexOf('', at);
  return lines.slice(at, end === -1 ? undefined : end);
}

/** The y labels of a chart's plot lines, top first. */
const labels = (c: string[]) => c.filter((l) => /[┤┼]/.test(l)).map((l) => (l.split(/\s[┤┼]/)[0] ?? '').trim());

t.test('numbers as the charts show them', async (t) => {
  t.equal(formatNumber(0.123), '0.123');
  t.equal(formatNumber(4.5), '4.5');
  t.equal(formatNumber(0.01), '0.01');
  t.equal(formatNumber(12345.678), '12346', 'every digit before the point');
  t.equal(formatNumber(-2.16666), '-2.167');
  t.equal(formatNumber(0), '0');
  t.equal(formatNumber(1.5e-7), '1.5e-7');
  t.equal(formatNumber(2e12), '2e12');
  t.equal(formatNumber(NaN), 'NaN');
  t.equal(formatNumber(Infinity), '+Inf');
  t.equal(formatNumber(-Infinity), '-Inf');
  t.equal(formatNumber(3e-7, 1), '3e-7', 'one digit: no point to strip');
  t.same(yLabels(0, 1, 2), ['  1', '0.5', '  0'], 'right-aligned, top first');
  t.same(yLabels(1, 1.001, 2), ['1.001', '1.0005', '1'].map((l) => l.padStart(6)), 'digits enough to keep them apart');
});

t.test('a chart: title, y labels from max to min, the first and last step; fewer rows than columns is one line across', async (t) => {
  const points = { i: [0, 1, 2, 3], x: [10, 11, 12, 13], y: [4, 2, 1, 3] };
  const input = { name: 'loss', points, rows: 4, last: 3, lastStep: 13, min: 1, max: 4, nonFinite: { nan: 0, posInf: 0, negInf: 0 }, origin: 0, total: 4 };
  const lines = renderChart(input, { width: 60, height: 6 });
  t.equal(lines[0], 'loss  last 3  min 1  max 4  (rows 4, step 13)');
  t.same(labels(lines), ['4', '3.5', '3', '2.5', '2', '1.5', '1'], 'height + 1 labels, max on top');
  t.match(lines.at(-1), /^\s+step 10\s+step 13$/, 'the first and last step under the plot');
  t.ok(lines.every((l) => [...l].length <= 59), 'never wider than the width less one');
  t.notOk(lines.join('').includes('\x1b['), 'no colours unless asked');
  const colored = renderChart(input, { width: 60, height: 6, color: true });
  t.match(colored[0], /^\x1b\[1mloss/, 'the title bold');
  t.ok(colored.some((l) => l.includes('\x1b[36m')), 'the line cyan');

  const none = renderChart({ ...input, points: { i: [], x: [], y: [] }, rows: 2, last: NaN, min: undefined, max: undefined, nonFinite: { nan: 2, posInf: 0, negInf: 0 } }, { width: 60, height: 4 });
  t.same(none, ['loss  last NaN  (rows 2, step 13)  2 NaN ×', '(no finite values)']);
  t.same(renderChart({ ...input, points: { i: [], x: [], y: [] }, rows: 0, last: undefined, lastStep: undefined, min: undefined, max: undefined }, { width: 40, height: 4 }), ['loss  (rows 0)', '(no rows yet)']);
  t.equal(titleOf({ ...input, nonFinite: { nan: 1, posInf: 2, negInf: 3 } }), 'loss  last 3  min 1  max 4  (rows 4, step 13)  1 NaN ×  2 +Inf ▲  3 -Inf ▼');
  t.match(renderChart({ ...input, name: 'x'.repeat(80) }, { width: 30, height: 2 })[0], /^x{28}…$/, 'a long title cut with an ellipsis');
  const inf = renderChart({ ...input, points: { i: [0, 1, 2, 3], x: [10, 11, 12_000_000, 13_000_000], y: [1, Infinity, -Infinity, 2] }, min: 1, max: 2 }, { width: 20, height: 2 });
  t.match(inf.at(-2), /^\s+▲\s*▼$/, '+Infinity ▲ and −Infinity ▼ in their cells');
  t.match(inf.at(-1), /^\s+step 13,000,000$/, 'no room for both steps: the last one');
});

t.test('cells: every extreme kept; gaps on the line between neighbours; a column that starts late is blank before', async (t) => {
  const cells = cellsOf({ i: [0, 1, 2, 3, 9], x: [0, 1, 2, 3, 9], y: [1, 5, NaN, -Infinity, 3] }, 0, 10, 5);
  t.same(cells.map((c) => c.has && [c.lo, c.hi]), [[1, 5], false, false, false, [3, 3]], 'min and max per cell; non-finite values are no value');
  t.same(cells.map((c) => c.marks), [0, 5, 0, 0, 0], 'NaN (1) and −Infinity (4) marked in their cell');
  const env = envelope(cells);
  t.same(env.hi, [5, 5 + (3 - 5) / 4, 5 + ((3 - 5) * 2) / 4, 5 + ((3 - 5) * 3) / 4, 3], 'from the last value of one cell to the first of the next');
  t.equal(env.from, 0);
  t.equal(env.to, 4);

  // A column with points only in the second half of the table's rows.
  const late = { name: 'val', points: { i: [50, 99], x: [50, 99], y: [1, 2] }, rows: 2, last: 2, lastStep: 99, min: 1, max: 2, nonFinite: { nan: 0, posInf: 0, negInf: 0 }, origin: 0, total: 100 };
  const plot = renderChart(late, { width: 44, height: 4 }).filter((l) => /[┤┼]/.test(l));
  const body = plot.map((l) => l.slice(l.search(/[┤┼]/) + 1));
  t.ok(body.every((b) => b.slice(0, 18).trim() === ''), 'nothing drawn before its first row');
  t.ok(body.some((b) => b.slice(19).trim() !== ''), 'its line after');
  const lone = renderChart({ ...late, points: { i: [50], x: [50], y: [7] }, rows: 1, min: 7, max: 7, last: 7 }, { width: 44, height: 4 });
  t.ok(lone.some((l) => /^\s*7 ┤\s+─$/.test(l)), 'a lone point: one dash on its own row, labelled with its value');
  const flat = renderChart({ ...late, points: { i: [0, 99], x: [0, 99], y: [0, 0] }, min: 0, max: 0, last: 0 }, { width: 44, height: 4 });
  t.ok(flat.some((l) => /^\s*0 ┼─+$/.test(l)), 'a constant column: its line on the middle row, that row labelled with its value');
});

t.test('how many charts fit a height', async (t) => {
  t.same(fitCharts(40, 3), { charts: 3, height: 8 }, '1 header line, 3 × (title, plot, marks, steps) + 2 blank lines');
  t.same(fitCharts(24, 4, { minHeight: 6 }), { charts: 2, height: 7 }, 'fewer charts rather than plots under minHeight');
  t.same(fitCharts(10, 3, { minHeight: -Infinity }), { charts: 3, height: 2 }, 'asked-for charts are all kept, at least 2 rows each');
});

t.test('2M rows with one spike at a random step: the spike is the max, the top label, drawn in the top row', async (t) => {
  const table = new ViewTable();
  const n = 2_000_000;
  const spike = 1 + Math.floor(Math.random() * (n - 2));
  for (let i = 0; i < n; i++) table.push({ $step: i, loss: i === spike ? 1000 : 1 + ((i * 7919) % 1000) / 10_000 });
  t.ok(table.m4.cols.get('loss')!.points().i.length < 8 * 4096, 'decimated while read: a few points per bucket');
  const lines = frameLines({ table, label: 'run', asked: undefined, width: 100, height: 30, color: false, note: '' });
  const c = chart(lines.join('\n'), 'loss');
  t.equal(c[0], `loss  last ${formatNumber(1 + ((1_999_999 * 7919) % 1000) / 10_000)}  min 1  max 1000  (rows 2,000,000, step 1,999,999)`);
  t.equal(labels(c)[0], '1000', 'the top label is the spike');
  const top = c[1] as string;
  const col = top.search(/[╭╮│╯╰]/);
  t.ok(col > 0, `the top row has the spike: ${top}`);
  const width = [...(c.at(-1) as string)].length;
  const cellOf = (s: number) => Math.floor((s * (100 - 7)) / n); // 7: the label (4), a space, the axis, the blank last cell
  t.ok(Math.abs(col - (6 + cellOf(spike))) <= 2, `at its step: column ${col}, expected near ${6 + cellOf(spike)} (width ${width})`);
});

/** A run folder with `train` (1000 rows: loss, acc, lr; a NaN and an Infinity) and `eval`, written by the logger. */
async function runFolder(dir: string): Promise<void> {
  const log = createLogger({ dir, ...quiet });
  for (let i = 0; i < 1000; i++) {
    const loss = i === 500 ? NaN : i === 700 ? Infinity : 2 * Math.exp(-i / 200) + 0.01;
    log.row('train', { loss, acc: i / 1000, lr: 0.001, tag: 'x' }, { step: i });
    if (i % 100 === 0) log.row('eval', { val: i }, { step: i });
  }
  await log.close();
}

t.test('rowlog view RUN: the table changed last, the first numeric columns, each chart as a user reads it', async (t) => {
  const dir = path.join(tmpdir(t), 'exp1');
  await runFolder(dir);
  const old = new Date(Date.now() - 60_000);
  for (const f of fs.readdirSync(dir)) if (f.startsWith('eval.')) fs.utimesSync(path.join(dir, f), old, old);
  const r = runCli(['view', dir, '--width', '100']);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stderr, '');
  const lines = r.stdout.split('\n');
  t.equal(lines[0], `${dir}  train  1,000 rows`, 'the header: the run, the table, its rows');
  const last = formatNumber(2 * Math.exp(-999 / 200) + 0.01);
  t.equal(chart(r.stdout, 'loss')[0], `loss  last ${last}  min ${last}  max 2.01  (rows 1,000, step 999)  1 NaN ×  1 +Inf ▲`);
  t.equal(chart(r.stdout, 'acc')[0], 'acc  last 0.999  min 0  max 0.999  (rows 1,000, step 999)');
  t.equal(chart(r.stdout, 'lr')[0], 'lr  last 0.001  min 0.001  max 0.001  (rows 1,000, step 999)');
  t.same(labels(chart(r.stdout, 'loss')).slice(0, 1).concat(labels(chart(r.stdout, 'loss')).slice(-1)), ['2.01', formatNumber(2 * Math.exp(-999 / 200) + 0.01, 3)], 'y labels from the max to the min');
  const marks = chart(r.stdout, 'loss').find((l) => /^[ ×▲▼]+$/.test(l) && l.trim() !== '') ?? '';
  t.ok(marks.indexOf('×') < marks.indexOf('▲') && marks.indexOf('×') > 0, `NaN and +Inf marked at their steps, in order: ${marks}`);
  t.match(chart(r.stdout, 'loss').at(-1), /^\s+step 0\s+step 999$/);
  t.ok(lines.every((l) => [...l].length < 100), 'every line within the width');
  t.notOk(r.stdout.includes('\x1b'), 'no escape sequences through a pipe');

  const ev = runCli(['view', dir, '--table', 'eval', '--width', '60']);
  t.equal(ev.status, 0, ev.stderr);
  t.equal(chart(ev.stdout, 'val')[0], 'val  last 900  min 0  max 900  (rows 10, step 900)');
  const cols = runCli(['view', path.join(dir, 'train.csv'), '--columns', 'lr,loss', '--width', '80', '--height', '30']);
  t.equal(cols.status, 0, cols.stderr);
  t.same(cols.stdout.split('\n').filter((l) => /^[a-z]+ {2}last/.test(l)).map((l) => l.split(' ')[0]), ['lr', 'loss'], '--columns: those, in that order (here from the CSV copy)');
  const n = cols.stdout.trimEnd().split('\n').length;
  t.ok(n <= 30 && n >= 27, `--height: the drawing fills it (${n} lines of 30)`);
});

t.test('a resumed run is one curve (its ancestors first)', async (t) => {
  const root = tmpdir(t);
  const a = path.join(root, 'a');
  const b = path.join(root, 'b');
  let log = createLogger({ dir: a, ...quiet });
  for (let i = 0; i < 300; i++) log.row('train', { loss: 10 + i });
  await log.close();
  log = createLogger({ dir: b, ...quiet, resumeFrom: a });
  for (let i = 0; i < 100; i++) log.row('train', { loss: 1 + i / 1000 });
  await log.close();
  const r = runCli(['view', b, '--width', '70']);
  t.equal(r.status, 0, r.stderr);
  t.equal(chart(r.stdout, 'loss')[0], 'loss  last 1.099  min 1  max 309  (rows 400, step 399)');
  t.match(chart(r.stdout, 'loss').at(-1), /step 0\s+step 399$/);
});

t.test('errors: one line `rowlog: view: …`; exit 1 for what is not there, 2 for bad options and columns', async (t) => {
  const dir = path.join(tmpdir(t), 'exp1');
  await runFolder(dir);
  const cases: Array<[string[], number, RegExp]> = [
    [['view', path.join(dir, 'nope')], 1, /^rowlog: view: cannot open '.*nope': no such file or folder\n$/],
    [['view', dir, '--table', 'test'], 1, /^rowlog: view: '.*exp1' has no table 'test' \(its tables: eval, train\)\n$/],
    [['view', dir, '--table', 'train', '--columns', 'loss,bleu,tag'], 2, /^rowlog: view: no column 'bleu', 'tag' \(numeric columns: acc, loss, lr\)\n$/],
    [['view', dir, '--columns', ' , '], 2, /^rowlog: view: --columns names no column\n$/],
    [['view', path.join(dir, 'train.jsonl.gz'), '--table', 'train'], 2, /^rowlog: view: --table is for a run folder; '.*' is a table file\n$/],
    [['view', dir, '--table', '../x'], 2, /^rowlog: view: '..\/x' is not a table name\n$/],
    [['view', dir, '--width', '0'], 2, /^rowlog: view: .*--width.*must be a whole number ≥ 1/],
    [['view'], 2, /^rowlog: view: missing required argument 'run'/],
  ];
  for (const [args, status, stderr] of cases) {
    const r = runCli(args);
    t.equal(r.status, status, args.join(' '));
    t.match(r.stderr, stderr, args.join(' '));
    t.equal(r.stdout, '', `${args.join(' ')}: nothing on stdout`);
  }
  const empty = path.join(tmpdir(t), 'empty');
  fs.mkdirSync(empty);
  fs.writeFileSync(path.join(empty, 'run.json'), '{}');
  const none = runCli(['view', empty]);
  t.equal(none.status, 1);
  t.match(none.stderr, /^rowlog: view: '.*empty' has no tables\n$/);
  t.match(runCli(['view', empty, '--table', 'x']).stderr, /has no table 'x' \(it has none yet\)/);
  const blank = path.join(empty, 'blank.jsonl');
  fs.writeFileSync(blank, 'not json\n');
  const b = runCli(['view', blank]);
  t.equal(b.status, 0, b.stderr);
  t.equal(b.stdout, `${blank}  0 rows\n(no rows yet)\n`, 'a table without rows: said so');
  fs.writeFileSync(blank, line({ $step: 0, s: 'text' }));
  t.equal(runCli(['view', blank]).stdout, `${blank}  1 rows\n(no numeric columns)\n`);
  t.match(runCli(['view', blank, '--columns', 'x']).stderr, /no column 'x' \(the table has no numeric columns\)/);
});

t.test('unit: the target and the columns', async (t) => {
  const dir = path.join(tmpdir(t), 'exp1');
  await runFolder(dir);
  t.same(resolveTarget(dir, 'eval', false), { file: path.join(dir, 'eval.jsonl.gz'), label: `${dir}  eval` }, 'the JSONL file of the table');
  t.same(resolveTarget(dir, 'later', true), { file: path.join(dir, 'later.jsonl.gz'), label: `${dir}  later` }, 'followed: waited for');
  t.throws(() => resolveTarget(dir, 'x/', false), ViewUsageError);
  const table = new ViewTable();
  t.same(chooseColumns(table, ['a'], 3), ['a'], 'no rows yet: the columns asked for are shown as they are');
  table.push({ b: 1, a: 2, s: 'x', $step: 0 });
  t.same(chooseColumns(table, undefined, 1), ['b'], 'the first numeric column, in the order of the rows');
  table.push({ b: -Infinity, a: NaN, $step: 1 });
  t.same(table.chart('b').nonFinite, { nan: 0, posInf: 0, negInf: 1 }, 'each kind counted');
  t.equal(table.chart('nope').rows, 0, 'a column the rows never had: no rows');

  // The table changed last; of tables changed in the same millisecond, the larger.
  const same = new Date(Date.now() - 10_000);
  for (const f of fs.readdirSync(dir)) if (f.endsWith('.jsonl.gz')) fs.utimesSync(path.join(dir, f), same, same);
  t.equal(resolveTarget(dir, undefined, false).file, path.join(dir, 'train.jsonl.gz'), 'a tie: the larger table');
  t.same(
    (['damaged', 'lookback', 'long-line', 'waiting'] as const).map((type) => noticeText({ type, offset: 7, length: 1, limit: 10, shown: 0 } as never)),
    ['a damaged member at byte 7 was skipped', 'a line longer than 10 bytes was skipped', 'a line longer than 10 bytes was skipped', 'waiting for the file'],
    "tail's notices, for the header",
  );
});

t.test('-f without a terminal: a new frame (after a blank line) as rows come, at most once a second; SIGINT exits 0', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'live.jsonl');
  fs.writeFileSync(file, [0, 1, 2].map((i) => line({ $step: i, loss: 1 + i })).join(''));
  const child = spawnCli(['view', '-f', file, '--width', '60']);
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => child.kill('SIGKILL'));
  await until(() => out.includes('loss  last 3  min 1  max 3  (rows 3, step 2)'), 'the first frame');
  t.equal(out.split('\n')[0], `${file}  3 rows  following`);
  const t0 = Date.now();
  fs.appendFileSync(file, line({ $step: 3, loss: 0.5 }));
  await until(() => out.includes('loss  last 0.5  min 0.5  max 3  (rows 4, step 3)'), 'a frame with the new row');
  fs.appendFileSync(file, line({ $step: 4, loss: 7 }));
  await until(() => out.includes('last 7  min 0.5  max 7'), 'a third frame');
  const frames = out.split(`\n\n${file}  `);
  t.equal(frames.length, 3, 'each frame after a blank line, starting with its header');
  t.ok(Date.now() - t0 >= 900, 'frames at most once a second');
  child.kill('SIGINT');
  t.equal(await exit, 0, err);
});

t.test('-f waits for a table not there yet; a CSV is read again when it changes', async (t) => {
  const dir = path.join(tmpdir(t), 'fresh');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'run.json'), '{}');
  const ac = new AbortController();
  const out = new PassThrough();
  let text = '';
  out.setEncoding('utf8').on('data', (d: string) => (text += d));
  const done = runView(dir, { follow: true, out, width: 60, pollMs: 20, signal: ac.signal });
  await until(() => text.includes('(no rows yet)'), 'the empty frame');
  t.match(text, new RegExp(`^${dir}  main  0 rows  following`));
  const log = createLogger({ dir, ...quiet });
  log.row('main', { loss: 0.25 });
  await log.flush();
  await until(() => text.includes('loss  last 0.25'), 'the table once it appears');
  await log.close();
  ac.abort();
  await done;

  const csv = path.join(dir, 'm.csv');
  fs.writeFileSync(csv, '$step,loss\n0,1\n1,2\n');
  const ac2 = new AbortController();
  let csvText = '';
  const out2 = new PassThrough();
  out2.setEncoding('utf8').on('data', (d: string) => (csvText += d));
  const done2 = runView(csv, { follow: true, out: out2, width: 60, pollMs: 20, signal: ac2.signal });
  await until(() => csvText.includes('loss  last 2'), 'the CSV');
  fs.writeFileSync(csv, '$step,loss\n0,1\n1,2\n2,5\n');
  await until(() => csvText.includes('loss  last 5'), 'the CSV read again');
  ac2.abort();
  await done2;
});

/** A stand-in terminal: an output with a size and `resize`, and keys in raw mode. */
function fakeTerminal(columns: number, rows: number) {
  const out = Object.assign(new PassThrough(), { isTTY: true, columns, rows });
  let text = '';
  out.setEncoding('utf8').on('data', (d: string) => (text += d));
  const raw: boolean[] = [];
  const input = Object.assign(new PassThrough(), { isTTY: true, setRawMode: (on: boolean) => raw.push(on) });
  return { out, input, raw, text: () => text };
}

t.test('on a terminal: colours unless NO_COLOR; -f on the alternate screen, redrawn on resize, q gives the screen back', async (t) => {
  const file = path.join(tmpdir(t), 'x.jsonl');
  fs.writeFileSync(file, [0, 1, 2, 3].map((i) => line({ $step: i, loss: i % 2, acc: i })).join(''));
  const saved = process.env.NO_COLOR;
  t.teardown(() => (saved === undefined ? delete process.env.NO_COLOR : (process.env.NO_COLOR = saved)));
  delete process.env.NO_COLOR;
  const a = fakeTerminal(50, 30);
  await runView(file, { out: a.out });
  t.ok(a.text().includes('\x1b[36m'), 'colours on a terminal');
  const n = a.text().split('\n').length - 1;
  t.ok(n <= 29 && n >= 26, `the terminal height less a line for the prompt (${n} of 30)`);
  process.env.NO_COLOR = '1';
  const b = fakeTerminal(50, 30);
  await runView(file, { out: b.out });
  t.notOk(b.text().includes('\x1b['), 'NO_COLOR: none');

  const c = fakeTerminal(50, 30);
  const done = runView(file, { follow: true, out: c.out, input: c.input, pollMs: 20 });
  await until(() => c.text().includes('acc  last 3'), 'the first frame');
  t.ok(c.text().startsWith('\x1b[?1049h\x1b[?25l\x1b[H'), 'the alternate screen, the cursor hidden, drawn from home');
  t.same(c.raw, [true], 'keys in raw mode');
  // Rows every 20 ms for half a second (polled every 20 ms): redrawn at most 5 times a second.
  const frames = () => c.text().split('\x1b[H').length - 1;
  const before = frames();
  const t0 = Date.now();
  for (let k = 0; k < 25; k++) {
    fs.appendFileSync(file, line({ $step: 4 + k, loss: k % 2, acc: 4 + k }));
    await new Promise((resolve) => setTimeout(resolve, 20)); // the writer's pace, not a wait for the view
  }
  await until(() => c.text().includes('acc  last 28'), 'the last row drawn');
  const drawn = frames() - before;
  t.ok(drawn >= 2 && drawn <= (Date.now() - t0) / 200 + 1, `${drawn} redraws in ${Date.now() - t0} ms: at most 5 a second`);
  t.ok(c.text().split('\x1b[H')[1]!.split('\n').every((l) => [...l.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')].length < 50), 'each line within the width');
  c.out.columns = 30;
  c.out.emit('resize');
  const resized = frames();
  await until(() => frames() > resized, 'a redraw at the new width');
  const last = c.text().slice(c.text().lastIndexOf('\x1b[H'));
  t.ok(last.split('\n').every((l) => [...l.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')].length < 30), 'narrower after the resize');
  c.input.write('q');
  await done;
  t.ok(c.text().endsWith('\x1b[?25h\x1b[?1049l'), 'q: the cursor and the screen given back');
  t.same(c.raw, [true, false], 'raw mode off');
});

t.test('-f: a column asked for that the rows never had, found once rows come, is a usage error', async (t) => {
  const file = path.join(tmpdir(t), 'late.jsonl');
  const out = new PassThrough();
  out.resume();
  const done = runView(file, { follow: true, out, columns: ['bleu'], pollMs: 20, width: 40 });
  // the file does not exist yet: waited for, then its rows name other columns
  fs.writeFileSync(file, line({ $step: 0, loss: 1 }));
  await t.rejects(done, ViewUsageError);
});
