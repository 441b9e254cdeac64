// rowlog serve: the page. A plain browser module (no build step). It lists the runs the server
// sees, plots every numeric column of the chosen table against $step with uPlot (one chart per
// column, one raw + one smoothed series per checked run), and follows new rows through one
// EventSource (/api/events), redrawing with setData at most once per animation frame.
//
// Smoothing is TensorBoard's: a debiased exponential moving average over the points held.
// The raw line is always drawn faint under the smoothed one (at 0 they are the same line).
/* global uPlot */

const MAX_CHARTS = 100; // charts drawn at once; narrow the filter for the others
const MAX_POINTS = 10_000; // points held per run before halving (the server strides the same way)
const CHART_HEIGHT = 190;
const LIVE_MS = 15_000; // a run whose files changed this recently is shown as being logged
const PALETTE = ['#2563eb', '#dc2626', '#059669', '#9333ea', '#ea580c', '#0891b2', '#db2777', '#65a30d', '#4f46e5', '#b45309'];

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

/** Everything the page shows; `window.rowlog` for a look from the console (and the tests). */
const state = {
  dir: '',
  /** The server's listing: [{id, name, live, startTime, tables: [{name, file, format, size, mtime}]}]. */
  runs: [],
  /** Server clock minus ours. */
  skew: 0,
  /** Checked run ids, in the order they were checked (their colours follow it). */
  selected: [],
  table: '',
  /** The user has checked or unchecked a run: no more picking one for them. */
  touched: false,
  filter: '',
  smoothing: 0.6,
  /** run id → {total, stride, followed, format, index: [], steps: [], cols: Map(name → values[]), tip: bool} */
  data: new Map(),
  /** column → chart */
  charts: new Map(),
  /** The columns the filter shows, in order. */
  shown: [],
  /** Columns matching the filter (shown or not), and all columns of the checked runs. */
  matching: 0,
  total: 0,
  connection: 'connecting',
};
window.rowlog = state;

// ---------------------------------------------------------------------------------------------
// Settings in the address (#run=a&run=b&table=t&filter=loss&smooth=0.6): a reload keeps them.

function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  state.selected = p.getAll('run');
  state.table = p.get('table') ?? '';
  state.filter = p.get('filter') ?? '';
  const s = Number(p.get('smooth'));
  if (p.has('smooth') && s >= 0 && s <= 0.99) state.smoothing = s;
}

function writeHash() {
  const p = new URLSearchParams();
  for (const r of state.selected) p.append('run', r);
  if (state.table) p.set('table', state.table);
  if (state.filter) p.set('filter', state.filter);
  p.set('smooth', String(state.smoothing));
  history.replaceState(null, '', `#${p}`);
}

// ---------------------------------------------------------------------------------------------
// Formatting

const nf = new Intl.NumberFormat('en-US');

/** A value for people: 4 significant digits, exponent form when very large or small. */
function fmt(v) {
  if (v === null || v === undefined) return '–';
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}

/** Tick labels: as short as they can be. */
function fmtTick(v) {
  if (v === null || v === undefined) return '';
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(1);
  return String(Number(v.toPrecision(6)));
}

function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() + state.skew - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

const runOf = (id) => state.runs.find((r) => r.id === id);
const colorOf = (id) => PALETTE[Math.max(0, state.selected.indexOf(id)) % PALETTE.length];
const lastChange = (run) => run.tables.reduce((m, t) => Math.max(m, t.mtime), 0);
const isLive = (run) => Date.now() + state.skew - lastChange(run) < LIVE_MS;

// ---------------------------------------------------------------------------------------------
// Run list and table picker

