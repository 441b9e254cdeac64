// rowlog serve: the page (DESIGN §7). It lists the runs the server sees, plots every numeric
// column of the chosen table against $step with uPlot (one chart per column, one raw + one
// smoothed series per checked run), and follows new rows through one EventSource
// (/api/events), redrawing with setData at most once per animation frame.
//
// TypeScript compiled by `npm run build` (web/tsconfig.json: the DOM lib, ES modules) to
// dist/web/, served as /app.js and its sibling modules. The message types are the server's
// (lib/serve/protocol.ts, type-only imports); the pure parts are modules with unit tests:
// series.ts (what a run holds, and the striding it shares with the server through
// lib/serve/decimate.ts), smooth.ts (TensorBoard's smoothing), format.ts (numbers for people).
import type U from 'uplot';
import type { ProblemEvent, RowsEvent, RunsBody, ServedRun, Snapshot } from '../lib/serve/protocol.js';
import { ago, fmt, fmtTick } from './format.js';
import { applyRows, fromSnapshot } from './series.js';
import type { RunData } from './series.js';
import { ema } from './smooth.js';

const MAX_CHARTS = 100; // charts drawn at once; narrow the filter for the others
const CHART_HEIGHT = 190;
const LIVE_MS = 15_000; // a run whose files changed this recently is shown as being logged
const PALETTE = ['#2563eb', '#dc2626', '#059669', '#9333ea', '#ea580c', '#0891b2', '#db2777', '#65a30d', '#4f46e5', '#b45309'];

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const el = <K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};
/** The element `sel` finds inside `root` (the page's own markup: it is there). */
const sub = <T extends HTMLElement = HTMLElement>(root: ParentNode, sel: string) => root.querySelector(sel) as T;

/** One chart: a column of the checked runs. */
interface Chart {
  col: string;
  card: HTMLElement;
  value: HTMLElement;
  plot: HTMLElement;
  u: U;
  /** New data not drawn yet. */
  dirty: boolean;
  /** On screen (or near it). */
  visible: boolean;
  /** The user zoomed in: new data keeps the x range. */
  zoomed: boolean;
  /** setData is running (its setScale is not the user's). */
  updating: boolean;
}

/** Everything the page shows; `window.rowlog` for a look from the console (and the tests). */
const state = {
  dir: '',
  /** The server's listing. */
  runs: [] as ServedRun[],
  /** Server clock minus ours. */
  skew: 0,
  /** Checked run ids, in the order they were checked (their colours follow it). */
  selected: [] as string[],
  table: '',
  /** The user has checked or unchecked a run: no more picking one for them. */
  touched: false,
  filter: '',
  smoothing: 0.6,
  /** run id → what the page holds of its table. */
  data: new Map<string, RunData>(),
  /** column → chart */
  charts: new Map<string, Chart>(),
  /** The columns the filter shows, in order. */
  shown: [] as string[],
  /** Columns matching the filter (shown or not), and all columns of the checked runs. */
  matching: 0,
  total: 0,
  connection: 'connecting',
};
window.rowlog = state;

// ---------------------------------------------------------------------------------------------
// Settings in the address (#run=a&run=b&table=t&filter=loss&smooth=0.6): a reload keeps them.

function readHash(): void {
  const p = new URLSearchParams(location.hash.slice(1));
  state.selected = p.getAll('run');
  state.table = p.get('table') ?? '';
  state.filter = p.get('filter') ?? '';
  const s = Number(p.get('smooth'));
  if (p.has('smooth') && s >= 0 && s <= 0.99) state.smoothing = s;
}

function writeHash(): void {
  const p = new URLSearchParams();
  for (const r of state.selected) p.append('run', r);
  if (state.table) p.set('table', state.table);
  if (state.filter) p.set('filter', state.filter);
  p.set('smooth', String(state.smoothing));
  history.replaceState(null, '', `#${p}`);
}

const nf = new Intl.NumberFormat('en-US');

const runOf = (id: string | undefined) => state.runs.find((r) => r.id === id);
const colorOf = (id: string) => PALETTE[Math.max(0, state.selected.indexOf(id)) % PALETTE.length] as string;
const lastChange = (run: ServedRun) => run.tables.reduce((m, t) => Math.max(m, t.mtime), 0);
const serverNow = () => Date.now() + state.skew;
const isLive = (run: ServedRun) => serverNow() - lastChange(run) < LIVE_MS;

