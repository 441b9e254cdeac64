/**
 * The charts (docs/DESIGN.md §7, issue 15): one per numeric column the filter shows (at most
 * MAX_CHARTS), each with one raw and one smoothed series per checked run — or, grouped by a
 * parameter (state.groupBy), one mean line with a band per group (web/group.ts) — on the x-axis
 * the page chose (web/axis.ts). Only finite values are on the lines; NaN, +Infinity and
 * −Infinity are drawn as markers at their x (a `draw` hook) and named in the chart's header.
 * Per chart a log-scale y (values ≤ 0 left out). Dragging over a chart zooms every chart to that
 * x range and fetches the range again from `/api/rows` (at full resolution when it holds few
 * rows); a double click goes back to the full view, which kept taking live rows meanwhile.
 * Charts are rebuilt when their series change, else updated with setData, at most once per
 * animation frame and only when on screen.
 */
import type U from 'uplot';
import type { Snapshot } from '../lib/serve/protocol.js';
import { align, toLine } from './align.js';
import type { Line, Mark, Table } from './align.js';
import { DURATION_INCRS, RELATIVE, axisName, fmtDuration, fmtWall, serverAxis } from './axis.js';
import { $, el, sub } from './dom.js';
import { fmt, fmtTick } from './format.js';
import { groupLine, groupRuns } from './group.js';
import type { XY } from './group.js';
import { fromSnapshot, lastFinite } from './series.js';
import type { RunData } from './series.js';
import { ema } from './smooth.js';
import { colorOf, countText, nf, runOf, state } from './state.js';
import type { Chart } from './state.js';

const MAX_CHARTS = 100; // charts drawn at once; narrow the filter for the others
/** A chart's height in CSS pixels. */
export const CHART_HEIGHT = 190;
/** The colour NaN markers are drawn in (a NaN is what people look for). */
export const NAN_COLOR = '#e11d48';

/**
 * Called with each new chart at the end of its making (the export buttons add themselves to
 * `chart.head` this way); a chart is made again when its series change, so hooks run again.
 */
export const chartHooks: Array<(chart: Chart) => void> = [];

/** Tells app.ts that a setting kept in the address changed (here: a chart's log scale). */
function settingsChanged(): void {
  document.dispatchEvent(new Event('rowlog-settings'));
}

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

/** Every numeric column of the checked runs' table (the x-axis select offers them). */
export function numericColumns(): string[] {
  const all = new Set<string>();
  for (const d of state.data.values()) for (const c of d.cols.keys()) all.add(c);
  return [...all].sort(collator.compare);
}

// ---------------------------------------------------------------------------------------------
// What a chart draws: entries (a run, or a group of runs), their lines and markers.

/** One line of a chart: a checked run, or a group of them (state.groupBy). */
interface Entry {
  label: string;
  color: string;
  ids: string[];
  group: boolean;
}

function entries(): Entry[] {
  if (state.groupBy) {
    return groupRuns(state.selected, state.params, state.groupBy).map((g) => ({ label: g.label, color: colorOf(g.ids[0] as string), ids: g.ids, group: true }));
  }
  return state.selected.map((id) => ({ label: runOf(id)?.name ?? id, color: colorOf(id), ids: [id], group: false }));
}

/** What a run's chart shows: the zoom's range when zoomed (once fetched), else the full view. */
function dataOf(id: string): RunData | undefined {
  return state.zoom?.data.get(id) ?? state.data.get(id);
}

/** What is subtracted from a run's x to draw it: its start under relative time, else 0. */
function dx(id: string): number {
  if (state.xAxis !== RELATIVE) return 0;
  return state.data.get(id)?.startTime ?? state.zoom?.data.get(id)?.startTime ?? 0;
}

