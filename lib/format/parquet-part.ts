/**
 * The open part of a Parquet dataset (docs/DESIGN.md §4), held in columns on the main thread:
 * sinks/parquet.ts appends each row here in its batch timer, and a closed part goes to the worker
 * as a {@link PartJob} whose typed arrays are transferred, not copied (lib/io/worker-channel.ts).
 *
 * Why columns: appending a row is a store per key into typed arrays (no per-row object is kept),
 * and the columns are what the Parquet encoder wants (lib/format/parquet-encode.ts).
 *
 * Layout of a part's columns, all `rows` long (arrays may be longer: their capacity):
 * ```
 * $step, $time, $level   Float64Array (the encoder makes $step/$time INT64, $level INT32)
 * number column          Float64Array values + Uint8Array valid (0 = null, 1 = a value; NaN, ±Infinity are values)
 * boolean column         Uint8Array (0 = null, 1 = false, 2 = true)
 * string column          Array<string | undefined> (a hole = null)
 * null column            no values (every row null: a key seen only with null so far)
 * ```
 * A part has one schema: a row with a key the part lacks, or a value whose type differs from
 * its column's (a string in a number column), does not fit ({@link PartBuilder.add} says so and
 * stores nothing that counts); the sink then closes the part and starts the next one from
 * {@link PartBuilder.next}: the union of the keys, old keys kept as columns (null in the new rows).
 */
import type { Entry, FlatRow, Scalar } from '../core/entry.js';

/** What a column holds (one Parquet type each). */
export type ColumnKind = 'number' | 'string' | 'boolean' | 'null';

/** One data column of a closed part. */
export interface PartColumn {
  readonly name: string;
  readonly kind: ColumnKind;
  /** number: Float64Array; boolean: Uint8Array; string: Array; null: undefined (see the layout above). */
  readonly values: Float64Array | Uint8Array | Array<string | undefined> | undefined;
  /** number only: 1 where the row has a value. */
  readonly valid: Uint8Array | undefined;
}

/** A closed part, as posted to the worker. */
export interface PartJob {
  readonly table: string;
  readonly rows: number;
  readonly step: Float64Array;
  readonly time: Float64Array;
  readonly level: Float64Array;
  /** In the order the keys were first seen (the encoder sorts them). */
  readonly columns: readonly PartColumn[];
}

/** Rows allocated when a part opens (then doubled as rows come). */
export const FIRST_ROWS = 16;

/** The kind of a value (`undefined` is a null, as a missing key is). */
function kindOf(v: Scalar | undefined): ColumnKind {
  if (v === null || v === undefined) return 'null';
  return typeof v as 'number' | 'string' | 'boolean';
}

/** A column being filled. */
class Column {
  readonly name: string;
  kind: ColumnKind;
  num: Float64Array | undefined;
  valid: Uint8Array | undefined;
  bool: Uint8Array | undefined;
  str: Array<string | undefined> | undefined;

  constructor(name: string, kind: ColumnKind, cap: number) {
    this.name = name;
    this.kind = 'null';
    this.setKind(kind, cap);
  }

  /** Gives the column `kind` (its rows so far are all null). */
  setKind(kind: ColumnKind, cap: number): void {
    this.kind = kind;
    this.num = kind === 'number' ? new Float64Array(cap) : undefined;
    this.valid = kind === 'number' ? new Uint8Array(cap) : undefined;
    this.bool = kind === 'boolean' ? new Uint8Array(cap) : undefined;
    this.str = kind === 'string' ? [] : undefined;
  }

  grow(cap: number): void {
    if (this.num !== undefined) this.num = grown(this.num, cap);
    if (this.valid !== undefined) this.valid = grown(this.valid, cap);
    if (this.bool !== undefined) this.bool = grown(this.bool, cap);
  }
}

function grown<A extends Float64Array | Uint8Array>(a: A, cap: number): A {
  const b = new (a.constructor as new (n: number) => A)(cap);
  b.set(a);
  return b;
}