function onRuns(body) {
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
    let best = tables[0];
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
function tableNames() {
  const runs = state.selected.length > 0 ? state.selected.map(runOf).filter(Boolean) : state.runs;
  return [...new Set(runs.flatMap((r) => r.tables.map((t) => t.name)))].sort();
}

function renderTables() {
  const select = /** @type {HTMLSelectElement} */ ($('table'));
  const names = tableNames();
  const current = [...select.options].map((o) => o.value);
  if (current.join('\n') !== names.join('\n')) {
    select.replaceChildren(...names.map((n) => el('option', '', n)));
  }
  select.value = state.table;
  select.disabled = names.length === 0;
}

function renderRuns() {
  const list = $('runs');
  $('no-runs').hidden = state.runs.length > 0;
  const items = new Map([...list.children].map((li) => [li.dataset.run, li]));
  const order = [];
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
    li.querySelector('input').checked = checked;
    li.querySelector('.swatch').style.background = checked ? colorOf(run.id) : 'transparent';
    li.querySelector('.name').textContent = run.name;
    li.querySelector('label').title = run.live ? `live rows from ${run.name}` : run.id === '.' ? state.dir : `${state.dir}/${run.id}`;
    const n = run.tables.length;
    const when = run.live ? 'socket' : lastChange(run) > 0 ? ago(lastChange(run)) : '';
    li.querySelector('.meta').textContent = `${n} ${n === 1 ? 'table' : 'tables'}${when ? ` · ${when}` : ''}`;
    li.querySelector('.count').textContent = checked ? countText(run) : '';
    order.push(li);
  }
  list.replaceChildren(...order);
}

function countText(run) {
  const d = state.data.get(run.id);
  if (!run.tables.some((t) => t.name === state.table)) return `no table ${state.table}`;
  if (!d) return 'loading…';
  const steps = d.steps;
  const last = steps.length > 0 ? steps[steps.length - 1] : undefined;
  return `${nf.format(d.total)} rows${last !== undefined ? ` · step ${nf.format(last)}` : ''}`;
}