/** A chart's data: x, then per entry [raw, smoothed] (a run) or [lo, hi, mean] (a group); and each entry's markers. */
function chartData(chart: Chart): { data: U.AlignedData; marks: Mark[][] } {
  const log = state.logY.has(chart.col);
  const list = entries();
  // A run's line breaks where log-y leaves a value out; a group's runs are resampled (no breaks).
  const lines = list.map((e) => e.ids.map((id): Line => toLine(dataOf(id)?.cols.get(chart.col), dx(id), log, !e.group)));
  const tables: Table[] = [];
  // Groups share their bins (about one per pixel column), over every run's extent or the zoom.
  let lo = Infinity;
  let hi = -Infinity;
  for (const ls of lines) {
    for (const l of ls) {
      if (l.x.length === 0) continue;
      lo = Math.min(lo, l.x[0] as number);
      hi = Math.max(hi, l.x[l.x.length - 1] as number);
    }
  }
  const range = state.zoom ? { min: Math.max(lo, state.zoom.from), max: Math.min(hi, state.zoom.to) } : { min: lo, max: hi };
  const bins = Math.max(16, plotWidth());
  const positive = (ys: Array<number | null>) => (log ? ys.map((v) => (v !== null && v > 0 ? v : null)) : ys);
  list.forEach((e, k) => {
    const ls = lines[k] as Line[];
    if (!e.group) {
      const l = ls[0] as Line;
      tables.push({ x: l.x, ys: [l.y, ema(l.y, state.smoothing)] });
      return;
    }
    const g = range.min <= range.max ? groupLine(ls as XY[], bins, state.band, range) : undefined;
    if (g === undefined) tables.push({ x: [], ys: [[], [], []] });
    else tables.push({ x: g.x, ys: [positive(g.lo), positive(g.hi), positive(ema(g.mean, state.smoothing) as Array<number | null>)] });
  });
  const data = tables.length === 0 ? [[]] : align(tables);
  return { data: data as U.AlignedData, marks: lines.map((ls) => ls.flatMap((l) => l.marks)) };
}

// ---------------------------------------------------------------------------------------------
// x values for people

/** An x value on the chosen axis, for the header and the ticks. */
export function fmtX(v: number): string {
  if (state.xAxis === RELATIVE) return fmtDuration(v);
  if (state.xAxis === '$time') return fmtWall(v);
  return state.xAxis === '$step' ? nf.format(Math.round(v)) : fmt(v);
}

const axis = (): U.Axis => ({
  stroke: '#6b7280',
  font: '11px system-ui, sans-serif',
  grid: { stroke: '#eceef2', width: 1 },
  ticks: { stroke: '#e2e5ea', width: 1, size: 4 },
});

function xAxisOpts(): U.Axis {
  const base = { ...axis(), size: 32 };
  if (state.xAxis === '$time') return base; // uPlot's date-time ticks (opts.ms = 1: x in ms)
  if (state.xAxis === RELATIVE) return { ...base, incrs: DURATION_INCRS, values: (_u: U, splits: number[]) => splits.map(fmtDuration) };
  return { ...base, values: (_u: U, splits: number[]) => splits.map(fmtTick) };
}

// ---------------------------------------------------------------------------------------------
// Markers: NaN (a dashed line and ✕ at the top, in NAN_COLOR), +Infinity (▲ at the top), −Infinity (▼ at the bottom).

function drawMarks(u: U, chart: Chart): void {
  const ctx = u.ctx;
  const { left, top, width, height } = u.bbox;
  const r = devicePixelRatio || 1;
  const s = 5 * r;
  ctx.save();
  chart.marks.forEach((marks, k) => {
    const color = chart.colors[k] ?? NAN_COLOR;
    for (const m of marks) {
      const px = u.valToPos(m.x, 'x', true);
      if (!(px >= left - 0.5 && px <= left + width + 0.5)) continue;
      if (m.kind === 'nan') {
        ctx.strokeStyle = NAN_COLOR;
        ctx.lineWidth = r;
        ctx.setLineDash([3 * r, 3 * r]);
        ctx.beginPath();
        ctx.moveTo(px, top + 2 * s);
        ctx.lineTo(px, top + height);
        ctx.stroke();
        ctx.setLineDash([]);
        ctx.lineWidth = 2 * r;
        ctx.beginPath();
        ctx.moveTo(px - s, top + 1);
        ctx.lineTo(px + s, top + 1 + 2 * s);
        ctx.moveTo(px + s, top + 1);
        ctx.lineTo(px - s, top + 1 + 2 * s);
        ctx.stroke();
      } else {
        const up = m.kind === 'inf';
        const y0 = up ? top + 1 : top + height - 1;
        const y1 = up ? y0 + 2 * s : y0 - 2 * s;
        ctx.fillStyle = color;
        ctx.beginPath();
        ctx.moveTo(px, y0);
        ctx.lineTo(px - s, y1);
        ctx.lineTo(px + s, y1);
        ctx.closePath();
        ctx.fill();
      }
    }
  });
  ctx.restore();
}

