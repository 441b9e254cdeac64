/**
 * One CSV data row (docs/DESIGN.md §4): the cell text of values and the line built from a column plan.
 * Split out of sinks/csv.ts (issue 9) so the per-row build can be compiled: once a table's plan
 * (which data key or metadata field feeds each header column) has served {@link COMPILE_AFTER}
 * rows, `csvSink` builds its lines with a function generated for that plan, cells joined by
 * string literals and each value read by a named property load (`d["loss"]`); see lib/format/json-line.ts
 * for what it saves (little: number-to-text dominates) and why it is safe. {@link csvLineGeneric} stays the reference and the
 * path for odd rows; test/format.property.test.ts checks both give the same bytes.
 */
import type { Entry, Scalar } from '../core/entry.js';
import { compileEncoder, MAX_COMPILED_KEYS, scalarJson } from './json-line.js';

/** Where a column's cell comes from: a data key, a metadata field, or nowhere (empty cell). */
export type CsvSource = string | { readonly meta: 'step' | 'time' | 'level' | 'table' } | null | undefined;

/** Strings a reader would take for a number, a boolean or an empty (null) cell are quoted too. */
const NEEDS_QUOTES = /[",\r\n]|^\s|\s$|^(?:|true|false|NaN|[-+]?Infinity|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)$/;

/** One CSV field holding the string `s` (RFC 4180). */
export function field(s: string): string {
  return NEEDS_QUOTES.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** The CSV cell of a value: empty for null (and a missing key), else its text. */
export function cell(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return field(v);
    case 'number':
    case 'boolean':
      return scalarJson(v);
    default:
      return v === null || v === undefined ? '' : field(scalarJson(v));
  }
}

/** The cells of one row under `sources` (no line end), by the generic loop. */
export function csvLineGeneric(entry: Entry<Record<string, Scalar>>, sources: readonly CsvSource[]): string {
  const data = entry.data;
  let s = '';
  for (let i = 0; i < sources.length; i++) {
    const src = sources[i];
    if (i > 0) s += ',';
    if (typeof src === 'string') s += cell(data[src]);
    else if (src !== null && src !== undefined) s += cell(entry[src.meta]);
  }
  return s;
}

/** A CSV row encoder compiled for one column plan: the cells, no line end. */
export type CsvEncoder = (entry: Entry<Record<string, Scalar>>) => string;

/**
 * A {@link CsvEncoder} for `sources`, or null (too many columns, no code generation). Numbers
 * are written inline (`'' + v` is {@link cell}'s text for every number), all else via `cell`.
 */
export function compileCsvLine(sources: readonly CsvSource[]): CsvEncoder | null {
  if (sources.length > MAX_COMPILED_KEYS) return null;
  let body = "return function csvRow(e) {\n  const d = e.data;\n  let v;\n  let s = '';\n";
  for (let i = 0; i < sources.length; i++) {
    const src = sources[i];
    const sep = i > 0 ? "','" : "''";
    if (typeof src === 'string') {
      body += `  v = d[${JSON.stringify(src)}];\n  s += ${sep} + (typeof v === 'number' ? '' + v : C(v));\n`;
    } else if (src !== null && src !== undefined) body += `  s += ${sep} + C(e[${JSON.stringify(src.meta)}]);\n`;
    else if (i > 0) body += "  s += ',';\n";
  }
  body += '  return s;\n};';
  return compileEncoder<CsvEncoder>(body, { C: cell });
}