/** The open part of one table. */
export class PartBuilder {
  readonly table: string;
  /** Rows appended. */
  rows = 0;
  /** performance.now() when the first row came (the part closes `partSeconds` after it). */
  openedAt = 0;
  #cap: number;
  readonly #max: number;
  #step: Float64Array;
  #time: Float64Array;
  #level: Float64Array;
  readonly #cols = new Map<string, Column>();

  /**
   * `cap` rows are allocated first (doubled as rows come, up to `max`, the part's row limit);
   * `schema` is the columns a part after another starts with (see {@link next}).
   */
  constructor(table: string, cap: number, max: number, schema: ReadonlyArray<readonly [string, ColumnKind]> = []) {
    this.table = table;
    this.#max = max;
    this.#cap = Math.max(1, Math.min(cap, max));
    this.#step = new Float64Array(this.#cap);
    this.#time = new Float64Array(this.#cap);
    this.#level = new Float64Array(this.#cap);
    for (const [name, kind] of schema) this.#cols.set(name, new Column(name, kind, this.#cap));
  }

  /**
   * Appends `e` when it fits this part's schema (a fresh part takes any row) and returns true;
   * false when it does not fit: then the part is as it was (what was stored at the row's index
   * is past `rows` and never read).
   */
  add(e: Entry<FlatRow>): boolean {
    const i = this.rows;
    if (i === this.#cap) this.#grow();
    const data = e.data;
    for (const k in data) {
      const v = data[k];
      const kind = kindOf(v);
      let col = this.#cols.get(k);
      if (col === undefined) {
        if (i !== 0) return false;
        col = new Column(k, kind, this.#cap);
        this.#cols.set(k, col);
      } else if (col.kind !== kind && kind !== 'null') {
        if (col.kind !== 'null' && i !== 0) return false;
        col.setKind(kind, this.#cap); // all its rows so far are null
      }
      if (kind === 'number') {
        (col.num as Float64Array)[i] = v as number;
        (col.valid as Uint8Array)[i] = 1;
      } else if (kind === 'string') (col.str as Array<string | undefined>)[i] = v as string;
      else if (kind === 'boolean') (col.bool as Uint8Array)[i] = v === true ? 2 : 1;
    }
    if (i === 0) this.openedAt = performance.now();
    this.#step[i] = e.step;
    this.#time[i] = e.time;
    this.#level[i] = e.level;
    this.rows = i + 1;
    return true;
  }

  /** True when the part holds its row limit. */
  get full(): boolean {
    return this.rows >= this.#max;
  }

  #grow(): void {
    const cap = Math.max(this.#cap + 1, Math.min(this.#cap * 2, this.#max));
    this.#step = grown(this.#step, cap);
    this.#time = grown(this.#time, cap);
    this.#level = grown(this.#level, cap);
    for (const col of this.#cols.values()) col.grow(cap);
    this.#cap = cap;
  }

  /** The part closed: its columns, and the buffers to transfer. The builder is not used after. */
  close(): { job: PartJob; transfer: ArrayBuffer[] } {
    const columns: PartColumn[] = [];
    const transfer = [this.#step.buffer, this.#time.buffer, this.#level.buffer] as ArrayBuffer[];
    for (const c of this.#cols.values()) {
      const values = c.num ?? c.bool ?? c.str;
      if (c.str !== undefined && c.str.length > this.rows) c.str.length = this.rows;
      columns.push({ name: c.name, kind: c.kind, values, valid: c.valid });
      for (const a of [c.num, c.valid, c.bool]) if (a !== undefined) transfer.push(a.buffer as ArrayBuffer);
    }
    const job = { table: this.table, rows: this.rows, step: this.#step, time: this.#time, level: this.#level, columns };
    return { job, transfer };
  }

  /**
   * The part after this one: the same columns (the union so far), {@link FIRST_ROWS} rows
   * allocated, so a table that goes quiet holds a few KB, not the last part's size (a busy
   * one doubles back up: copies of about the part's size in all, next to encoding it).
   */
  next(): PartBuilder {
    const schema = [...this.#cols.values()].map((c) => [c.name, c.kind] as const);
    return new PartBuilder(this.table, FIRST_ROWS, this.#max, schema);
  }
}
