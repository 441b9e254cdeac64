// rowlog serve: the page (docs/DESIGN.md §7). It lists the runs the server sees, plots every numeric
// column of the chosen table against the chosen x-axis with uPlot (one chart per column, one raw
// + one smoothed series per checked run, or a mean and band per group), and follows new rows
// through one EventSource (/api/events?…&x&buckets), redrawing with setData at most once per
// animation frame.
//
// TypeScript compiled by `npm run build` (web/tsconfig.json: the DOM lib, ES modules) to
// dist/web/, served as /app.js and its sibling modules. This one holds the run list, the
// address, the x-axis select and the event stream; state.ts what is shown (window.rowlog),
// charts.ts the uPlot charts (markers, log-y, zoom), runs-table.ts the runs table above them
// (/api/summary), export.ts each chart's CSV/JSON/PNG buttons, dom.ts the element helpers. The message
// types are the server's (lib/serve/protocol.ts, type-only imports). The pure parts have unit
// tests: series.ts (what a run holds, merged by the M4 rule of the server's own
// lib/serve/decimate.ts), align.ts (lines, markers, runs on one x), axis.ts (the x-axis
// choice), group.ts (a group's mean and band), runs-view.ts (the runs table's sort and filter),
// export-data.ts (what an export holds), smooth.ts (TensorBoard's smoothing), format.ts
// (numbers for people).
import type { ProblemEvent, RowsEvent, RunsBody, Snapshot } from '../lib/serve/protocol.js';
import { RELATIVE, axisName, serverAxis } from './axis.js';
import { CHART_HEIGHT, bucketsWanted, dataChanged, numericColumns, plotWidth, rebuildCharts, syncCharts } from './charts.js';
import { $, el, sub } from './dom.js';
import { installExport } from './export.js';
import { ago } from './format.js';
import { loadSummary, readRunsHash, renderRunsTable, setupRunsTable, writeRunsHash } from './runs-table.js';
import { applyRows, fromSnapshot } from './series.js';
import { colorOf, countText, isLive, lastChange, runOf, serverNow, state } from './state.js';

// ---------------------------------------------------------------------------------------------
// Settings in the address (#run=a&run=b&table=t&filter=loss&smooth=0.6&x=epoch&log=loss): a reload keeps them.

function readHash(): void {
  const p = new URLSearchParams(location.hash.slice(1));
  state.selected = p.getAll('run');
  state.table = p.get('table') ?? '';
  state.filter = p.get('filter') ?? '';
  const s = Number(p.get('smooth'));
  if (p.has('smooth') && s >= 0 && s <= 0.99) state.smoothing = s;
  readRunsHash(p);
  state.xAxis = p.get('x') || '$step';
  state.logY = new Set(p.getAll('log'));
}

function writeHash(): void {
  const p = new URLSearchParams();
  for (const r of state.selected) p.append('run', r);
  if (state.table) p.set('table', state.table);
  if (state.filter) p.set('filter', state.filter);
  p.set('smooth', String(state.smoothing));
  writeRunsHash(p);
  if (state.xAxis !== '$step') p.set('x', state.xAxis);
  for (const c of state.logY) p.append('log', c);
  history.replaceState(null, '', `#${p}`);
}

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
  loadSummary(); // the listing changed: new runs, grown tables
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
    sub(li, 'label').title = run.live ? `live rows from ${run.name}` : (run.source ?? (run.id === '.' ? state.dir : `${state.dir}/${run.id}`));
    const n = run.tables.length;
    const when = run.live ? 'socket' : lastChange(run) > 0 ? ago(lastChange(run), serverNow()) : '';
    sub(li, '.meta').textContent = `${n} ${n === 1 ? 'table' : 'tables'}${when ? ` · ${when}` : ''}`;
    sub(li, '.count').textContent = checked ? countText(run) : '';
    order.push(li);
  }
  list.replaceChildren(...order);
}

function toggleRun(id: string, on: boolean): void {
  state.touched = true;
  state.selected = state.selected.filter((r) => r !== id);
  if (on) state.selected.push(id);
  const table = state.table;
  if (!tableNames().includes(state.table)) state.table = tableNames()[0] ?? '';
  if (state.table !== table) loadSummary();
  writeHash();
  renderRuns();
  renderTables();
  renderRunsTable();
  reconnect();
}

// ---------------------------------------------------------------------------------------------
// Live connection: what the server's snapshot and rows events carry goes into state.data.

function onSnapshot(msg: Snapshot): void {
  state.data.set(msg.run, fromSnapshot(msg));
  if (axisMissing()) {
    // The x-axis is a column no checked run's table has (chosen on another table): every chart
    // would be empty, and the select would offer none of this table's columns. Back to step.
    showMessage(`no run's ${state.table} has a column ${state.xAxis}: drawn against step`);
    state.xAxis = '$step';
    writeHash();
    reconnect();
    return;
  }
  renderXAxis();
  dataChanged();
}

/**
 * The x-axis is a data column and every checked run's snapshot of the table has come with rows
 * but no point (the server leaves out rows without the axis' column): no run has that column.
 */
function axisMissing(): boolean {
  if (state.xAxis.startsWith('$')) return false;
  const ids = state.selected.filter((id) => runOf(id)?.tables.some((t) => t.name === state.table));
  const data = ids.map((id) => state.data.get(id));
  if (data.length === 0 || data.some((d) => d === undefined || d.x !== state.xAxis)) return false;
  return data.every((d) => d?.cols.size === 0) && data.some((d) => (d?.total ?? 0) > 0);
}

/** The x-axis select: step, relative time, wall time, and every numeric column of the checked runs' table. */
function renderXAxis(): void {
  const select = $<HTMLSelectElement>('x-axis');
  const cols = numericColumns();
  const values = ['$step', RELATIVE, '$time', ...cols, ...(state.xAxis.startsWith('$') || cols.includes(state.xAxis) ? [] : [state.xAxis])];
  const current = [...select.options].map((o) => o.value);
  if (current.join('\n') !== values.join('\n')) {
    select.replaceChildren(
      ...values.map((v) => {
        const o = el('option', '', axisName(v));
        o.value = v;
        return o;
      }),
    );
  }
  select.value = state.xAxis;
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
  state.zoom = undefined;
  const p = new URLSearchParams();
  if (state.table) {
    for (const id of state.selected) if (runOf(id)?.tables.some((t) => t.name === state.table)) p.append('run', id);
    if (p.has('run')) {
      p.set('table', state.table);
      p.set('x', serverAxis(state.xAxis));
      p.set('buckets', String(bucketsWanted()));
    }
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
  const xAxis = $<HTMLSelectElement>('x-axis');
  renderXAxis();
  xAxis.addEventListener('change', () => {
    state.xAxis = xAxis.value;
    showMessage('');
    writeHash();
    reconnect();
  });
  document.addEventListener('rowlog-settings', writeHash);
  table.addEventListener('change', () => {
    state.table = table.value;
    showMessage('');
    writeHash();
    renderRuns();
    reconnect();
    loadSummary();
  });
  new ResizeObserver(() => {
    const w = plotWidth();
    for (const c of state.charts.values()) if (Math.abs(c.u.width - w) > 1) c.u.setSize({ width: w, height: CHART_HEIGHT });
  }).observe($('charts'));
  setInterval(renderRuns, 5000); // "12 s ago" and the live dots age
  setupRunsTable({ toggle: toggleRun, changed: writeHash });
  installExport();

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
