/**
 * summarize (docs/DESIGN.md §3): the public face of the flattening. `summarizeRow()` flattens one row
 * (./flatten.ts); the `summarize()` Transform turns Entries or plain rows into Entries whose data
 * is flat. Entry building (a plain row's `$table`/`$step`/`$time`/`$level`, W_BAD_META, the
 * per-table steps) is lib/core/ingest.ts, shared with the logger; this file only joins the two.
 */
import { Transform } from 'node:stream';
import type { Entry, FlatRow } from '../lib/core/entry.js';
import { objectOption } from '../lib/core/options.js';
import { createEntryContext, toEntry } from '../lib/core/ingest.js';
import type { EntryContext, FlattenData } from '../lib/core/ingest.js';
import { Level } from '../lib/core/levels.js';
import type { LevelLike } from '../lib/core/levels.js';
import { WarningGate } from '../lib/core/warnings.js';
import { checkSummarizeOptions, flatten } from './flatten.js';
import type { SummarizeRowOptions } from './flatten.js';

export type { SummarizeRowOptions } from './flatten.js';

/** Options of the {@link summarize} Transform. */
export interface SummarizeOptions extends Omit<SummarizeRowOptions, 'onWarning'> {
  /** Table of plain rows that carry no `$table` key. @default 'main' */
  table?: string;
  /** Level of plain rows that carry no `$level` key. @default 'INFO' */
  level?: LevelLike;
}

/**
 * Flattens `data` into one object of Scalars (docs/DESIGN.md §3). Never throws on content; a value
 * that is not an object (a number, a string, an array, a typed array, a Date …) is kept under
 * the key `value`.
 */
export function summarizeRow(data: unknown, opts?: SummarizeRowOptions): FlatRow {
  return flatten(data, opts, false);
}

/**
 * The flattening that lib/core/ingest.ts's `toEntry` applies to an Entry's or a plain row's data,
 * with `rowOpts` (from {@link entryRowOptions}); made once per logger or Transform, not per row.
 */
export function entryFlattener(rowOpts: SummarizeRowOptions): FlattenData<FlatRow> {
  return (data, rowMeta) => flatten(data, rowOpts, rowMeta);
}

/**
 * Validated flattening options whose warnings go through `ctx`, once per (table, code, key),
 * naming the table of the row being summarized (used by `summarize()` and the logger).
 */
export function entryRowOptions(opts: Omit<SummarizeRowOptions, 'onWarning'> | undefined, ctx: EntryContext): SummarizeRowOptions {
  const rowOpts: SummarizeRowOptions = {
    ...opts,
    // One warning per (table, code, key): messages may differ from row to row.
    onWarning: (code, message, key) => ctx.warn({ code, message: `${message} in table '${ctx.current}'`, table: ctx.current }, key),
  };
  checkSummarizeOptions(rowOpts);
  return rowOpts;
}

/**
 * An object-mode Transform from Entries or plain rows to Entries whose `data` is flat.
 * Plain rows may carry `$table`, `$step`, `$time` and `$level` keys (as `rowlog pipe`
 * input does); otherwise the options' `table` and `level`, the next step and the current
 * time are used. Emits `'warning'` once per distinct problem per table.
 */
export function summarize(opts: SummarizeOptions = {}): Transform {
  objectOption(opts);
  const { table = 'main', level = Level.INFO, ...flat } = opts;
  let ctx: EntryContext | undefined;
  let flattenData: FlattenData<FlatRow> | undefined;
  const stream = new Transform({
    objectMode: true,
    transform(chunk: unknown, _enc, callback) {
      let entry: Entry<FlatRow>;
      try {
        entry = toEntry(chunk, ctx as EntryContext, flattenData as FlattenData<FlatRow>);
      } catch (err) {
        callback(err as Error);
        return;
      }
      callback(null, entry);
    },
  });
  ctx = createEntryContext(table, level, new WarningGate(stream));
  flattenData = entryFlattener(entryRowOptions(flat, ctx));
  return stream;
}
