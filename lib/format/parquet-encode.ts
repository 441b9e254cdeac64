/**
 * A closed part's columns (lib/format/parquet-part.ts) → the bytes of one whole Parquet file, with
 * hyparquet-writer (pure JS: no native build step; docs/DESIGN.md §4). Runs on the Parquet
 * sink's worker thread (sinks/parquet-worker.ts), never on the main thread.
 *
 * Schema of every part (the types the issue asks for, what DuckDB, pyarrow and Spark read):
 * ```
 * $step   INT64 REQUIRED
 * $time   INT64 REQUIRED    ms since the epoch (a fraction of a ms is rounded)
 * $level  INT32 REQUIRED    (DOUBLE in a part where a level is not a whole int32)
 * <key>   OPTIONAL, in sorted order: numbers DOUBLE (NaN, ±Infinity kept), strings BYTE_ARRAY
 *         UTF8, booleans BOOLEAN; a column with no value in the part is DOUBLE, all null
 * ```
 * Row groups hold up to `rowGroupRows` rows; column statistics are written (min/max let DuckDB
 * skip row groups on `WHERE "$step" > …`), except for a number column holding a NaN (see
 * {@link hasNaN}).
 */
import { createRequire } from 'node:module';
import type { ColumnSource, SchemaElement } from 'hyparquet-writer';
import { VERSION } from '../core/version.js';
import type { PartColumn, PartJob } from './parquet-part.js';

/**
 * hyparquet-writer, loaded with `require()` where Node can load an ES module so (20.19 and later),
 * else imported. Why not always `import`: under the tests' TypeScript loader (tap's fork of
 * ts-node) its own imports do not resolve (a package-exports pattern with a suffix,
 * `hyparquet/src/*.js`; that loader's copy of Node's resolver knows only a trailing `*`), and
 * `require()` resolves as Node does, so the tests run the path most users run.
 */
async function loadWriter(): Promise<typeof import('hyparquet-writer')> {
  if ((process.features as { require_module?: boolean }).require_module === true) {
    return createRequire(import.meta.url)('hyparquet-writer') as typeof import('hyparquet-writer');
  }
  return import('hyparquet-writer');
}

const { ByteWriter, ParquetWriter } = await loadWriter();

/** Compression of a part's pages. */
export type ParquetCodec = 'SNAPPY' | 'UNCOMPRESSED';

/** How a part is encoded. */
export interface EncodeOptions {
  readonly codec: ParquetCodec;
  readonly rowGroupRows: number;
}

/** `f[0..n)` as INT64 values (rounded: `$time` may hold a fraction of a ms). */
function int64(f: Float64Array, n: number): BigInt64Array {
  const b = new BigInt64Array(n);
  for (let i = 0; i < n; i++) b[i] = BigInt(Math.round(f[i] as number));
  return b;
}

/** True when every `f[0..n)` is a whole number that fits INT32. */
function fitsInt32(f: Float64Array, n: number): boolean {
  for (let i = 0; i < n; i++) if ((f[i] as number) !== ((f[i] as number) | 0)) return false;
  return true;
}

/** A data column's values as the writer takes them: `null` where the row has none. */
function columnValues(c: PartColumn, n: number): ColumnSource['data'] {
  if (c.kind === 'number') {
    const num = (c.values as Float64Array).subarray(0, n);
    const valid = c.valid as Uint8Array;
    if (valid.subarray(0, n).every((v) => v === 1)) return num;
    return Array.from(num, (v, i) => (valid[i] === 1 ? v : null));
  }
  if (c.kind === 'boolean') {
    const b = c.values as Uint8Array;
    return Array.from(b.subarray(0, n), (v) => (v === 0 ? null : v === 2));
  }
  if (c.kind === 'string') {
    const s = c.values as Array<string | undefined>;
    return Array.from({ length: n }, (_, i) => s[i] ?? null);
  }
  return new Array<null>(n).fill(null);
}

/**
 * True when a number column holds a NaN. Such a column is written without min/max statistics:
 * writers leave NaN out of them (as the Parquet spec asks), but DuckDB orders NaN above every
 * number and prunes row groups by min/max, so `WHERE loss > 0.5` would skip a row group's NaN
 * rows that a scan returns. Without statistics every reader sees every row.
 */
function hasNaN(c: PartColumn, n: number): boolean {
  if (c.kind !== 'number') return false;
  const v = c.values as Float64Array;
  const valid = c.valid as Uint8Array;
  for (let i = 0; i < n; i++) if (valid[i] === 1 && Number.isNaN(v[i])) return true;
  return false;
}

/** The schema element of a data column. */
function element(c: PartColumn): SchemaElement {
  if (c.kind === 'string') return { name: c.name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' };
  if (c.kind === 'boolean') return { name: c.name, type: 'BOOLEAN', repetition_type: 'OPTIONAL' };
  return { name: c.name, type: 'DOUBLE', repetition_type: 'OPTIONAL' };
}

/** The Parquet file of one part (whole: header, row groups, footer). */
export function encodePart(part: PartJob, opts: EncodeOptions): Uint8Array {
  const n = part.rows;
  const cols = [...part.columns].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const levelInt = fitsInt32(part.level, n);
  const schema: SchemaElement[] = [
    { name: 'root', num_children: 3 + cols.length },
    { name: '$step', type: 'INT64', repetition_type: 'REQUIRED' },
    { name: '$time', type: 'INT64', repetition_type: 'REQUIRED' },
    { name: '$level', type: levelInt ? 'INT32' : 'DOUBLE', repetition_type: 'REQUIRED' },
    ...cols.map(element),
  ];
  const level = part.level.subarray(0, n);
  const columnData: ColumnSource[] = [
    { name: '$step', data: int64(part.step, n) },
    { name: '$time', data: int64(part.time, n) },
    { name: '$level', data: levelInt ? Int32Array.from(level) : level },
    ...cols.map((c) => ({ name: c.name, data: columnValues(c, n), statistics: !hasNaN(c, n) })),
  ];
  const writer = new ByteWriter(Math.max(1024, n * (cols.length + 3) * 4));
  const pq = new ParquetWriter({ writer, schema, codec: opts.codec, createdBy: `rowlog ${VERSION}` });
  void pq.write({ columnData, rowGroupSize: opts.rowGroupRows });
  void pq.finish();
  return writer.getBytes();
}
