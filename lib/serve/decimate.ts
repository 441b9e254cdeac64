/**
 * M4 decimation (docs/DESIGN.md §7, issue 15): how serve shows a 2M-row table as a few thousand
 * points without losing one extreme, and how the page keeps what it holds right as rows come.
 *
 * The rule, in one place: a table's rows are cut into buckets of `bucket` consecutive rows by
 * index (bucket k holds rows k·bucket … (k+1)·bucket − 1); `bucket` is a power of 2, doubled
 * whenever more than `max` buckets would hold rows. Per bucket, each column keeps the rows with
 * its first, last, smallest and largest finite value (M4: Jugel et al., VLDB 2014: a line
 * through them draws every pixel column of the raw line exactly), and its first NaN, +Infinity
 * and −Infinity (the page marks them); each kept row once, in index order.
 *
 * The rule applied to kept points keeps the same points as applied to the rows (the extremes
 * of a union are among the extremes of its parts). So doubling `bucket` is the rule run again
 * over what is kept, a zoom is the same rule over the rows of a range, and the page merges a
 * `rows` event into what it holds with the same code ({@link ColumnM4}), never re-reading.
 *
 * Pure and free of Node: the server imports it, and the page loads the same compiled file
 * (dist/lib/serve/decimate.js, served at /lib/serve/decimate.js) as an ES module.
 */
import type { Block, WirePoints, YValue } from './protocol.js';

/** Most buckets per table by default (serve's `maxBuckets`); the page asks for twice its plot width. */
export const MAX_BUCKETS = 2048;

/** One column's kept points, in index order: row index, x, y (y may be NaN or ±Infinity). */
export interface Points {
  i: number[];
  x: number[];
  y: number[];
}

/** The smallest power of 2 (at least `bucket`) for which rows `origin`..`last` fall in at most `max` buckets. */
export function bucketFor(origin: number, last: number, max: number, bucket = 1): number {
  while (Math.floor(last / bucket) - Math.floor(origin / bucket) + 1 > max) bucket *= 2;
  return bucket;
}

// Accumulator slots of the open bucket: first, last, min, max (finite), first NaN, +Inf, −Inf.
const SLOTS = 7;

/**
 * One column under the rule: its closed buckets' points, and the open (last) bucket's seven
 * candidates. Rows must come in ascending index order.
 */
export class ColumnM4 {
  readonly i: number[] = [];
  readonly x: number[] = [];
  readonly y: number[] = [];
  /** The open bucket's number, -1 before the first point. */
  private open = -1;
  private readonly si = new Float64Array(SLOTS).fill(-1);
  private readonly sx = new Float64Array(SLOTS);
  private readonly sy = new Float64Array(SLOTS);

  constructor(public bucket = 1) {}

  private set(s: number, i: number, x: number, y: number): void {
    this.si[s] = i;
    this.sx[s] = x;
    this.sy[s] = y;
  }

  /** Adds row `i` (above every index added before) with its x and y. */
  add(i: number, x: number, y: number): void {
    const b = Math.floor(i / this.bucket);
    if (b !== this.open) {
      this.close();
      this.open = b;
    }
    const si = this.si;
    if (y - y === 0) {
      // finite
      if (si[0] === -1) {
        this.set(0, i, x, y);
        this.set(2, i, x, y);
        this.set(3, i, x, y);
      } else {
        if (y < (this.sy[2] as number)) this.set(2, i, x, y);
        if (y > (this.sy[3] as number)) this.set(3, i, x, y);
      }
      this.set(1, i, x, y);
    } else {
      const s = y !== y ? 4 : y > 0 ? 5 : 6;
      if (si[s] === -1) this.set(s, i, x, y);
    }
  }

  /** The open bucket's candidates (each row once), in index order, as slot numbers. */
  private openSlots(): number[] {
    const si = this.si;
    const order: number[] = [];
    if (this.open === -1) return order;
    for (let s = 0; s < SLOTS; s++) {
      const ix = si[s] as number;
      if (ix === -1) continue;
      let dup = false;
      for (const o of order) if (si[o] === ix) dup = true;
      if (!dup) order.push(s);
    }
    return order.sort((a, b) => (si[a] as number) - (si[b] as number));
  }

