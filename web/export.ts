/**
 * Export (docs/DESIGN.md §7, issue 15 point 4): per chart, three buttons in its header: CSV and
 * JSON of the series as the chart shows them now (only the rows inside its current x range, so
 * a zoom exports what is zoomed into; its NaN and ±Infinity markers as rows of their own, the
 * value by name in the run's raw series or the group's mean), and PNG of the chart (its uPlot canvas on white, under
 * its title). Each is downloaded as `<table>-<column>.<ext>` through a blob URL and an
 * `<a download>` (the page's CSP lets a download of a blob: URL through).
 *
 * What is exported is web/export-data.ts's (pure); {@link installExport} registers the buttons
 * with charts.ts's `chartHooks`.
 */
import { chartHooks } from './charts.js';
import { el } from './dom.js';
import { fileName, toCsv, toJson, visibleData } from './export-data.js';
import type { MarkValue } from './export-data.js';
import { state } from './state.js';
import type { Chart } from './state.js';

/** Downloads `blob` as `name` through a blob URL. */
function download(blob: Blob, name: string): void {
  const a = el('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
}

/** Height of the PNG's title band, in CSS pixels. */
export const TITLE_PX = 24;

/** The chart as a PNG: the plot's canvas on white, the column's name above it. */
function png(chart: Chart): Promise<Blob> {
  const src = chart.u.ctx.canvas;
  const ratio = src.width / Math.max(1, chart.u.width);
  const band = Math.round(TITLE_PX * ratio);
  const c = document.createElement('canvas');
  c.width = src.width;
  c.height = src.height + band;
  const g = c.getContext('2d') as CanvasRenderingContext2D;
  g.fillStyle = '#ffffff';
  g.fillRect(0, 0, c.width, c.height);
  g.fillStyle = '#1f2937';
  g.font = `600 ${Math.round(13 * ratio)}px system-ui, sans-serif`;
  g.textBaseline = 'middle';
  g.fillText(state.table ? `${chart.col} (${state.table})` : chart.col, Math.round(8 * ratio), band / 2);
  g.drawImage(src, 0, band);
  return new Promise((resolve, reject) => c.toBlob((b) => (b ? resolve(b) : reject(new Error('toBlob gave nothing'))), 'image/png'));
}

/**
 * The chart's markers as export values: a run's NaN / ±Infinity in its raw series, a group's in
 * its mean (charts.ts's series order: per run raw, smoothed; per group low, high, mean).
 */
function markValues(chart: Chart): MarkValue[] {
  const out: MarkValue[] = [];
  let at = 1;
  chart.groups.forEach((group, k) => {
    const series = group ? at + 2 : at;
    for (const m of chart.marks[k] ?? []) out.push({ series, x: m.x, y: m.kind === 'nan' ? Number.NaN : m.kind === 'inf' ? Infinity : -Infinity });
    at += group ? 3 : 2;
  });
  return out;
}

/** Puts the CSV / JSON / PNG buttons into a chart's header. */
function addButtons(chart: Chart): void {
  const bar = el('span', 'export');
  const button = (label: string, title: string, run: () => void) => {
    const b = el('button', `export-${label.toLowerCase()}`, label);
    b.type = 'button';
    b.title = title;
    b.addEventListener('click', run);
    bar.append(b);
  };
  button('CSV', 'download the visible series as CSV', () => download(new Blob([toCsv(visibleData(chart.u, markValues(chart)))], { type: 'text/csv' }), fileName(state.table, chart.col, 'csv')));
  button('JSON', 'download the visible series as JSON', () => download(new Blob([toJson(visibleData(chart.u, markValues(chart)))], { type: 'application/json' }), fileName(state.table, chart.col, 'json')));
  button('PNG', 'download the chart as PNG', () => {
    png(chart)
      .then((b) => download(b, fileName(state.table, chart.col, 'png')))
      .catch(() => undefined);
  });
  (chart.card.querySelector('header') ?? chart.card).append(bar);
}

/** Registers the export buttons for every chart made from now on. */
export function installExport(): void {
  if (!chartHooks.includes(addButtons)) chartHooks.push(addButtons);
}