// ---------------------------------------------------------------------------------------------
// Run list and table picker

function onRuns(body: RunsBody): void {
  state.dir = body.dir;
  state.skew = body.now - Date.now();
  state.runs = body.runs;
  $('dir').textContent = body.dir.split('/').slice(-2).join('/');
  $('dir').title = body.dir;
  let changed = false;
  const known = state.selected.filter((id) => runOf(id));
  if (known.length !== state.selected.length) {
    state.selected = known;
    changed = true;
  }
  if (state.selected.length === 0 && state.runs.length > 0 && !state.touched) {
    // Start with the run logged to most recently (until the user picks runs: none is a choice too).
    const latest = state.runs.reduce((a, b) => (lastChange(b) > lastChange(a) ? b : a));
    state.selected = [latest.id];
    changed = true;
  }
  const tables = tableNames();
  if (!tables.includes(state.table) && tables.length > 0) {
    // Prefer the table changed last among the checked runs.
    let best = tables[0] as string;
    let bestTime = -1;
    for (const id of state.selected) {
      for (const t of runOf(id)?.tables ?? []) if (t.mtime > bestTime) (best = t.name), (bestTime = t.mtime);
    }
    state.table = best;
    changed = true;
  }
  renderRuns();
  renderTables();
  if (changed) {
    writeHash();
    reconnect();
  }
}

/** Tables of the checked runs (all runs when none is). */
function tableNames(): string[] {
  const runs = state.selected.length > 0 ? state.selected.map(runOf).filter((r) => r !== undefined) : state.runs;
  return [...new Set(runs.flatMap((r) => r.tables.map((t) => t.name)))].sort();
}

function renderTables(): void {
  const select = $<HTMLSelectElement>('table');
  const names = tableNames();
  const current = [...select.options].map((o) => o.value);
  if (current.join('\n') !== names.join('\n')) {
    select.replaceChildren(...names.map((n) => el('option', '', n)));
  }
  select.value = state.table;
  select.disabled = names.length === 0;
}

function renderRuns(): void {
  const list = $('runs');
  $('no-runs').hidden = state.runs.length > 0;
  const items = new Map([...list.children].map((li) => [(li as HTMLElement).dataset.run, li as HTMLElement]));
  const order: HTMLElement[] = [];
  for (const run of state.runs) {
    let li = items.get(run.id);
    if (!li) {
      li = el('li', 'run');
      li.dataset.run = run.id;
      const label = el('label');
      const box = el('input');
      box.type = 'checkbox';
      box.addEventListener('change', () => toggleRun(run.id, box.checked));
      label.append(box, el('span', 'swatch'), el('span', 'name'), el('span', 'dot'));
      li.append(label, el('div', 'meta'), el('div', 'count'));
      items.set(run.id, li);
    }
    const checked = state.selected.includes(run.id);
    li.classList.toggle('checked', checked);
    li.classList.toggle('is-live', isLive(run));
    sub<HTMLInputElement>(li, 'input').checked = checked;
    sub(li, '.swatch').style.background = checked ? colorOf(run.id) : 'transparent';
    sub(li, '.name').textContent = run.name;
    sub(li, 'label').title = run.live ? `live rows from ${run.name}` : run.id === '.' ? state.dir : `${state.dir}/${run.id}`;
    const n = run.tables.length;
    const when = run.live ? 'socket' : lastChange(run) > 0 ? ago(lastChange(run), serverNow()) : '';
    sub(li, '.meta').textContent = `${n} ${n === 1 ? 'table' : 'tables'}${when ? ` · ${when}` : ''}`;
    sub(li, '.count').textContent = checked ? countText(run) : '';
    order.push(li);
  }
  list.replaceChildren(...order);
}

function countText(run: ServedRun): string {
  const d = state.data.get(run.id);
  if (!run.tables.some((t) => t.name === state.table)) return `no table ${state.table}`;
  if (!d) return 'loading…';
  const last = d.steps[d.steps.length - 1];
  return `${nf.format(d.total)} rows${last !== undefined && last !== null ? ` · step ${nf.format(last)}` : ''}`;
}

function toggleRun(id: string, on: boolean): void {
  state.touched = true;
  state.selected = state.selected.filter((r) => r !== id);
  if (on) state.selected.push(id);
  if (!tableNames().includes(state.table)) state.table = tableNames()[0] ?? '';
  writeHash();
  renderRuns();
  renderTables();
  reconnect();
}