  /** Moves the open bucket's candidates to the closed points. */
  close(): void {
    for (const s of this.openSlots()) {
      this.i.push(this.si[s] as number);
      this.x.push(this.sx[s] as number);
      this.y.push(this.sy[s] as number);
    }
    this.si.fill(-1);
    this.open = -1;
  }

  /** Every kept point, the open bucket's included (a copy: {@link add} may go on after). */
  points(): Points {
    const p = { i: this.i.slice(), x: this.x.slice(), y: this.y.slice() };
    for (const s of this.openSlots()) {
      p.i.push(this.si[s] as number);
      p.x.push(this.sx[s] as number);
      p.y.push(this.sy[s] as number);
    }
    return p;
  }

  /** Points kept (the open bucket's included). */
  get size(): number {
    return this.i.length + this.openSlots().length;
  }

  /** The rule again at a coarser `bucket` over what is kept; the last bucket stays open for more rows. */
  rebucket(bucket: number): void {
    const p = this.points();
    this.i.length = 0;
    this.x.length = 0;
    this.y.length = 0;
    this.si.fill(-1);
    this.open = -1;
    this.bucket = bucket;
    for (let k = 0; k < p.i.length; k++) this.add(p.i[k] as number, p.x[k] as number, p.y[k] as number);
  }

  /** Drops the points of rows below `from` (`from` a bucket boundary, or below every open point). */
  dropBefore(from: number): void {
    if (this.open !== -1 && (this.open + 1) * this.bucket <= from) this.close();
    let k = 0;
    while (k < this.i.length && (this.i[k] as number) < from) k++;
    if (k > 0) {
      this.i.splice(0, k);
      this.x.splice(0, k);
      this.y.splice(0, k);
    }
  }
}

/** The rule over points (or rows) in index order at `bucket`: what is kept of them. */
export function m4(p: Points, bucket: number): Points {
  const c = new ColumnM4(bucket);
  for (let k = 0; k < p.i.length; k++) c.add(p.i[k] as number, p.x[k] as number, p.y[k] as number);
  return c.points();
}

/**
 * A table under the rule: one {@link ColumnM4} per column, `bucket` doubled (every column
 * rebucketed) once rows `origin`..last span more than `max` buckets. Memory: O(max × columns).
 */
export class TableM4 {
  /** Rows seen: one past the last index pushed. */
  total = 0;
  bucket: number;
  readonly cols = new Map<string, ColumnM4>();
  /** The first index the buckets are counted from (the first row pushed, unless given). */
  origin: number | undefined;

  constructor(
    readonly max: number = MAX_BUCKETS,
    opts: { origin?: number; bucket?: number } = {},
  ) {
    this.origin = opts.origin;
    this.bucket = opts.bucket ?? 1;
  }

  private column(name: string): ColumnM4 {
    let c = this.cols.get(name);
    if (c === undefined) this.cols.set(name, (c = new ColumnM4(this.bucket)));
    return c;
  }

  /** Counts row `index` (rows lacking the x are skipped, so indexes may jump); doubles `bucket` when needed. */
  private advance(index: number): void {
    this.origin ??= index;
    this.total = index + 1;
    const b = bucketFor(this.origin, index, this.max, this.bucket);
    if (b !== this.bucket) {
      this.bucket = b;
      for (const c of this.cols.values()) c.rebucket(b);
    }
  }

  /**
   * Adds row `index` (ascending) at `x` with its data cells: every key not starting with `$`
   * whose value is a number (NaN and ±Infinity included) is a column.
   */
  push(index: number, x: number, row: Record<string, unknown>): void {
    this.advance(index);
    for (const k in row) {
      if (k.charCodeAt(0) === 36 /* $ */) continue;
      const v = row[k];
      if (typeof v === 'number') this.column(k).add(index, x, v);
    }
  }

  /** Adds one kept point of `column` (seeding a table from a snapshot's points); ascending per column. */
  pushPoint(column: string, index: number, x: number, y: number): void {
    if (index + 1 > this.total) this.advance(index);
    this.column(column).add(index, x, y);
  }

  /** The kept points of every column, in the API's form (see {@link Block}). */
  block(): Block {
    const columns = [...this.cols.keys()].sort();
    return { columns, points: columns.map((c) => toWire((this.cols.get(c) as ColumnM4).points())) };
  }

