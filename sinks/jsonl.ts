/**
 * jsonlSink: one JSON object per line (docs/DESIGN.md §4), metadata columns first, data keys sorted,
 * NaN and ±Infinity as bare tokens. Batched, never blocking the caller (see sinks/file-sink.ts).
 */
import type { Entry, FlatRow } from '../lib/core/entry.js';
import { FileSink } from './file-sink.js';
import type { FileSinkOptions } from './file-sink-options.js';
import type { RowFormat } from './row-format.js';
import { jsonLine, KeyOrder } from '../lib/format/json-line.js';
import { booleanOption } from '../lib/core/options.js';

/** Options of {@link jsonlSink}. */
export interface JsonlSinkOptions extends FileSinkOptions {
  /** Add a `$table` column after `$level`, for files that hold several tables. @default false */
  withTable?: boolean;
}

/**
 * A JSONL file sink: `path` for one file, `dir` for `<dir>/<table>.jsonl`; a `path` or `ext`
 * ending in `.gz` writes blocked gzip (crash-safe, readable by zcat, jq, Python, bgzip).
 */
export function jsonlSink(opts: JsonlSinkOptions): FileSink {
  const order = new KeyOrder();
  const withTable = booleanOption(opts?.withTable, 'withTable', false);
  const format: RowFormat = {
    ext: '.jsonl',
    line: (entry: Entry<FlatRow>) => jsonLine(entry, order, withTable),
  };
  return new FileSink(opts, format);
}