// ---------------------------------------------------------------------------------------------
// Live connection: what the server's snapshot and rows events carry goes into state.data.

function onSnapshot(msg: Snapshot): void {
  state.data.set(msg.run, fromSnapshot(msg));
  dataChanged();
}

function onRows(msg: RowsEvent): void {
  const d = state.data.get(msg.run);
  if (!d) return;
  applyRows(d, msg);
  pulse();
  dataChanged();
}

let source: EventSource | null = null;

function reconnect(): void {
  if (source) source.close();
  state.data.clear();
  const p = new URLSearchParams();
  if (state.table) {
    for (const id of state.selected) if (runOf(id)?.tables.some((t) => t.name === state.table)) p.append('run', id);
    if (p.has('run')) p.set('table', state.table);
  }
  const es = new EventSource(`/api/events?${p}`);
  source = es;
  setConnection('connecting');
  es.addEventListener('open', () => setConnection('live'));
  es.addEventListener('error', () => {
    if (es.readyState !== EventSource.CLOSED) return setConnection('reconnecting'); // the browser retries by itself
    // Refused (the run or table went away): read the listing again in a moment and start over.
    setConnection('offline');
    setTimeout(refetch, 3000);
  });
  const on = <T>(name: string, handler: (data: T) => void) => es.addEventListener(name, (e) => handler(JSON.parse((e as MessageEvent<string>).data) as T));
  on<RunsBody>('runs', onRuns);
  on<Snapshot>('snapshot', onSnapshot);
  on<RowsEvent>('rows', onRows);
  on<ProblemEvent>('problem', (m) => showMessage(m.message));
  rebuildCharts();
}

function setConnection(s: string): void {
  state.connection = s;
  $('live').dataset.state = s;
  $('live-text').textContent = s;
}

let pulseTimer = 0;
function pulse(): void {
  const live = $('live');
  live.classList.add('pulse');
  clearTimeout(pulseTimer);
  pulseTimer = setTimeout(() => live.classList.remove('pulse'), 400);
}

function showMessage(text: string): void {
  const m = $('message');
  m.textContent = text;
  m.hidden = !text;
}

// ---------------------------------------------------------------------------------------------
// Charts: one per shown column; rebuilt when the checked runs change, else updated with setData.

function filterFn(): (c: string) => boolean {
  const f = state.filter.trim();
  const input = $<HTMLInputElement>('filter');
  input.classList.remove('invalid');
  if (!f) return () => true;
  try {
    const re = new RegExp(f, 'i');
    return (c) => re.test(c);
  } catch {
    input.classList.add('invalid'); // not a regex: a plain substring then
    const lower = f.toLowerCase();
    return (c) => c.toLowerCase().includes(lower);
  }
}

const collator = new Intl.Collator('en', { numeric: true });

function columnsToShow(): string[] {
  const all = new Set<string>();
  for (const id of state.selected) for (const c of state.data.get(id)?.cols.keys() ?? []) all.add(c);
  const match = filterFn();
  const cols = [...all].filter(match).sort(collator.compare);
  state.matching = cols.length;
  state.total = all.size;
  return cols.slice(0, MAX_CHARTS);
}

/** The chart's data: step, then per checked run its raw and smoothed values, aligned on step. */
function chartData(col: string): U.AlignedData {
  const tables = state.selected.map((id): U.AlignedData => {
    const d = state.data.get(id);
    const ys = d?.cols.get(col) ?? [];
    return [(d?.steps ?? []) as number[], ys, ema(ys, state.smoothing)];
  });
  if (tables.length === 0) return [[]];
  return uPlot.join(tables);
}

const axis = (): U.Axis => ({
  stroke: '#6b7280',
  font: '11px system-ui, sans-serif',
  grid: { stroke: '#eceef2', width: 1 },
  ticks: { stroke: '#e2e5ea', width: 1, size: 4 },
});

