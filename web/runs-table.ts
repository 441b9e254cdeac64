/**
 * The runs table (docs/DESIGN.md §7, issue 15 point 3): above the charts, one row per run that
 * has the chosen table, from `/api/summary` (lib/serve/summary.ts): a tick box (the checked
 * runs, as in the run list: ticking overlays the run on the charts), the name, one column per
 * parameter (params.json flattened) and, per chosen data column (`#stat-columns`), its last /
 * min / max. A header click sorts (ascending, then descending), `#runs-filter` filters
 * (web/runs-view.ts has the rules), and the group-by and band selects set `state.groupBy` and
 * `state.band`, which the charts (charts.ts) draw. The summary is asked for again while a run
 * is pending and whenever the listing changes.
 */
import type { SummaryBody } from '../lib/serve/protocol.js';
import { rebuildCharts } from './charts.js';
import { $, el } from './dom.js';
import { fmt } from './format.js';
import { cellOf, cellText, FIGURES, paramKey, parseList, runFilter, sortRuns, statColumnsOf, statKey } from './runs-view.js';
import { colorOf, state } from './state.js';

/** What the runs table asks of the page around it (web/app.ts). */
export interface RunsTableHooks {
  /** Checks or unchecks a run, as the run list's tick box does. */
  toggle(id: string, on: boolean): void;
  /** A setting kept in the address changed: write it. */
  changed(): void;
}

let hooks: RunsTableHooks = { toggle: () => {}, changed: () => {} };
/** How soon to ask again while runs are pending (ms). */
const PENDING_MS = 300;
/** How soon to ask again after a failed request (ms). */
const RETRY_MS = 3000;

/** The runs table's settings from the address (`stats=loss,acc&rfilter=…&group=lr&band=std&sort=-p:lr`). */
export function readRunsHash(p: URLSearchParams): void {
  state.statColumns = parseList(p.get('stats') ?? '');
  state.runsFilter = p.get('rfilter') ?? '';
  state.groupBy = p.get('group') ?? '';
  state.band = p.get('band') === 'std' ? 'std' : 'minmax';
  const sort = p.get('sort') ?? '';
  state.sort = sort.startsWith('-') ? { key: sort.slice(1), dir: -1 } : { key: sort, dir: 1 };
}

/** The runs table's settings into the address. */
export function writeRunsHash(p: URLSearchParams): void {
  if (state.statColumns.length > 0) p.set('stats', state.statColumns.join(','));
  if (state.runsFilter) p.set('rfilter', state.runsFilter);
  if (state.groupBy) p.set('group', state.groupBy);
  if (state.band !== 'minmax') p.set('band', state.band);
  if (state.sort.key) p.set('sort', `${state.sort.dir < 0 ? '-' : ''}${state.sort.key}`);
}

// ---------------------------------------------------------------------------------------------
// The summary: asked for once at a time, again while pending.

let inFlight = false;
let again = false;
let timer = 0;

/** Asks `/api/summary` for the current table (again after the answer when one is under way). */
export function loadSummary(): void {
  clearTimeout(timer);
  if (inFlight) {
    again = true;
    return;
  }
  const table = state.table;
  if (!table) return applySummary(null);
  inFlight = true;
  fetch(`/api/summary?table=${encodeURIComponent(table)}`)
    .then((r) => (r.ok ? (r.json() as Promise<SummaryBody>) : Promise.reject(new Error(`HTTP ${r.status}`))))
    .then((body) => {
      if (table !== state.table) again = true;
      else {
        applySummary(body);
        if (body.runs.some((r) => r.pending)) timer = setTimeout(loadSummary, PENDING_MS);
      }
    })
    .catch(() => {
      $('runs-table-count').textContent = 'cannot read the runs table; trying again';
      timer = setTimeout(loadSummary, RETRY_MS);
    })
    .finally(() => {
      inFlight = false;
      if (again) {
        again = false;
        loadSummary();
      }
    });
}

function applySummary(body: SummaryBody | null): void {
  const before = JSON.stringify([...state.params]);
  state.summary = body;
  state.params = new Map((body?.runs ?? []).map((r) => [r.id, r.params]));
  renderGroupBy();
  renderRunsTable();
  // The charts draw groups from state.params: draw them again when the params a grouping uses came or changed.
  if (state.groupBy && JSON.stringify([...state.params]) !== before) rebuildCharts();
}

function renderGroupBy(): void {
  const select = $<HTMLSelectElement>('group-by');
  const keys = state.summary?.params ?? [];
  const want = ['', ...keys];
  if (state.groupBy && !keys.includes(state.groupBy)) want.push(state.groupBy); // from the address, before the params came
  if ([...select.options].map((o) => o.value).join('\n') !== want.join('\n')) {
    select.replaceChildren(
      ...want.map((k) => {
        const o = el('option', '', k === '' ? 'none' : k);
        o.value = k;
        return o;
      }),
    );
  }
  select.value = state.groupBy;
  $<HTMLSelectElement>('band').value = state.band;
}

// ---------------------------------------------------------------------------------------------
// The table

function header(text: string, key: string, cls = ''): HTMLTableCellElement {
  const th = el('th', cls, text);
  th.dataset.sort = key;
  th.title = `sort by ${text}`;
  th.tabIndex = 0; // Enter or Space sorts too
  if (state.sort.key === key) th.dataset.dir = state.sort.dir > 0 ? 'asc' : 'desc';
  return th;
}