function toggleRun(id, on) {
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
// Data held per run: what the server's snapshot and rows events carry.

/** Appends a block ({columns, index, data}) to a run's data; the last point may be an off-grid tip. */
function appendBlock(d, block) {
  if (d.tip) {
    // The previous last row was only shown until the next one came: drop it.
    d.index.pop();
    d.steps.pop();
    for (const ys of d.cols.values()) ys.pop();
    d.tip = false;
  }
  const n0 = d.index.length;
  const stepCol = block.columns.indexOf('$step');
  block.columns.forEach((c, ci) => {
    if (c === '$step') return;
    let ys = d.cols.get(c);
    if (!ys) d.cols.set(c, (ys = new Array(n0).fill(null)));
    ys.push(...block.data[ci]);
  });
  d.index.push(...block.index);
  d.steps.push(...(stepCol >= 0 ? block.data[stepCol] : block.index));
  const n1 = d.index.length;
  for (const ys of d.cols.values()) while (ys.length < n1) ys.push(null);
  d.tip = n1 > 0 && d.index[n1 - 1] % d.stride !== 0;
}

/** Keeps only the points on the grid of `stride` (a coarser one, as the table grew). */
function restride(d, stride) {
  d.stride = stride;
  const keep = [];
  d.index.forEach((ix, k) => {
    if (ix % stride === 0 || k === d.index.length - 1) keep.push(k);
  });
  if (keep.length === d.index.length) return;
  const pick = (a) => keep.map((k) => a[k]);
  d.index = pick(d.index);
  d.steps = pick(d.steps);
  for (const [c, ys] of d.cols) d.cols.set(c, pick(ys));
}

function onSnapshot(msg) {
  const d = { total: msg.total, stride: msg.stride, followed: msg.followed, format: msg.format, index: [], steps: [], cols: new Map(), tip: false };
  appendBlock(d, msg.block);
  state.data.set(msg.run, d);
  dataChanged();
}

function onRows(msg) {
  const d = state.data.get(msg.run);
  if (!d) return;
  if (d.tip) {
    d.index.pop();
    d.steps.pop();
    for (const ys of d.cols.values()) ys.pop();
    d.tip = false;
  }
  if (msg.stride > d.stride) restride(d, msg.stride);
  d.total = msg.total;
  appendBlock(d, msg.block);
  while (d.index.length > 2 * MAX_POINTS) restride(d, d.stride * 2);
  pulse();
  dataChanged();
}

// ---------------------------------------------------------------------------------------------
// Live connection

let source = null;

function reconnect() {
  if (source) source.close();
  state.data.clear();
  const p = new URLSearchParams();
  if (state.table) {
    for (const id of state.selected) if (runOf(id)?.tables.some((t) => t.name === state.table)) p.append('run', id);
    if (p.has('run')) p.set('table', state.table);
  }
  source = new EventSource(`/api/events?${p}`);
  setConnection('connecting');
  source.addEventListener('open', () => setConnection('live'));
  source.addEventListener('error', () => {
    if (source.readyState !== EventSource.CLOSED) return setConnection('reconnecting'); // the browser retries by itself
    // Refused (the run or table went away): read the listing again in a moment and start over.
    setConnection('offline');
    setTimeout(refetch, 3000);
  });
  source.addEventListener('runs', (e) => onRuns(JSON.parse(e.data)));
  source.addEventListener('snapshot', (e) => onSnapshot(JSON.parse(e.data)));
  source.addEventListener('rows', (e) => onRows(JSON.parse(e.data)));
  source.addEventListener('problem', (e) => showMessage(JSON.parse(e.data).message));
  rebuildCharts();
}

function setConnection(s) {
  state.connection = s;
  const live = $('live');
  live.dataset.state = s;
  $('live-text').textContent = s;
}

let pulseTimer = 0;
function pulse() {
  const live = $('live');
  live.classList.add('pulse');
  clearTimeout(pulseTimer);
  pulseTimer = setTimeout(() => live.classList.remove('pulse'), 400);
}

function showMessage(text) {
  const m = $('message');
  m.textContent = text;
  m.hidden = !text;
}

// ---------------------------------------------------------------------------------------------
// Charts: one per shown column; rebuilt when the checked runs change, else updated with setData.

function filterFn() {
  const f = state.filter.trim();
  const input = /** @type {HTMLInputElement} */ ($('filter'));
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

function columnsToShow() {
  const all = new Set();
  for (const id of state.selected) for (const c of state.data.get(id)?.cols.keys() ?? []) all.add(c);
  const match = filterFn();
  const cols = [...all].filter(match).sort(collator.compare);
  state.matching = cols.length;
  state.total = all.size;
  return cols.slice(0, MAX_CHARTS);
}

/** Debiased EMA (TensorBoard's smoothing); null and undefined points are left as they are. */
function ema(ys, w) {
  if (w <= 0) return ys;
  const out = new Array(ys.length);
  let last = 0;
  let n = 0;
  for (let i = 0; i < ys.length; i++) {
    const v = ys[i];
    if (v === null || v === undefined) {
      out[i] = v;
      continue;
    }
    last = last * w + (1 - w) * v;
    n++;
    out[i] = last / (1 - w ** n);
  }
  return out;
}

/** The chart's data: step, then per checked run its raw and smoothed values, aligned on step. */
function chartData(col) {
  const tables = state.selected.map((id) => {
    const d = state.data.get(id);
    const ys = d?.cols.get(col) ?? [];
    return [d?.steps ?? [], ys, ema(ys, state.smoothing)];
  });
  if (tables.length === 0) return [[]];
  return uPlot.join(tables);
}

const axis = () => ({
  stroke: '#6b7280',
  font: '11px system-ui, sans-serif',
  grid: { stroke: '#eceef2', width: 1 },
  ticks: { stroke: '#e2e5ea', width: 1, size: 4 },
});

function makeChart(col, width) {
  const card = el('section', 'chart');
  card.dataset.column = col;
  const head = el('header');
  const title = el('h3', '', col);
  title.title = col;
  const value = el('span', 'value');
  head.append(title, value);
  const plot = el('div', 'plot');
  card.append(head, plot);
  const chart = { col, card, value, plot, u: null, dirty: true, visible: true, zoomed: false, updating: false };
  const series = [{ label: 'step' }];
  for (const id of state.selected) {
    const c = colorOf(id);
    const name = runOf(id)?.name ?? id;
    series.push({ label: `${name} (raw)`, stroke: `${c}40`, width: 1, points: { show: false } });
    series.push({ label: name, stroke: c, width: 1.5 });
  }
  chart.u = new uPlot(
    {
      width,
      height: CHART_HEIGHT,
      legend: { show: false },
      cursor: { sync: { key: 'rowlog' }, drag: { x: true, y: false }, points: { size: 5 } },
      scales: { x: { time: false } },
      axes: [
        { ...axis(), size: 32, values: (u, splits) => splits.map(fmtTick) },
        { ...axis(), size: 54, values: (u, splits) => splits.map(fmtTick) },
      ],
      series,
      hooks: {
        setCursor: [(u) => showValue(chart, u.cursor.idx)],
        setScale: [
          (u, key) => {
            if (key !== 'x' || chart.updating) return;
            const xs = u.data[0];
            const { min, max } = u.scales.x;
            chart.zoomed = xs.length > 1 && (min > xs[0] || max < xs[xs.length - 1]);
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
function showValue(chart, idx) {
  const u = chart.u;
  const parts = [];
  if (idx !== null && idx !== undefined && u.data[0].length > 0) {
    parts.push(['', `step ${nf.format(u.data[0][idx])}`]);
    state.selected.forEach((id, k) => {
      if (state.data.has(id)) parts.push([colorOf(id), fmt(u.data[1 + 2 * k]?.[idx])]);
    });
  } else {
    state.selected.forEach((id) => {
      if (!state.data.has(id)) return; // no such table in that run (or not read yet)
      const ys = state.data.get(id)?.cols.get(chart.col);
      let v;
      if (ys) for (let i = ys.length - 1; i >= 0 && v === undefined; i--) if (ys[i] !== null) v = ys[i];
      parts.push([colorOf(id), fmt(v)]);
    });
  }
  chart.value.replaceChildren(
    ...parts.map(([c, t]) => {
      const s = el('span', '', t);
      if (c) s.style.color = c;
      return s;
    }),
  );
}

const visibility = new IntersectionObserver((entries) => {
  for (const e of entries) {
    const chart = state.charts.get(/** @type {HTMLElement} */ (e.target).dataset.column);
    if (!chart) continue;
    chart.visible = e.isIntersecting;
    if (chart.visible && chart.dirty) schedule();
  }
}, { rootMargin: '200px' });

function plotWidth() {
  const grid = $('charts');
  const first = grid.querySelector('.plot');
  if (first) return first.clientWidth;
  // One column's width in the grid: as wide as CSS makes it (min 320 px).
  const w = grid.clientWidth;
  const cols = Math.max(1, Math.floor((w + 12) / (320 + 12)));
  return Math.floor((w - 12 * (cols - 1)) / cols) - 2 * 10;
}

function destroyCharts() {
  for (const c of state.charts.values()) {
    visibility.unobserve(c.card);
    c.u.destroy();
  }
  state.charts.clear();
  $('charts').replaceChildren();
}

/** New charts for the checked runs (series changed). */
function rebuildCharts() {
  destroyCharts();
  syncCharts();
}

/** Adds and removes charts to match the shown columns, in order. */
function syncCharts() {
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

function renderStatus() {
  const status = $('status');
  const parts = [];
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
  const total = state.total ?? 0;
  if (state.runs.length === 0) cols.textContent = '';
  else if (state.selected.length === 0) cols.textContent = 'check a run to plot it';
  else if (!state.table) cols.textContent = 'no tables yet';
  else if (total > 0 || state.data.size > 0) {
    cols.textContent =
      state.matching === total ? `${total} ${total === 1 ? 'column' : 'columns'}` : `${state.matching} of ${total} columns match`;
    if (state.matching > MAX_CHARTS) cols.textContent += ` · first ${MAX_CHARTS} shown, narrow the filter`;
  }
  parts.push(cols);
  status.replaceChildren(...parts);
  for (const li of $('runs').children) {
    const run = runOf(li.dataset.run);
    if (run) li.querySelector('.count').textContent = state.selected.includes(run.id) ? countText(run) : '';
  }
}

// ---------------------------------------------------------------------------------------------
// Redraws: at most one per animation frame, only for charts on screen.

let frame = 0;

function dataChanged() {
  for (const c of state.charts.values()) c.dirty = true;
  schedule();
}

function schedule() {
  if (!frame) frame = requestAnimationFrame(draw);
}

function draw() {
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

function setup() {
  readHash();
  const filter = /** @type {HTMLInputElement} */ ($('filter'));
  const smoothing = /** @type {HTMLInputElement} */ ($('smoothing'));
  const table = /** @type {HTMLSelectElement} */ ($('table'));
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
function refetch() {
  fetch('/api/runs')
    .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`/api/runs: HTTP ${r.status}`))))
    .then((body) => {
      showMessage('');
      const before = JSON.stringify([state.selected, state.table]);
      onRuns(body);
      // onRuns reconnects when it picked something; otherwise connect for what the address said.
      if (JSON.stringify([state.selected, state.table]) === before) reconnect();
    })
    .catch((err) => {
      showMessage(`cannot read the run list (${err.message ?? err}); trying again`);
      setConnection('offline');
      setTimeout(refetch, 3000);
    });
}

setup();