function makeChart(col: string, width: number): Chart {
  const card = el('section', 'chart');
  card.dataset.column = col;
  const head = el('header');
  const title = el('h3', '', col);
  title.title = col;
  const value = el('span', 'value');
  head.append(title, value);
  const plot = el('div', 'plot');
  card.append(head, plot);
  const series: U.Series[] = [{ label: 'step' }];
  for (const id of state.selected) {
    const c = colorOf(id);
    const name = runOf(id)?.name ?? id;
    series.push({ label: `${name} (raw)`, stroke: `${c}40`, width: 1, points: { show: false } });
    series.push({ label: name, stroke: c, width: 1.5 });
  }
  const ticks = (_u: U, splits: number[]) => splits.map(fmtTick);
  const chart: Chart = { col, card, value, plot, u: undefined as unknown as U, dirty: true, visible: true, zoomed: false, updating: false };
  chart.u = new uPlot(
    {
      width,
      height: CHART_HEIGHT,
      legend: { show: false },
      cursor: { sync: { key: 'rowlog' }, drag: { x: true, y: false }, points: { size: 5 } },
      scales: { x: { time: false } },
      axes: [
        { ...axis(), size: 32, values: ticks },
        { ...axis(), size: 54, values: ticks },
      ],
      series,
      hooks: {
        setCursor: [(u) => showValue(chart, u.cursor.idx)],
        setScale: [
          (u, key) => {
            if (key !== 'x' || chart.updating) return;
            const xs = u.data[0];
            const { min, max } = u.scales.x as U.Scale;
            chart.zoomed = xs.length > 1 && ((min ?? -Infinity) > (xs[0] as number) || (max ?? Infinity) < (xs[xs.length - 1] as number));
          },
        ],
      },
    },
    chartData(col),
    plot,
  );
  chart.dirty = false;
  showValue(chart, null);
  return chart;
}

/** The chart header: values at the cursor, else the last value of each run. */
function showValue(chart: Chart, idx: number | null | undefined): void {
  const u = chart.u;
  const parts: Array<[string, string]> = [];
  if (idx !== null && idx !== undefined && u.data[0].length > 0) {
    parts.push(['', `step ${nf.format(u.data[0][idx] as number)}`]);
    state.selected.forEach((id, k) => {
      if (state.data.has(id)) parts.push([colorOf(id), fmt(u.data[1 + 2 * k]?.[idx])]);
    });
  } else {
    for (const id of state.selected) {
      if (!state.data.has(id)) continue; // no such table in that run (or not read yet)
      const ys = state.data.get(id)?.cols.get(chart.col);
      let v: number | null | undefined;
      if (ys) for (let i = ys.length - 1; i >= 0 && v === undefined; i--) if (ys[i] !== null) v = ys[i];
      parts.push([colorOf(id), fmt(v)]);
    }
  }
  chart.value.replaceChildren(
    ...parts.map(([c, t]) => {
      const s = el('span', '', t);
      if (c) s.style.color = c;
      return s;
    }),
  );
}

const visibility = new IntersectionObserver(
  (entries) => {
    for (const e of entries) {
      const chart = state.charts.get((e.target as HTMLElement).dataset.column ?? '');
      if (!chart) continue;
      chart.visible = e.isIntersecting;
      if (chart.visible && chart.dirty) schedule();
    }
  },
  { rootMargin: '200px' },
);

function plotWidth(): number {
  const grid = $('charts');
  const first = grid.querySelector('.plot');
  if (first) return first.clientWidth;
  // One column's width in the grid: as wide as CSS makes it (min 320 px).
  const w = grid.clientWidth;
  const cols = Math.max(1, Math.floor((w + 12) / (320 + 12)));
  return Math.floor((w - 12 * (cols - 1)) / cols) - 2 * 10;
}

function destroyCharts(): void {
  for (const c of state.charts.values()) {
    visibility.unobserve(c.card);
    c.u.destroy();
  }
  state.charts.clear();
  $('charts').replaceChildren();
}

/** New charts for the checked runs (series changed). */
function rebuildCharts(): void {
  destroyCharts();
  syncCharts();
}

/** Adds and removes charts to match the shown columns, in order. */
function syncCharts(): void {
  const cols = columnsToShow();
  state.shown = cols;
  const grid = $('charts');
  for (const [col, c] of state.charts) {
    if (!cols.includes(col)) {
      visibility.unobserve(c.card);
      c.u.destroy();
      c.card.remove();
      state.charts.delete(col);
    }
  }
  let width = 0;
  const cards = cols.map((col) => {
    let c = state.charts.get(col);
    if (!c) {
      if (!width) width = plotWidth();
      c = makeChart(col, width);
      state.charts.set(col, c);
      visibility.observe(c.card);
    }
    return c.card;
  });
  const current = [...grid.children];
  if (current.length !== cards.length || current.some((n, i) => n !== cards[i])) grid.replaceChildren(...cards);
  renderStatus();
}