  /**
   * The block at most `max` buckets would give (a page narrower than the table was read for):
   * the rule again at the coarser bucket, or the kept points as they are. The table is unchanged.
   */
  coarsened(max: number): { bucket: number; block: Block } {
    const bucket = this.total === 0 ? this.bucket : bucketFor(this.origin ?? 0, this.total - 1, max, this.bucket);
    const columns = [...this.cols.keys()].sort();
    const points = columns.map((c) => {
      const p = (this.cols.get(c) as ColumnM4).points();
      return toWire(bucket === this.bucket ? p : m4(p, bucket));
    });
    return { bucket, block: { columns, points } };
  }

  /** Drops every column's points below `from` (see {@link ColumnM4.dropBefore}). */
  dropBefore(from: number): void {
    for (const c of this.cols.values()) c.dropBefore(from);
  }
}

/** `x` of a row for the x-axis `axis`: `$step` (else the row's index), `$time`, or a numeric column; undefined when the row has none. */
export function xOf(row: Record<string, unknown>, index: number, axis: string): number | undefined {
  const v = row[axis];
  if (typeof v === 'number' && v - v === 0) return v;
  return axis === '$step' ? index : undefined;
}

/** A y as JSON carries it: non-finite values as the strings `NaN`, `Infinity`, `-Infinity`. */
export function wireY(y: number): YValue {
  return y - y === 0 ? y : y !== y ? 'NaN' : y > 0 ? 'Infinity' : '-Infinity';
}

/** A y from JSON. */
export function fromWireY(y: YValue): number {
  return typeof y === 'number' ? y : y === 'NaN' ? NaN : y === 'Infinity' ? Infinity : -Infinity;
}

/** Points as JSON carries them (the arrays are shared, not copied). */
export function toWire(p: Points): WirePoints {
  return { i: p.i, x: p.x, y: p.y.map(wireY) };
}

/** Points from JSON. */
export function fromWire(p: WirePoints): Points {
  return { i: p.i.slice(), x: p.x.slice(), y: p.y.map(fromWireY) };
}

/**
 * What follows a table for one page (a `rows` event per batch of new rows): it holds the M4 of
 * the rows from `from` on, where `from` starts the bucket the next row falls in (the page's
 * last bucket while it is not full, else the next). Each batch gives the page
 * `{from, bucket, block}`: drop its points at indexes ≥ `from`, append the block's, and, when
 * `bucket` is coarser than its own, rebucket everything it holds ({@link m4}). Memory: a bucket
 * per column.
 */
export class M4Follower {
  private readonly table: TableM4;
  from: number;

  /**
   * Seeded with a snapshot: its `total`, `bucket`, `max`, its block's points, and the index its
   * buckets were counted from (`origin`; not given: 0, or for a snapshot without a point the
   * first row added, as {@link TableM4} counts).
   */
  constructor(snap: { total: number; bucket: number; maxBuckets: number; block: Block; origin?: number | undefined }) {
    const origin = snap.origin ?? (snap.block.points.some((p) => p.i.length > 0) ? 0 : undefined);
    this.table = new TableM4(snap.maxBuckets, { ...(origin === undefined ? {} : { origin }), bucket: snap.bucket });
    this.from = Math.floor(snap.total / snap.bucket) * snap.bucket;
    snap.block.columns.forEach((c, k) => {
      const p = snap.block.points[k];
      if (p === undefined) return;
      for (let j = 0; j < p.i.length; j++) if ((p.i[j] as number) >= this.from) this.table.pushPoint(c, p.i[j] as number, p.x[j] as number, fromWireY(p.y[j] as YValue));
    });
    this.table.total = snap.total;
  }

  get total(): number {
    return this.table.total;
  }

  get bucket(): number {
    return this.table.bucket;
  }

  /**
   * Adds new rows (ascending indexes from `total` on; a row whose x is undefined, one without the
   * x-axis' column, only counts) up to `total` rows, and returns what the page needs.
   */
  append(rows: ReadonlyArray<{ index: number; x: number | undefined; row: Record<string, unknown> }>, total: number): { from: number; bucket: number; block: Block } {
    for (const r of rows) if (r.x !== undefined) this.table.push(r.index, r.x, r.row);
    if (total > this.table.total) this.table.total = total;
    const out = { from: this.from, bucket: this.table.bucket, block: this.table.block() };
    this.from = Math.max(this.from, Math.floor(this.table.total / this.table.bucket) * this.table.bucket);
    this.table.dropBefore(this.from);
    return out;
  }
}
