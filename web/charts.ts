/**
 * The charts: one per numeric column the filter shows (at most MAX_CHARTS), each with one raw
 * and one smoothed series per checked run, aligned on `$step`. They are rebuilt when the checked
 * runs change (the series change), else updated with setData, at most once per animation frame
 * and only when on screen.
 */
import type U from 'uplot';
import { $, el, sub } from './dom.js';
import { fmt, fmtTick } from './format.js';
import { ema } from './smooth.js';
import { colorOf, countText, nf, runOf, state } from './state.js';
import type { Chart } from './state.js';

/** Called with each chart made, at the end of makeChart (web/export.ts adds its buttons). */
export const chartHooks: Array<(chart: Chart) => void> = [];

const MAX_CHARTS = 100; // charts drawn at once; narrow the filter for the others
export const CHART_HEIGHT = 190;

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

/** The chart's data: x, then per checked run its raw and smoothed values (finite points only), aligned on x. */
function chartData(col: string): U.AlignedData {
  const tables = state.selected.map((id): U.AlignedData => {
    const p = state.data.get(id)?.cols.get(col);
    const xs: number[] = [];
    const ys: Array<number | null> = [];
    if (p) for (let k = 0; k < p.i.length; k++) if (Number.isFinite(p.y[k])) (xs.push(p.x[k] as number), ys.push(p.y[k] as number));
    return [xs, ys, ema(ys, state.smoothing)];
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
  for (const hook of chartHooks) hook(chart);
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
      const ys = state.data.get(id)?.cols.get(chart.col)?.y;
      const v: number | null | undefined = ys?.[ys.length - 1];
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

export function plotWidth(): number {
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
    c.u.setData(chartData(c.col), !c.zoomed);
    c.updating = false;
    showValue(c, c.u.cursor.idx);
  }
}