function renderStatus(): void {
  const status = $('status');
  const parts: HTMLElement[] = [];
  for (const id of state.selected) {
    const run = runOf(id);
    if (!run) continue;
    const d = state.data.get(id);
    const item = el('span', 'run-status');
    item.dataset.run = id;
    const sw = el('span', 'swatch');
    sw.style.background = colorOf(id);
    const rows = el('span', 'rows', countText(run));
    item.append(sw, el('span', 'name', run.name), rows);
    if (d && !d.followed) item.append(el('span', 'muted', '(csv: re-read when it changes)'));
    parts.push(item);
  }
  const cols = el('span', 'columns muted');
  const total = state.total;
  if (state.runs.length === 0) cols.textContent = '';
  else if (state.selected.length === 0) cols.textContent = 'check a run to plot it';
  else if (!state.table) cols.textContent = 'no tables yet';
  else if (total > 0 || state.data.size > 0) {
    cols.textContent = state.matching === total ? `${total} ${total === 1 ? 'column' : 'columns'}` : `${state.matching} of ${total} columns match`;
    if (state.matching > MAX_CHARTS) cols.textContent += ` · first ${MAX_CHARTS} shown, narrow the filter`;
  }
  parts.push(cols);
  status.replaceChildren(...parts);
  for (const li of $('runs').children) {
    const run = runOf((li as HTMLElement).dataset.run);
    if (run) sub(li, '.count').textContent = state.selected.includes(run.id) ? countText(run) : '';
  }
}

// ---------------------------------------------------------------------------------------------
// Redraws: at most one per animation frame, only for charts on screen.

let frame = 0;

function dataChanged(): void {
  for (const c of state.charts.values()) c.dirty = true;
  schedule();
}

function schedule(): void {
  if (!frame) frame = requestAnimationFrame(draw);
}

function draw(): void {
  frame = 0;
  syncCharts(); // new columns may have come
  for (const c of state.charts.values()) {
    if (!c.dirty || !c.visible) continue;
    c.dirty = false;
    c.updating = true;
    c.u.setData(chartData(c.col), !c.zoomed);
    c.updating = false;
    showValue(c, c.u.cursor.idx);
  }
}

// ---------------------------------------------------------------------------------------------
// Controls

function setup(): void {
  readHash();
  const filter = $<HTMLInputElement>('filter');
  const smoothing = $<HTMLInputElement>('smoothing');
  const table = $<HTMLSelectElement>('table');
  filter.value = state.filter;
  smoothing.value = String(state.smoothing);
  $('smoothing-value').textContent = state.smoothing.toFixed(2);

  filter.addEventListener('input', () => {
    state.filter = filter.value;
    writeHash();
    syncCharts();
  });
  smoothing.addEventListener('input', () => {
    state.smoothing = Number(smoothing.value);
    $('smoothing-value').textContent = state.smoothing.toFixed(2);
    writeHash();
    dataChanged();
  });
  table.addEventListener('change', () => {
    state.table = table.value;
    writeHash();
    renderRuns();
    reconnect();
  });
  new ResizeObserver(() => {
    const w = plotWidth();
    for (const c of state.charts.values()) if (Math.abs(c.u.width - w) > 1) c.u.setSize({ width: w, height: CHART_HEIGHT });
  }).observe($('charts'));
  setInterval(renderRuns, 5000); // "12 s ago" and the live dots age

  refetch();
}

/** Reads the listing, then (re)opens the event stream for what is selected. */
function refetch(): void {
  fetch('/api/runs')
    .then((r) => (r.ok ? (r.json() as Promise<RunsBody>) : Promise.reject(new Error(`/api/runs: HTTP ${r.status}`))))
    .then((body) => {
      showMessage('');
      const before = JSON.stringify([state.selected, state.table]);
      onRuns(body);
      // onRuns reconnects when it picked something; otherwise connect for what the address said.
      if (JSON.stringify([state.selected, state.table]) === before) reconnect();
    })
    .catch((err: unknown) => {
      showMessage(`cannot read the run list (${(err as Error).message ?? String(err)}); trying again`);
      setConnection('offline');
      setTimeout(refetch, 3000);
    });
}

setup();
