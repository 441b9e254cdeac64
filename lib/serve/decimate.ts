/**
 * Striding (docs/DESIGN.md §7): how serve keeps a 2M-row table down to a few thousand points, and how
 * the page keeps what it holds on the same points as rows keep coming.
 *
 * The rule, in one place: a table of `total` rows is shown as the rows whose index is a multiple
 * of `stride`, plus its last row; `stride` is a power of 2, doubled whenever more than `max`
 * rows would be on the grid. Doubling keeps every other point of the old grid, so a client
 * that holds points of a finer grid only drops some ({@link onGrid}) and never needs a re-read.
 *
 * Pure and free of Node: the server imports it, and the page loads the same compiled file
 * (dist/lib/serve/decimate.js, served at /lib/serve/decimate.js) as an ES module.
 */
import type { Block } from './protocol.js';

/** Most rows of a table kept per run, by default (serve's `maxPoints`). */
export const MAX_POINTS = 10_000;
/** Most values (rows × columns) in one snapshot, per point of `max`: wide tables get a coarser stride. */
export const VALUES_PER_POINT = 400;

/** Numeric cells of one row: `$step` and the data columns; non-finite values become null. */
export type NumRow = Map<string, number | null>;

/** A kept row and its index in the table. */
export interface IndexedRow {
  index: number;
  row: NumRow;
}

/** `row`'s numbers: `$step` (else `index`) and data columns; `$`-columns other than `$step` are left out. */
export function numericRow(row: Record<string, unknown>, index: number): NumRow {
  const out: NumRow = new Map();
  const step = row.$step;
  out.set('$step', typeof step === 'number' && Number.isFinite(step) ? step : index);
  for (const k in row) {
    if (k.charCodeAt(0) === 36 /* $ */) continue;
    const v = row[k];
    if (typeof v === 'number') out.set(k, Number.isFinite(v) ? v : null);
  }
  return out;
}

/** The smallest stride (1, 2, 4, …, at least `stride`) that puts at most `max` of `total` rows on the grid. */
export function strideFor(total: number, max: number, stride = 1): number {
  while (total > max * stride) stride *= 2;
  return stride;
}

/**
 * The positions in `index` (row indexes, ascending) that are on the grid of `stride`, and the
 * last position too when `keepLast` (the table's last row is shown until the next one comes).
 */
export function onGrid(index: readonly number[], stride: number, keepLast = false): number[] {
  const keep: number[] = [];
  for (let k = 0; k < index.length; k++) if ((index[k] as number) % stride === 0 || (keepLast && k === index.length - 1)) keep.push(k);
  return keep;
}

/** Rows in columns (see {@link Block}). */
export function toBlock(rows: readonly IndexedRow[], columns: string[]): Block {
  return {
    columns,
    index: rows.map((r) => r.index),
    data: columns.map((c) => rows.map((r) => r.row.get(c) ?? null)),
  };
}

/**
 * Keeps every `stride`-th row of a growing table (see the module comment); the last row is kept
 * apart. Memory: O(max × columns).
 */
export class Decimator {
  total = 0;
  stride = 1;
  readonly kept: IndexedRow[] = [];
  last: IndexedRow | undefined;
  readonly columns = new Set<string>(['$step']);

  constructor(
    readonly max: number,
    /** Keep the rows (a snapshot, a live store) or only count them (a page's live stream). */
    readonly store = true,
  ) {}

  /** Adds the next row; true when it is on the stride grid. */
  push(row: NumRow): boolean {
    const index = this.total++;
    this.last = { index, row };
    for (const k of row.keys()) this.columns.add(k);
    this.stride = strideFor(this.total, this.max, this.stride);
    if (index % this.stride !== 0) return false;
    if (this.store) {
      this.kept.push({ index, row });
      if (this.kept.length > this.max) this.restride();
    }
    return true;
  }

  /**
   * Adds rows appended to the table and returns what a client holding the grid needs of them:
   * those on the grid as it is after the last one (it may have doubled meanwhile), and the last.
   */
  append(rows: readonly NumRow[]): IndexedRow[] {
    const kept: IndexedRow[] = [];
    for (const row of rows) if (this.push(row)) kept.push(this.last as IndexedRow);
    const last = this.last;
    if (last !== undefined && rows.length > 0 && kept[kept.length - 1] !== last) kept.push(last);
    return kept.filter((k) => k.index % this.stride === 0 || k === last);
  }

  /** Drops the kept rows that are off the current grid. */
  restride(): void {
    const keep = onGrid(
      this.kept.map((k) => k.index),
      this.stride,
    );
    for (let w = 0; w < keep.length; w++) this.kept[w] = this.kept[keep[w] as number] as IndexedRow; // keep[w] >= w
    this.kept.length = keep.length;
  }

  /** The kept rows and the last one, in columns: at most `max` × 400 values (a wide table gets a coarser stride). */
  block(): Block {
    while (this.kept.length * this.columns.size > this.max * VALUES_PER_POINT && this.kept.length > 1) {
      this.stride *= 2;
      this.restride();
    }
    const rows = this.kept.slice();
    if (this.last !== undefined && rows[rows.length - 1]?.index !== this.last.index) rows.push(this.last);
    return toBlock(rows, [...this.columns]);
  }
}
