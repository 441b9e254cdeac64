/**
 * csvSink: one CSV file per table (or one for every table), docs/DESIGN.md §4. RFC 4180 quoting, `\n`
 * line ends, header = `$step,$time,$level` (and `$table` when asked) then the data keys sorted;
 * `null` is an empty cell, booleans are `true`/`false`, numbers are written in shortest
 * round-trip form and non-finite ones as `NaN`, `Infinity`, `-Infinity`.
 *
 * A CSV header is fixed once written, so a row with a key the header lacks is handled by
 * `onNewKeys`: `'rewrite'` (default) rewrites the file with the union header through a temp
 * file and an atomic rename, old rows getting empty cells in the new columns (noko's
 * behaviour); `'error'` warns and writes the row without the new keys; `'ignore'` drops them
 * silently. The rewrite never runs inside `log.row()` beyond a small file's: until it is done,
 * rows carry the new keys as trailing fields named by the sidecar `<file>.columns`, and the file
 * is streamed into the new one in bounded steps (sinks/csv-rewrite.ts explains why this keeps
 * every row exactly once whatever kills the process). Opening an existing file reads only its
 * header and its end: a torn last row is removed (W_TORN_ROW), temp files of an interrupted
 * rewrite are deleted, and a rewrite the sidecar says was under way resumes. How rows become
 * text, and all of the above, is sinks/csv-format.ts; this file is the factory and its options.
 */
import { booleanOption, optionError } from '../lib/core/options.js';
import { WarningGate } from '../lib/core/warnings.js';
import { CsvFormat } from './csv-format.js';
import type { CsvNewKeys } from './csv-format.js';
import { FileSink } from './file-sink.js';
import type { FileSinkOptions } from './file-sink-options.js';

export type { CsvNewKeys } from './csv-format.js';

const NEW_KEYS_MODES: readonly CsvNewKeys[] = ['rewrite', 'error', 'ignore'];

/** Options of {@link csvSink}. */
export interface CsvSinkOptions extends FileSinkOptions {
  /** File name ending in `dir` mode. @default '.csv' */
  ext?: string;
  /** Add a `$table` column after `$level`, for a `path` file that holds several tables. @default false */
  withTable?: boolean;
  /**
   * A row with keys the header lacks: `'rewrite'` the file with the union header (old rows get
   * empty cells; warns `Adding new key 'z' to table 't'` once per new key set), `'error'` (warns
   * once per new key set and writes the row without those keys) or `'ignore'` (drops them
   * silently). Appending to an existing file follows the same rule. @default 'rewrite'
   */
  onNewKeys?: CsvNewKeys;
}

/**
 * A CSV file sink: `path` for one file (all tables share its header), `dir` for
 * `<dir>/<table>.csv`. Appending to an existing file reuses its header.
 */
export function csvSink(opts: CsvSinkOptions): FileSink {
  const onNewKeys = opts?.onNewKeys ?? 'rewrite';
  if (!NEW_KEYS_MODES.includes(onNewKeys)) {
    const kind = typeof onNewKeys === 'string' ? 'range' : 'type';
    throw optionError(kind, 'onNewKeys', `must be 'rewrite', 'error' or 'ignore' (got ${String(onNewKeys)})`);
  }
  const withTable = booleanOption(opts?.withTable, 'withTable', false);
  const format = new CsvFormat(withTable, onNewKeys);
  const sink = new FileSink(opts, format);
  format.warnings = new WarningGate(sink);
  return sink;
}