/** Draws the table from `state.summary` and the settings (all of it: 100 runs × 30 columns is a few thousand cells). */
export function renderRunsTable(): void {
  const summary = state.summary;
  const count = $('runs-table-count');
  const thead = $<HTMLTableSectionElement>('runs-table-head');
  const tbody = $<HTMLTableSectionElement>('runs-table-body');
  if (summary === null) {
    count.textContent = state.table ? 'loading…' : '';
    thead.replaceChildren();
    tbody.replaceChildren();
    return;
  }
  const params = summary.params;
  const cols = statColumnsOf(summary, state.statColumns);
  const input = $<HTMLInputElement>('stat-columns');
  input.placeholder = summary.columns.slice(0, 2).join(',') || 'loss,acc';
  input.title = `columns of ${summary.table}: ${summary.columns.join(', ')}`;

  // Two header rows: the parameters and each data column's name over its last / min / max.
  const top = el('tr');
  const tick = el('th', 'tick');
  tick.rowSpan = 2;
  const name = header('name', 'name', 'name');
  name.rowSpan = 2;
  top.append(tick, name);
  for (const p of params) {
    const th = header(p, paramKey(p), 'param');
    th.rowSpan = 2;
    top.append(th);
  }
  const sub = el('tr');
  for (const c of cols) {
    const th = el('th', 'stat-group', c);
    th.colSpan = FIGURES.length;
    top.append(th);
    for (const f of FIGURES) sub.append(header(f, statKey(c, f), 'stat'));
  }
  thead.replaceChildren(top, sub);

  const shown = sortRuns(summary.runs.filter(runFilter(state.runsFilter, params)), state.sort.key, state.sort.dir);
  const rows = shown.map((run) => {
    const tr = el('tr');
    tr.dataset.run = run.id;
    const checked = state.selected.includes(run.id);
    tr.classList.toggle('checked', checked);
    const box = el('input');
    box.type = 'checkbox';
    box.checked = checked;
    box.dataset.run = run.id;
    box.setAttribute('aria-label', `plot ${run.name}`);
    const tickCell = el('td', 'tick');
    tickCell.append(box);
    const nameCell = el('td', 'name');
    const sw = el('span', 'swatch');
    if (checked) sw.style.background = colorOf(run.id);
    nameCell.append(sw, el('span', '', run.name));
    if (run.pending) nameCell.append(el('span', 'muted', ' …'));
    nameCell.title = run.id;
    tr.append(tickCell, nameCell);
    for (const p of params) {
      const td = el('td', 'param', cellText(run.params[p]));
      td.dataset.key = paramKey(p);
      tr.append(td);
    }
    for (const c of cols) {
      for (const f of FIGURES) {
        const v = cellOf(run, statKey(c, f));
        const td = el('td', 'stat', typeof v === 'number' ? fmt(v) : v === undefined || v === null ? '' : String(v));
        if (typeof v === 'number') td.title = String(v);
        else if (v === 'NaN' || v === 'Infinity' || v === '-Infinity') td.classList.add('bad');
        td.dataset.key = statKey(c, f);
        tr.append(td);
      }
    }
    return tr;
  });
  tbody.replaceChildren(...rows);
  const pending = summary.runs.filter((r) => r.pending).length;
  const total = summary.runs.length;
  count.textContent = `${shown.length === total ? `${total}` : `${shown.length} of ${total}`} ${total === 1 ? 'run' : 'runs'}${pending > 0 ? ` · reading ${pending}…` : ''}`;
}

/** Wires the table's controls (once, at start; the settings are read from the address before). */
export function setupRunsTable(h: RunsTableHooks): void {
  hooks = h;
  const filter = $<HTMLInputElement>('runs-filter');
  const columns = $<HTMLInputElement>('stat-columns');
  const groupBy = $<HTMLSelectElement>('group-by');
  const band = $<HTMLSelectElement>('band');
  filter.value = state.runsFilter;
  columns.value = state.statColumns.join(',');
  renderGroupBy();
  filter.addEventListener('input', () => {
    state.runsFilter = filter.value;
    hooks.changed();
    renderRunsTable();
  });
  columns.addEventListener('input', () => {
    state.statColumns = parseList(columns.value);
    hooks.changed();
    renderRunsTable();
  });
  groupBy.addEventListener('change', () => {
    state.groupBy = groupBy.value;
    hooks.changed();
    rebuildCharts();
  });
  band.addEventListener('change', () => {
    state.band = band.value === 'std' ? 'std' : 'minmax';
    hooks.changed();
    rebuildCharts();
  });
  const sortBy = (e: Event) => {
    const th = (e.target as HTMLElement).closest<HTMLElement>('th[data-sort]');
    const key = th?.dataset.sort;
    if (key === undefined) return;
    e.preventDefault();
    state.sort = state.sort.key === key ? { key, dir: state.sort.dir > 0 ? -1 : 1 } : { key, dir: 1 };
    hooks.changed();
    renderRunsTable();
    $('runs-table-head').querySelector<HTMLElement>(`th[data-sort="${CSS.escape(key)}"]`)?.focus();
  };
  $('runs-table-head').addEventListener('click', sortBy);
  $('runs-table-head').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') sortBy(e);
  });
  $('runs-table-body').addEventListener('change', (e) => {
    const box = e.target as HTMLInputElement;
    if (box.dataset.run === undefined) return;
    hooks.toggle(box.dataset.run, box.checked); // the page draws the table again
  });
}
