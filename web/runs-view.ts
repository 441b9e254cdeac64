/**
 * The runs table's rules, pure (no DOM; unit-tested in test/web.runs-view.test.ts): what a
 * cell holds, the order a header click gives, and what the filter keeps (docs/DESIGN.md §7).
 * web/runs-table.ts draws the table with them.
 *
 * Column keys: `name`, `p:<param>` (a flattened params.json key), `s:<column>:last|min|max`
 * (a data column's figure).
 */
import type { RunSummary, SummaryBody } from '../lib/serve/protocol.js';

/** What a cell holds: a parameter's value, a figure (`'NaN'` for a non-finite last value), or nothing. */
export type Cell = string | number | boolean | null | undefined;

/** The figures of a data column the table shows. */
export const FIGURES = ['last', 'min', 'max'] as const;
/** One of {@link FIGURES}. */
export type Figure = (typeof FIGURES)[number];

/** The key of a parameter's column. */
export const paramKey = (param: string) => `p:${param}`;
/** The key of a data column's figure. */
export const statKey = (column: string, fig: Figure) => `s:${column}:${fig}`;

/** The cell of `run` under the column `key` (undefined: the run has none). */
export function cellOf(run: RunSummary, key: string): Cell {
  if (key === 'name') return run.name;
  if (key.startsWith('p:')) return run.params[key.slice(2)];
  if (key.startsWith('s:')) {
    const cut = key.lastIndexOf(':');
    const s = run.stats[key.slice(2, cut)];
    const fig = key.slice(cut + 1) as Figure;
    return s === undefined ? undefined : (s[fig] ?? undefined);
  }
  return undefined;
}

const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

/** Two present cells in ascending order: numbers numerically, before everything else; the rest as text (numeric collation). */
export function compareCells(a: NonNullable<Cell>, b: NonNullable<Cell>): number {
  const na = typeof a === 'number';
  const nb = typeof b === 'number';
  if (na && nb) return a - b;
  if (na !== nb) return na ? -1 : 1;
  return collator.compare(String(a), String(b));
}

/** `runs` ordered by the column `key` (`dir` 1 ascending, -1 descending), runs without a value last either way; stable. */
export function sortRuns(runs: readonly RunSummary[], key: string, dir: 1 | -1): RunSummary[] {
  if (key === '') return [...runs];
  const keyed = runs.map((run, i) => ({ run, i, c: cellOf(run, key) }));
  keyed.sort((x, y) => {
    const mx = x.c === undefined || x.c === null;
    const my = y.c === undefined || y.c === null;
    if (mx || my) return mx === my ? x.i - y.i : mx ? 1 : -1;
    return dir * compareCells(x.c as NonNullable<Cell>, y.c as NonNullable<Cell>) || x.i - y.i;
  });
  return keyed.map((k) => k.run);
}

/** A cell as the table and the filter write it. */
export function cellText(c: Cell): string {
  return c === undefined || c === null ? '' : String(c);
}

const COMPARISON = /^([^<>=!]+)(>=|<=|!=|=|>|<)(.*)$/;

/**
 * What the filter text keeps: each word (split at spaces) must hold. A word `key<op>value`
 * (op: `=`, `!=`, `<`, `<=`, `>`, `>=`) compares a run's value of `key`: a parameter (exactly,
 * or the last segments of one: `lr` finds `optim/lr`), `name`, or a data column's last value;
 * numerically when both sides are numbers, else as text (`=` ignoring case). Any other word is
 * a substring (ignoring case) of the run's name or of one of its `key=value` texts.
 */
export function runFilter(text: string, paramKeys: readonly string[]): (run: RunSummary) => boolean {
  const tests = text
    .trim()
    .split(/\s+/)
    .filter((w) => w !== '')
    .map((word) => {
      const m = COMPARISON.exec(word);
      if (m === null) {
        const needle = word.toLowerCase();
        return (run: RunSummary) => run.name.toLowerCase().includes(needle) || Object.entries(run.params).some(([k, v]) => `${k}=${cellText(v)}`.toLowerCase().includes(needle));
      }
      const [, key = '', op = '=', want = ''] = m;
      const param = paramKeys.includes(key) ? key : paramKeys.find((p) => p.endsWith(`/${key}`));
      const cellKey = key === 'name' ? 'name' : param !== undefined ? paramKey(param) : '';
      const num = want.trim() === '' ? Number.NaN : Number(want);
      return (run: RunSummary) => {
        const c = cellKey !== '' ? cellOf(run, cellKey) : cellOf(run, statKey(key, 'last'));
        if (c === undefined || c === null) return op === '!=';
        const order = typeof c === 'number' && !Number.isNaN(num) ? c - num : typeof c === 'string' && (op === '=' || op === '!=') ? (c.toLowerCase() === want.toLowerCase() ? 0 : 1) : compareCells(cellText(c), want);
        switch (op) {
          case '=':
            return order === 0;
          case '!=':
            return order !== 0;
          case '<':
            return order < 0;
          case '<=':
            return order <= 0;
          case '>':
            return order > 0;
          default:
            return order >= 0;
        }
      };
    });
  return (run) => tests.every((f) => f(run));
}

/** The data columns to show: those asked for that the table has, else (none asked, or none there) its first two. */
export function statColumnsOf(summary: SummaryBody, asked: readonly string[]): string[] {
  const have = asked.filter((c) => summary.columns.includes(c));
  return have.length > 0 ? have : summary.columns.slice(0, 2);
}

/** A comma list (`loss, acc`) as its items. */
export function parseList(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}