/** The header's note of non-finite values: `NaN at step 1,234` or `2 NaN · 1 +∞`, each listed in its title. */
function showMarks(chart: Chart): void {
  const counts = { nan: 0, inf: 0, '-inf': 0 };
  const lines: string[] = [];
  let first: Mark | undefined;
  chart.marks.forEach((marks, k) => {
    for (const m of marks) {
      counts[m.kind]++;
      first ??= m;
      if (lines.length < 20) lines.push(`${chart.labels[k] ?? ''}: ${m.kind === 'nan' ? 'NaN' : m.kind === 'inf' ? '+Infinity' : '-Infinity'} at ${axisName(state.xAxis)} ${fmtX(m.x)}`);
    }
  });
  const n = counts.nan + counts.inf + counts['-inf'];
  const name = { nan: 'NaN', inf: '+∞', '-inf': '−∞' };
  if (n === 0) chart.badge.textContent = '';
  else if (n === 1 && first) chart.badge.textContent = `${name[first.kind]} at ${state.xAxis === '$step' ? 'step ' : ''}${fmtX(first.x)}`;
  else chart.badge.textContent = (['nan', 'inf', '-inf'] as const).filter((k) => counts[k] > 0).map((k) => `${counts[k]} ${name[k]}`).join(' · ');
  chart.badge.title = lines.join('\n');
  chart.badge.hidden = n === 0;
  chart.card.classList.toggle('has-nan', counts.nan > 0);
}

// ---------------------------------------------------------------------------------------------
// One chart

function makeChart(col: string, width: number): Chart {
  const card = el('section', 'chart');
  card.dataset.column = col;
  const head = el('header');
  const title = el('h3', '', col);
  title.title = col;
  const badge = el('span', 'nonfinite');
  badge.hidden = true;
  const value = el('span', 'value');
  const logBtn = el('button', 'log-toggle', 'log');
  logBtn.type = 'button';
  logBtn.title = 'log-scale y';
  const log = state.logY.has(col);
  logBtn.setAttribute('aria-pressed', String(log));
  head.append(title, badge, value, logBtn);
  const plot = el('div', 'plot');
  card.append(head, plot);

  const list = entries();
  const series: U.Series[] = [{ label: axisName(state.xAxis) }];
  const bands: U.Band[] = [];
  for (const e of list) {
    if (e.group) {
      const at = series.length;
      series.push({ label: `${e.label} (low)`, stroke: `${e.color}55`, width: 0.5, points: { show: false } });
      series.push({ label: `${e.label} (high)`, stroke: `${e.color}55`, width: 0.5, points: { show: false } });
      series.push({ label: e.label, stroke: e.color, width: 2 });
      bands.push({ series: [at + 1, at], fill: `${e.color}33` });
    } else {
      // No spanGaps: align() leaves another line's x undefined (joined over), a left-out value null (a break).
      series.push({ label: `${e.label} (raw)`, stroke: `${e.color}40`, width: 1, points: { show: false } });
      series.push({ label: e.label, stroke: e.color, width: 1.5 });
    }
  }
  const yticks = (_u: U, splits: number[]) => splits.map(fmtTick);
  const chart: Chart = {
    col, card, head, value, badge, plot, u: undefined as unknown as U, dirty: true, visible: true, updating: false,
    marks: [], colors: list.map((e) => e.color), labels: list.map((e) => e.label), groups: list.map((e) => e.group),
  };
  const first = chartData(chart);
  chart.marks = first.marks;
  chart.u = new uPlot(
    {
      width,
      height: CHART_HEIGHT,
      ms: 1, // $time is in ms
      legend: { show: false },
      cursor: { sync: { key: 'rowlog' }, drag: { x: true, y: false, setScale: false }, points: { size: 5 } },
      scales: { x: { time: state.xAxis === '$time' }, y: log ? { distr: 3 } : {} },
      axes: [xAxisOpts(), { ...axis(), size: 54, values: yticks }],
      series,
      bands,
      hooks: {
        setCursor: [(u) => showValue(chart, u.cursor.idx)],
        setSelect: [
          (u) => {
            const { left, width: w } = u.select;
            if (w < 2) return;
            const from = u.posToVal(left, 'x');
            const to = u.posToVal(left + w, 'x');
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            zoomTo(from, to);
          },
        ],
        draw: [(u) => drawMarks(u, chart)],
      },
    },
    first.data,
    plot,
  );
  chart.u.over.addEventListener('dblclick', () => unzoom());
  logBtn.addEventListener('click', () => {
    if (state.logY.has(col)) state.logY.delete(col);
    else state.logY.add(col);
    settingsChanged();
    remakeChart(col);
  });
  if (state.zoom) setRange(chart);
  chart.dirty = false;
  showMarks(chart);
  showValue(chart, null);
  for (const hook of chartHooks) hook(chart);
  return chart;
}

