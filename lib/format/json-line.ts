/**
 * Text forms shared by the file sinks (docs/DESIGN.md §4): metadata columns first, data keys sorted,
 * numbers in shortest round-trip form, non-finite numbers as the bare tokens NaN, Infinity,
 * -Infinity. Sorting is cached per table: rows of one table almost always have the same keys,
 * so the common case is one comparison of key arrays, not a sort.
 *
 * Compiled encoders (issue 9): once a table's key set has been seen {@link COMPILE_AFTER} rows
 * in a row, its line is built by a function generated for that key set (`new Function`), with
 * the key order and the escaped `,"key":` pieces baked in as string literals and each value read
 * by a named property load (`d["loss"]`), which V8 serves from an inline cache because every row
 * of a table has the same hidden class, where the generic loop makes a megamorphic keyed load
 * `data[keys[i]]` and a call per key. Measured on the write bench (CPU profile, 200,000 rows of
 * 30 numbers) the gain is small, 281 → 267 ms: most of a line's cost is turning doubles into
 * shortest round-trip text, the same work `JSON.stringify` does. Only key names go
 * into the generated code, and only as `JSON.stringify` literals (valid JS string literals), so
 * no row content can become code. Rows of another shape, tables whose shape keeps changing, key
 * sets over {@link MAX_COMPILED_KEYS}, and runtimes that forbid code generation
 * (`--disallow-code-generation-from-strings`) use the generic path, which stays the reference:
 * test/format.property.test.ts checks both give the same bytes for arbitrary rows.
 */
import type { Entry, Scalar } from '../core/entry.js';

/** JSON text of a Scalar, with bare non-finite tokens. Other values fall back to JSON. */
export function scalarJson(v: unknown): string {
  switch (typeof v) {
    case 'number':
      return Number.isFinite(v) ? `${v}` : v !== v ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
    case 'string':
      return JSON.stringify(v);
    case 'boolean':
      return v ? 'true' : 'false';
    default:
      if (v === null || v === undefined) return 'null';
      try {
        return JSON.stringify(v) ?? 'null';
      } catch {
        return 'null';
      }
  }
}

/** A parsed row as one JSONL line (no `\n`), keys in its order, non-finite numbers as the bare tokens rowlog writes. */
export function rowJson(row: Readonly<Record<string, unknown>>): string {
  let s = '';
  for (const k in row) s += `${s === '' ? '' : ','}${JSON.stringify(k)}:${scalarJson(row[k])}`;
  return `{${s}}`;
}

/** The sorted data keys of a table's rows, with their JSON-quoted forms. */
export interface KeyLayout {
  /** Keys in the order rows had them (the cache key). */
  readonly seen: readonly string[];
  /** Sorted keys. */
  readonly keys: readonly string[];
  /** `"key":` for each sorted key. */
  readonly quoted: readonly string[];
  /** Rows in a row that had this layout (saturates at {@link COMPILE_AFTER}). */
  hits: number;
  /** The compiled JSONL encoder for these keys, once built (`null`: cannot be built). */
  json?: JsonEncoder | null;
}

/** A layout is compiled once this many consecutive rows of its table had it. */
export const COMPILE_AFTER = 4;
/** Key sets larger than this keep the generic path (a huge generated function is not optimized). */
export const MAX_COMPILED_KEYS = 2000;

/**
 * The row being fanned out by the logger (see {@link fanoutRow}): its key list is read once and
 * shared by every sink's KeyOrder (JSONL, CSV, socket) instead of one `Object.keys` each.
 */
let rowData: object | undefined;
let rowSeen: string[] | undefined;

/**
 * Runs `fn` (the logger's synchronous fan-out of one row to its sinks) with `data`'s key list
 * read at most once. Only inside `fn`, and only for that object: a caller that writes the same
 * object again after changing it, outside a fan-out, gets its keys read afresh.
 */
export function fanoutRow(data: object, fn: () => void): void {
  rowData = data;
  rowSeen = undefined;
  try {
    fn();
  } finally {
    rowData = undefined;
    rowSeen = undefined;
  }
}

/** Per-table cache of sorted keys. */
export class KeyOrder {
  readonly #byTable = new Map<string, KeyLayout>();

