/**
 * The page at scale (issue 15 §5; `npm run bench:page`): `rowlog serve` (the built CLI, its own
 * process) and the page in headless Chromium (/usr/bin/chromium through playwright-core), on the
 * data sets of benchmarks/page-data.ts:
 * - one run of 2,000,000 rows: ms from the page's navigation start to the first chart whose
 *   uPlot data has points (target ≤ 1 s), and readTableIndex alone on its file (rows/s);
 * - 100 runs × 100,000 rows × 20 columns with params.json: ms to the runs table complete (100
 *   rows, none pending) and to the first charts (target ≤ 2 s for both), and serve's peak RSS
 *   (`VmHWM` of its process) over the whole scenario (target ≤ 300 MB);
 * - live, with that page open: a child process's `createLogger` appends a row to a run shown in
 *   a second page; ms from `log.row()` to the row in that page's state (target ≤ 1 s), median
 *   and p95 of 20 rows.
 * Cold: serve just started (nothing read; its background warming starts with the page). Warm:
 * the page opened again on the same serve, after its first load and the background reads. For
 * the 100 runs also: after the background read, no page opened before (serve idle again).
 * Each figure is the median of three (a fresh serve per cold run). Times inside the page are
 * its `performance.now()` (0 = navigation start), polled every animation frame in the page.
 * Without Chromium the bench says so and ends.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import { createLogger } from '../lib/log/logger.js';
import { readTableIndex } from '../lib/serve/table-index.js';
import { MANY_COLUMNS, MANY_ROWS, MANY_RUNS, pageData } from './page-data.js';

const CHROMIUM = process.env.ROWLOG_CHROMIUM ?? '/usr/bin/chromium';
const REPEAT = Number(process.env.BENCH_PAGE_REPEAT ?? 3);
const LIVE_ROWS = 20;
const self = fileURLToPath(import.meta.url);
const cli = path.join(path.dirname(self), '..', 'lib', 'cli', 'main.js');

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const q = (xs: number[], f: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(f * xs.length))] as number;
const ms = (n: number): string => `${Math.round(n).toLocaleString('en-US')} ms`;
const verdict = (ok: boolean): string => (ok ? 'met' : 'NOT met');
const range = (xs: number[]): string => `${ms(Math.min(...xs))}–${ms(Math.max(...xs))}`;

/** `rowlog serve DIR --port 0`: its process and page address. */
async function startServe(dir: string): Promise<{ proc: ChildProcessByStdio<null, Readable, Readable>; url: string; stop: () => Promise<void> }> {
  const proc = spawn(process.execPath, [cli, 'serve', dir, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  const url = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: proc.stdout }).once('line', (line) => resolve(line.replace(/^rowlog serve: /, '')));
    proc.once('exit', () => reject(new Error(`rowlog serve exited: ${err}`)));
  });
  return {
    proc,
    url,
    stop: async () => {
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

/** A process's peak RSS in MB (`VmHWM`; NaN without /proc). */
function peakRssOf(pid: number): number {
  try {
    const m = /^VmHWM:\s*(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? NaN : Number(m[1]) / 1024;
  } catch {
    return NaN;
  }
}

/** Headless Chromium on a fresh profile (test/browser.ts's flags). */
async function openBrowser(): Promise<{ browser: BrowserContext; close: () => Promise<void> }> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'rowlog-bench-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
  });
  return {
    browser,
    close: async () => {
      await browser.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * In the page: polls `cond` (a function's source, run against `window.rowlog`) every animation
 * frame until it returns true, and resolves with the page's performance.now() then (or -1 after
 * `timeoutMs`). Sent as text through the debugger protocol: the page's CSP forbids eval inside
 * it, not that.
 */
async function pageTimeOf(page: Page, cond: string, timeoutMs = 120_000): Promise<number> {
  return page.evaluate<number>(`new Promise((resolve) => {
    const f = ${cond};
    const tick = () => {
      let ok = false;
      try { ok = f(window.rowlog, document); } catch { ok = false; }
      if (ok) resolve(performance.now());
      else if (performance.now() > ${timeoutMs}) resolve(-1);
      else requestAnimationFrame(tick);
    };
    tick();
  })`);
}

/** A chart whose uPlot data has points. */
const FIRST_CHART = `(r) => !!r && [...r.charts.values()].some((c) => c.u && c.u.data && c.u.data[0] && c.u.data[0].length > 0)`;
/** Every chart of the shown columns has points (the first screen of charts). */
const CHARTS = `(r) => !!r && r.charts.size > 0 && [...r.charts.values()].every((c) => c.u && c.u.data && c.u.data[0] && c.u.data[0].length > 0)`;
/** The runs table: `n` rows, none pending (the page's summary, and as many rows in the table's body). */
const RUNS_TABLE = (n: number) =>
  `(r, doc) => !!r && !!r.summary && r.summary.runs.length === ${n} && !r.summary.runs.some((x) => x.pending) && doc.querySelectorAll('#runs-table-body tr, #runs-table tbody tr').length >= ${n}`;

/** True when the page has a runs table (the runs-table engineer's part of issue 15). */
async function hasRunsTable(page: Page): Promise<boolean> {
  return page.evaluate<boolean>(`'summary' in (window.rowlog ?? {})`);
}

/** Opens `url` in a new tab and times `conds` (name → condition), ms from navigation start. */
async function timePage(browser: BrowserContext, url: string, conds: Record<string, string>, keep = false): Promise<{ times: Record<string, number>; page: Page }> {
  const page = await browser.newPage();
  await page.goto(url, { waitUntil: 'commit' });
  const times: Record<string, number> = {};
  await Promise.all(Object.entries(conds).map(async ([k, c]) => (times[k] = await pageTimeOf(page, c))));
  if (!keep) await page.close();
  return { times, page };
}

/** The summary endpoint answers with no run pending (serve's reads all done), polled from here. */
async function untilSummaryDone(url: string, runs: number): Promise<boolean> {
  const end = Date.now() + 600_000;
  while (Date.now() < end) {
    const r = await fetch(`${url}api/summary?table=train`).catch(() => undefined);
    if (r === undefined || r.status === 404) return false;
    if (r.ok) {
      const body = (await r.json()) as { runs: Array<{ pending: boolean }> };
      if (body.runs.length >= runs && !body.runs.some((x) => x.pending)) return true;
    }
    await new Promise((res) => setTimeout(res, 200));
  }
  return false;
}

/** Resolves once process `pid` has used (nearly) no CPU for a second: serve's background reads are done. */
async function untilIdle(pid: number, timeoutMs = 900_000): Promise<void> {
  const cpu = (): number => {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return Number(f[11]) + Number(f[12]); // utime + stime, in clock ticks (1/100 s)
  };
  const end = Date.now() + timeoutMs;
  let last = cpu();
  while (Date.now() < end) {
    await new Promise((res) => setTimeout(res, 1000));
    const now = cpu();
    if (now - last <= 2) return;
    last = now;
  }
}

// --- the live writer: a child with createLogger ------------------------------------------------

/** `logger DIR`: a run folder's default sinks; each stdin line logs a row and prints its `Date.now()`. */
async function logger(dir: string): Promise<void> {
  const log = createLogger({ dir, tensorboard: false, console: false, exitHooks: false });
  let step = 0;
  const row = () => log.row('train', { loss: 1 / (step + 1), acc: step / (step + 10), lr: 1e-3 });
  for (; step < 100; step++) row();
  await log.flush();
  process.stdout.write('ready\n');
  for await (const _line of readline.createInterface({ input: process.stdin })) {
    const at = Date.now();
    row();
    step++;
    process.stdout.write(`${JSON.stringify({ at, rows: step })}\n`);
  }
  await log.close();
}

/** Starts the live writer on `dir`: write() logs a row, resolving with its time and the rows now. */
async function startWriter(dir: string): Promise<{ write: () => Promise<{ at: number; rows: number }>; stop: () => Promise<void> }> {
  const proc = spawn(process.execPath, [self, 'logger', dir], { stdio: ['pipe', 'pipe', 'inherit'] }) as ChildProcessByStdio<Writable, Readable, null>;
  const lines = readline.createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.value !== 'ready') throw new Error(`the live writer said ${String(first.value)}`);
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  return {
    write: async () => {
      proc.stdin.write('row\n');
      const l = await lines.next();
      return JSON.parse(String(l.value)) as { at: number; rows: number };
    },
    stop: async () => {
      proc.stdin.end();
      await exited;
    },
  };
}

// --- the scenarios --------------------------------------------------------------------------

async function bigRun(browser: BrowserContext, dir: string): Promise<void> {
  const file = path.join(dir, 'run', 'train.jsonl.gz');
  const rates: number[] = [];
  for (let k = 0; k < REPEAT; k++) {
    const t0 = performance.now();
    const ix = await readTableIndex(file, '$step');
    rates.push(ix.total / ((performance.now() - t0) / 1000));
  }
  console.log(`  readTableIndex alone, 2M rows (${(fs.statSync(file).size / 1e6).toFixed(0)} MB .jsonl.gz)  ${Math.round(median(rates)).toLocaleString('en-US')} rows/s  (${rates.map((r) => Math.round(r / 1000)).join(', ')} k)`);
  const cold: number[] = [];
  const warm: number[] = [];
  const rss: number[] = [];
  for (let k = 0; k < REPEAT; k++) {
    const s = await startServe(dir);
    try {
      cold.push((await timePage(browser, s.url, { chart: FIRST_CHART })).times.chart as number);
      warm.push((await timePage(browser, s.url, { chart: FIRST_CHART })).times.chart as number);
      rss.push(peakRssOf(s.proc.pid as number));
    } finally {
      await s.stop();
    }
  }
  const c = median(cold);
  const w = median(warm);
  console.log(`  2M-row run, first chart drawn, cold (serve just started)  ${ms(c).padStart(9)}  (${range(cold)}; target ≤ 1 s: ${verdict(c >= 0 && c <= 1000)})`);
  console.log(`  2M-row run, first chart drawn, warm (page opened again)   ${ms(w).padStart(9)}  (${range(warm)}; target ≤ 1 s: ${verdict(w >= 0 && w <= 1000)})  serve peak RSS ${Math.round(median(rss))} MB`);
}

async function manyRuns(browser: BrowserContext, dir: string): Promise<void> {
  const cold = { table: [] as number[], charts: [] as number[] };
  const warm = { table: [] as number[], charts: [] as number[] };
  const idle = { table: [] as number[], charts: [] as number[] };
  const rss: number[] = [];
  let table = true;
  let live: { lat: number[]; rss: number } | undefined;
  for (let k = 0; k < REPEAT; k++) {
    let s = await startServe(dir);
    try {
      // after the background read, no page open meanwhile: serve read every table by itself
      const w0 = performance.now();
      await untilIdle(s.proc.pid as number);
      const warmedIn = performance.now() - w0;
      const p0 = await browser.newPage();
      await p0.goto(s.url, { waitUntil: 'commit' });
      table = await pageTimeOf(p0, `(r) => !!r`).then(() => hasRunsTable(p0));
      const conds0: Record<string, string> = { charts: CHARTS };
      if (table) conds0.table = RUNS_TABLE(MANY_RUNS);
      const idleTimes: Record<string, number> = {};
      await Promise.all(Object.entries(conds0).map(async ([n, c]) => (idleTimes[n] = await pageTimeOf(p0, c))));
      await p0.close();
      idle.charts.push(idleTimes.charts as number);
      if (table) idle.table.push(idleTimes.table as number);
      if (k === 0) console.log(`  (serve read all ${MANY_RUNS} tables in the background in ${(warmedIn / 1000).toFixed(0)} s)`);
      await s.stop();
      s = await startServe(dir);
      const first = await browser.newPage();
      await first.goto(s.url, { waitUntil: 'commit' });
      table = await pageTimeOf(first, `(r) => !!r`).then(() => hasRunsTable(first));
      const conds: Record<string, string> = { charts: CHARTS };
      if (table) conds.table = RUNS_TABLE(MANY_RUNS);
      const times: Record<string, number> = {};
      await Promise.all(Object.entries(conds).map(async ([n, c]) => (times[n] = await pageTimeOf(first, c))));
      cold.charts.push(times.charts as number);
      if (table) cold.table.push(times.table as number);
      // warm: every table read in the background (the summary says so), then the page again
      await untilSummaryDone(s.url, MANY_RUNS);
      const again = await timePage(browser, s.url, conds);
      warm.charts.push(again.times.charts as number);
      if (table) warm.table.push(again.times.table as number);
      if (k === REPEAT - 1) live = await liveRows(browser, s.url, dir, s.proc.pid as number);
      await first.close();
      rss.push(peakRssOf(s.proc.pid as number));
    } finally {
      await s.stop();
    }
  }
  const name = `${MANY_RUNS} runs × ${MANY_ROWS.toLocaleString('en-US')} rows × ${MANY_COLUMNS} columns`;
  for (const [what, f] of [
    ['cold (serve just started)', cold],
    ['warm (page opened again) ', warm],
    ['after the background read', idle],
  ] as const) {
    if (table) {
      const t = median(f.table);
      console.log(`  ${name}, runs table complete, ${what}  ${ms(t).padStart(9)}  (${range(f.table)}; target ≤ 2 s: ${verdict(t >= 0 && t <= 2000)})`);
    } else console.log(`  ${name}, runs table, ${what}: no runs table on this page (window.rowlog.summary absent): NOT measured`);
    const c = median(f.charts);
    console.log(`  ${name}, first charts drawn,  ${what}  ${ms(c).padStart(9)}  (${range(f.charts)}; target ≤ 2 s: ${verdict(c >= 0 && c <= 2000)})`);
  }
  const peak = Math.max(...rss);
  console.log(`  serve peak RSS (VmHWM) over the whole scenario, cold + warm + live, worst of ${REPEAT}  ${Math.round(peak)} MB  (${rss.map(Math.round).join(', ')}; target ≤ 300 MB: ${verdict(peak <= 300)})`);
  if (live !== undefined) {
    const p50 = median(live.lat);
    const p95 = q(live.lat, 0.95);
    console.log(`  live: log.row() in a child createLogger → the row in the page's state, ${live.lat.length} rows, with the 100-run page open  p50 ${ms(p50)}, p95 ${ms(p95)}, max ${ms(Math.max(...live.lat))}  (target ≤ 1 s: ${verdict(p95 <= 1000)} for p95)`);
  }
}

/**
 * With the 100-run page open: a live run (a child's createLogger) shown in a second page; per row,
 * ms from its `log.row()` (the child's Date.now()) to the page's state holding it (the page's
 * Date.now(), same machine clock).
 */
async function liveRows(browser: BrowserContext, url: string, dir: string, pid: number): Promise<{ lat: number[]; rss: number }> {
  const runDir = path.join(dir, 'zz-live');
  fs.rmSync(runDir, { recursive: true, force: true });
  const w = await startWriter(runDir);
  const page = await browser.newPage();
  try {
    await page.goto(`${url}#run=zz-live&table=train`, { waitUntil: 'commit' });
    if ((await pageTimeOf(page, `(r) => !!r && r.data.has('zz-live') && r.data.get('zz-live').total >= 100`, 60_000)) < 0) throw new Error('the live run never showed');
    const lat: number[] = [];
    for (let k = 0; k < LIVE_ROWS; k++) {
      await new Promise((res) => setTimeout(res, 100 + Math.random() * 300)); // rows at random phases of the flush and poll
      const { at, rows } = await w.write();
      // the page's clock when its state holds `rows` rows (Date.now(): the child's clock is the same machine's)
      const seen = await page.evaluate<number>(`new Promise((resolve) => {
        const t0 = Date.now();
        const tick = () => {
          const d = window.rowlog.data.get('zz-live');
          if (d !== undefined && d.total >= ${rows}) resolve(Date.now());
          else if (Date.now() - t0 > 30000) resolve(-1);
          else setTimeout(tick, 2); // not a frame: a page in the background gets none
        };
        tick();
      })`);
      lat.push(seen < 0 ? Infinity : seen - at);
    }
    return { lat, rss: peakRssOf(pid) };
  } finally {
    await page.close();
    await w.stop();
    fs.rmSync(runDir, { recursive: true, force: true });
  }
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'logger') {
  await logger(args[0] as string);
} else if (!fs.existsSync(CHROMIUM)) {
  console.log(`rowlog page bench: skipped, needs Debian chromium (${CHROMIUM})`);
} else {
  const data = pageData();
  const made = data.madeSeconds;
  console.log(
    `rowlog page bench: headless Chromium on rowlog serve; median of ${REPEAT}; data in ${path.dirname(data.big)}` +
      (made.big + made.many > 0 ? ` (made now: 2M-row run ${made.big.toFixed(0)} s, 100 runs ${made.many.toFixed(0)} s)` : ' (reused)'),
  );
  const { browser, close } = await openBrowser();
  try {
    if (!process.env.BENCH_PAGE_ONLY || process.env.BENCH_PAGE_ONLY === 'big') await bigRun(browser, data.big);
    if (!process.env.BENCH_PAGE_ONLY || process.env.BENCH_PAGE_ONLY === 'many') await manyRuns(browser, data.many);
  } finally {
    await close();
  }
}