/** A chart made again in its place (its series or scales changed). */
function remakeChart(col: string): void {
  const old = state.charts.get(col);
  if (!old) return;
  visibility.unobserve(old.card);
  old.u.destroy();
  const c = makeChart(col, plotWidth());
  state.charts.set(col, c);
  old.card.replaceWith(c.card);
  visibility.observe(c.card);
}

/** The chart header: values at the cursor, else the last value of each line. */
function showValue(chart: Chart, idx: number | null | undefined): void {
  const u = chart.u;
  const parts: Array<[string, string]> = [];
  // Each entry's y series: a run's smoothed line, a group's mean.
  const ys: number[] = [];
  let at = 1;
  for (const g of chart.groups) {
    ys.push(g ? at + 2 : at + 1);
    at += g ? 3 : 2;
  }
  if (idx !== null && idx !== undefined && u.data[0].length > 0) {
    const x = u.data[0][idx] as number;
    parts.push(['', `${axisName(state.xAxis)} ${fmtX(x)}`]);
    ys.forEach((s, k) => parts.push([chart.colors[k] ?? '', fmt(u.data[s]?.[idx])]));
    // A marker within a few pixels of the cursor is named.
    const px = u.valToPos(x, 'x');
    chart.marks.forEach((marks, k) => {
      const m = marks.find((mk) => Math.abs(u.valToPos(mk.x, 'x') - px) <= 4);
      if (m) parts.push([m.kind === 'nan' ? NAN_COLOR : (chart.colors[k] ?? ''), m.kind === 'nan' ? 'NaN' : m.kind === 'inf' ? '+Infinity' : '-Infinity']);
    });
  } else if (chart.groups.some((g) => g)) {
    ys.forEach((s, k) => {
      const col = u.data[s] ?? [];
      let v: number | null | undefined;
      for (let i = col.length - 1; i >= 0 && v === undefined; i--) if (col[i] !== null && col[i] !== undefined) v = col[i];
      parts.push([chart.colors[k] ?? '', fmt(v)]);
    });
  } else {
    for (const id of state.selected) {
      if (!state.data.has(id)) continue; // no such table in that run (or not read yet)
      parts.push([colorOf(id), fmt(lastFinite(state.data.get(id)?.cols.get(chart.col)))]);
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

/** A chart's width in CSS pixels (the first plot's, else what the grid's CSS gives one column). */
export function plotWidth(): number {
  const grid = $('charts');
  const first = grid.querySelector('.plot');
  if (first) return first.clientWidth;
  // One column's width in the grid: as wide as CSS makes it (min 320 px).
  const w = grid.clientWidth;
  const cols = Math.max(1, Math.floor((w + 12) / (320 + 12)));
  return Math.floor((w - 12 * (cols - 1)) / cols) - 2 * 10;
}

/** Buckets to ask the server for (`buckets=`): twice the plot's width in pixels, within the server's bounds. */
export function bucketsWanted(): number {
  return Math.max(64, Math.min(16_384, Math.round(2 * plotWidth() * (devicePixelRatio || 1))));
}

function destroyCharts(): void {
  for (const c of state.charts.values()) {
    visibility.unobserve(c.card);
    c.u.destroy();
  }
  state.charts.clear();
  $('charts').replaceChildren();
}

/** New charts for the checked runs (series changed: runs, grouping, band, x-axis). */
export function rebuildCharts(): void {
  destroyCharts();
  syncCharts();
}

/** Adds and removes charts to match the shown columns, in order. */
export function syncCharts(): void {
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
  if (state.groupBy) {
    for (const g of groupRuns(state.selected, state.params, state.groupBy)) {
      const item = el('span', 'group-status');
      const sw = el('span', 'swatch band');
      sw.style.background = colorOf(g.ids[0] as string);
      item.append(sw, el('span', 'name', g.label), el('span', 'muted', state.band === 'std' ? 'mean ± std' : 'mean, min–max'));
      parts.push(item);
    }
  }
  if (state.zoom) {
    const z = el('span', 'zoom muted', `zoomed: ${axisName(state.xAxis)} ${fmtX(state.zoom.from)} – ${fmtX(state.zoom.to)}${state.zoom.pending > 0 ? ' (loading…)' : ''} · double-click a chart for all`);
    parts.push(z);
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
// Zoom: an x range for every chart, its rows fetched again per checked run.

let zoomSeq = 0;

/** Sets every chart's x scale to the zoom's range (not a user's change: no zoom of its own). */
function setRange(c: Chart): void {
  const z = state.zoom;
  if (!z) return;
  c.updating = true;
  c.u.setScale('x', { min: z.from, max: z.to });
  c.updating = false;
}

/** Zooms every chart to x from..to (on the chosen axis), fetching the range's rows of each checked run. */
export function zoomTo(from: number, to: number): void {
  if (!(from < to)) return;
  const seq = ++zoomSeq;
  const zoom = { from, to, data: new Map<string, RunData>(), pending: 0, seq };
  state.zoom = zoom;
  for (const c of state.charts.values()) setRange(c);
  const buckets = bucketsWanted();
  for (const id of state.selected) {
    if (!state.data.has(id)) continue;
    const shift = dx(id);
    const p = new URLSearchParams({ run: id, table: state.table, x: serverAxis(state.xAxis), buckets: String(buckets), from: String(from + shift), to: String(to + shift) });
    zoom.pending++;
    fetch(`/api/rows?${p}`)
      .then((r) => (r.ok ? (r.json() as Promise<Snapshot>) : Promise.reject(new Error(`/api/rows: HTTP ${r.status}`))))
      .then((snap) => {
        if (state.zoom?.seq === seq) zoom.data.set(id, fromSnapshot(snap));
      })
      .catch(() => {
        /* the full view's points are drawn for that run */
      })
      .finally(() => {
        zoom.pending--;
        if (state.zoom?.seq === seq) dataChanged();
      });
  }
  dataChanged();
}

/** Back to the full view (a double click on a chart). */
export function unzoom(): void {
  if (!state.zoom) return;
  state.zoom = undefined;
  zoomSeq++;
  dataChanged();
}

// ---------------------------------------------------------------------------------------------
// Redraws: at most one per animation frame, only for charts on screen.

let frame = 0;

/** New data: every chart redrawn at the next animation frame (those on screen). */
export function dataChanged(): void {
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
    const next = chartData(c);
    c.marks = next.marks;
    c.u.setData(next.data, !state.zoom);
    c.updating = false;
    setRange(c);
    showMarks(c);
    showValue(c, c.u.cursor.idx);
  }
}