  /** The layout for `data`'s keys, reusing the table's last one when the keys are the same. */
  layout(table: string, data: Record<string, Scalar>): KeyLayout {
    const seen = data === rowData ? (rowSeen ??= Object.keys(data)) : Object.keys(data);
    const last = this.#byTable.get(table);
    if (last !== undefined && sameKeys(last.seen, seen)) {
      if (last.hits < COMPILE_AFTER) last.hits++;
      return last;
    }
    const keys = [...seen].sort();
    const layout: KeyLayout = { seen, keys, quoted: keys.map((k) => `${JSON.stringify(k)}:`), hits: 1 };
    this.#byTable.set(table, layout);
    return layout;
  }
}

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * One JSONL line (with `\n`): `$step`, `$time`, `$level` (and `$table` when asked, then `meta`,
 * pre-rendered members such as `,"$seq":17`), then sorted keys.
 */
export function jsonLine(entry: Entry<Record<string, Scalar>>, order: KeyOrder, withTable: boolean, meta = ''): string {
  const layout = order.layout(entry.table, entry.data);
  if (layout.hits >= COMPILE_AFTER) {
    if (layout.json === undefined) layout.json = compileJsonLine(layout.keys);
    if (layout.json !== null) return layout.json(entry, withTable, meta);
  }
  return jsonLineGeneric(entry, layout, withTable, meta);
}

/** {@link jsonLine} by the generic loop over a layout's sorted keys (the reference for the compiled one). */
export function jsonLineGeneric(
  entry: Entry<Record<string, Scalar>>,
  layout: Pick<KeyLayout, 'keys' | 'quoted'>,
  withTable: boolean,
  meta = '',
): string {
  const data = entry.data;
  const { keys, quoted } = layout;
  let s = `{"$step":${scalarJson(entry.step)},"$time":${scalarJson(entry.time)},"$level":${scalarJson(entry.level)}`;
  if (withTable) s += `,"$table":${JSON.stringify(entry.table)}${meta}`;
  for (let i = 0; i < keys.length; i++) s += `,${quoted[i] as string}${scalarJson(data[keys[i] as string])}`;
  return `${s}}\n`;
}

/** A JSONL line encoder compiled for one sorted key set (see the top of this file). */
export type JsonEncoder = (entry: Entry<Record<string, Scalar>>, withTable: boolean, meta: string) => string;

/**
 * JS source of an expression giving the JSON text of the value `v`: a number inline (`'' + v`
 * is {@link scalarJson}'s text for every number, NaN and ±Infinity included), else through it.
 */
const VALUE = "(typeof v === 'number' ? '' + v : J(v))";

/** Whether this runtime lets us generate code (checked once; `null` until asked). */
let canCompile: boolean | null = null;

/**
 * Builds `fn` from generated `body` with `J` = {@link scalarJson} and the extra helpers, or
 * returns null when the runtime forbids code generation. Shared with lib/format/csv-line.ts.
 */
export function compileEncoder<T>(body: string, helpers: Readonly<Record<string, unknown>> = {}): T | null {
  if (canCompile === false) return null;
  try {
    const names = Object.keys(helpers);
    // Key names enter `body` only as JSON.stringify literals: no row content becomes code.
    const make = new Function('J', ...names, `'use strict';\n${body}`) as (...args: unknown[]) => T;
    canCompile = true;
    return make(scalarJson, ...names.map((n) => helpers[n]));
  } catch (err) {
    if (err instanceof EvalError) canCompile = false;
    return null;
  }
}

/** A {@link JsonEncoder} for the sorted `keys`, or null (too many keys, no code generation). */
export function compileJsonLine(keys: readonly string[]): JsonEncoder | null {
  if (keys.length > MAX_COMPILED_KEYS) return null;
  let body =
    'return function jsonRow(e, t, m) {\n  const d = e.data;\n  let v = e.step;\n' +
    `  let s = '{"$step":' + ${VALUE};\n  v = e.time;\n  s += ',"$time":' + ${VALUE};\n  v = e.level;\n  s += ',"$level":' + ${VALUE};\n` +
    `  if (t) s += ',"$table":' + JSON.stringify(e.table) + m;\n`;
  for (const k of keys) {
    const lit = JSON.stringify(k);
    body += `  v = d[${lit}];\n  s += ${JSON.stringify(`,${lit}:`)} + ${VALUE};\n`;
  }
  body += "  return s + '}\\n';\n};";
  return compileEncoder<JsonEncoder>(body);
}
