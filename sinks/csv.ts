/**
 * csvSink: one CSV file per table (or one for every table), DESIGN §4. RFC 4180 quoting, `\n`
 * line ends, header = `$step,$time,$level` (and `$table` when asked) then the data keys sorted;
 * `null` is an empty cell, booleans are `true`/`false`, numbers are written in shortest
 * round-trip form and non-finite ones as `NaN`, `Infinity`, `-Infinity`.
 *
 * A CSV header is fixed once written, so a row with a key the header lacks is handled by
 * `onNewKeys`: `'rewrite'` (default) rewrites the file with the union header through a temp
 * file and an atomic rename, old rows getting empty cells in the new columns (noko's
 * behaviour); `'error'` warns and writes the row without the new keys; `'ignore'` drops them
 * silently. Each row is turned into text through a per-file, per-table column plan that is
 * rebuilt only when the row's keys or the header change, so the common case is a string build.
 */
import { isBlank, scanCsv, unquote } from '../lib/csv-parse.js';
import type { Entry, FlatRow } from '../lib/entry.js';
import { optionError } from '../lib/errors.js';
import { FileSink } from '../lib/file-sink.js';
import type { FileHandle, FileSinkOptions, RowFormat } from '../lib/file-sink.js';
import { compileCsvLine, csvLineGeneric, field } from '../lib/csv-line.js';
import type { CsvEncoder } from '../lib/csv-line.js';
import { COMPILE_AFTER, KeyOrder } from '../lib/format.js';
import type { KeyLayout } from '../lib/format.js';
import { WarningGate } from '../lib/warnings.js';

/** What {@link csvSink} does with a row holding keys its file's header lacks. */
export type CsvNewKeys = 'rewrite' | 'error' | 'ignore';

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
  const withTable = opts?.withTable ?? false;
  if (typeof withTable !== 'boolean') throw optionError('type', 'withTable', `must be a boolean (got ${String(withTable)})`);
  const format = new CsvFormat(withTable, onNewKeys);
  const sink = new FileSink(opts, format);
  format.warnings = new WarningGate(sink);
  return sink;
}

/** Where a column's cell comes from: a data key, a metadata field, or nowhere (empty cell). */
type Source = string | MetaField | null;
/** Metadata fields in column order. */
const META_FIELDS = ['$step', '$time', '$level', '$table'] as const;
type MetaField = { readonly meta: 'step' | 'time' | 'level' | 'table' };
const META_SOURCE: ReadonlyMap<string, MetaField> = new Map(META_FIELDS.map((c) => [c, { meta: c.slice(1) } as MetaField]));

/** How the rows of one table map onto one header version. */
interface Plan {
  readonly layout: KeyLayout;
  readonly version: number;
  /** One source per header column. */
  readonly sources: readonly Source[];
  /** The compiled line builder, once the table's keys have been stable (`null`: cannot be built). */
  encode?: CsvEncoder | null;
}

/** What the format knows about one file. */
interface CsvFile {
  /** Header column names, in file order. */
  columns: string[];
  index: Set<string>;
  /** Bumped when the header changes; plans of older versions are stale. */
  version: number;
  /** Text to put before the next row: the header of a new file, a line end after a torn one. */
  head: string;
  readonly plans: Map<string, Plan>;
}

class CsvFormat implements RowFormat {
  readonly ext = '.csv';
  /** Set once the sink exists (it is the warnings' emitter). */
  warnings: WarningGate | undefined;
  readonly #meta: readonly string[];
  readonly #onNewKeys: CsvNewKeys;
  readonly #order = new KeyOrder();
  readonly #files = new Map<string, CsvFile>();

  constructor(withTable: boolean, onNewKeys: CsvNewKeys) {
    this.#meta = withTable ? META_FIELDS : META_FIELDS.slice(0, 3);
    this.#onNewKeys = onNewKeys;
  }

  line(entry: Entry<FlatRow>, file: FileHandle): string {
    const data = entry.data;
    const layout = this.#order.layout(entry.table, data);
    const f = this.#files.get(file.path) ?? this.#open(file, layout);
    let plan = f.plans.get(entry.table);
    if (plan === undefined || plan.layout !== layout || plan.version !== f.version) plan = this.#plan(f, entry.table, layout, file);
    const head = f.head;
    f.head = '';
    // Compiled once the keys are stable (lib/csv-line.ts); the generic loop for the first rows.
    if (plan.layout.hits >= COMPILE_AFTER) {
      if (plan.encode === undefined) plan.encode = compileCsvLine(plan.sources);
      if (plan.encode !== null) return `${head}${plan.encode(entry)}\n`;
    }
    return `${head}${csvLineGeneric(entry, plan.sources)}\n`;
  }

  /** State for a file seen for the first time: its existing header, or one made from this row. */
  #open(file: FileHandle, layout: KeyLayout): CsvFile {
    const found: { header?: string[] } = {};
    const repair = file.appended
      ? scanCsv(file.readText(), (fields) => {
          if (found.header === undefined && !isBlank(fields)) found.header = fields.map(unquote);
        })
      : '';
    const columns = found.header ?? this.#union([], layout.keys);
    const f: CsvFile = {
      columns,
      index: new Set(columns),
      version: 0,
      head: found.header === undefined ? repair + headerLine(columns) : repair,
      plans: new Map(),
    };
    this.#files.set(file.path, f);
    return f;
  }

  /** Metadata columns, then every other name of `a` and `b`, sorted. */
  #union(a: readonly string[], b: readonly string[]): string[] {
    const rest = new Set([...a, ...b]);
    for (const m of this.#meta) rest.delete(m);
    return [...this.#meta, ...[...rest].sort()];
  }

  #plan(f: CsvFile, table: string, layout: KeyLayout, file: FileHandle): Plan {
    const missing = [...new Set([...this.#meta, ...layout.keys])].filter((k) => !f.index.has(k));
    if (missing.length > 0) this.#newKeys(f, table, missing, file);
    const has = new Set(layout.keys);
    const meta = new Set(this.#meta);
    const sources = f.columns.map((c): Source => (meta.has(c) ? (META_SOURCE.get(c) as MetaField) : has.has(c) ? c : null));
    const plan: Plan = { layout, version: f.version, sources };
    f.plans.set(table, plan);
    return plan;
  }

  #newKeys(f: CsvFile, table: string, keys: string[], file: FileHandle): void {
    if (this.#onNewKeys === 'ignore') return;
    const what = keys.length === 1 ? `new key ${pyRepr(keys[0] as string)}` : `${keys.length} new keys [${keys.map(pyRepr).join(', ')}]`;
    const detail = `${this.#onNewKeys}\0${keys.join('\0')}`;
    if (this.#onNewKeys === 'error') {
      const message = `Dropping ${what} of table '${table}': onNewKeys is 'error', so the CSV header of ${file.path} stays as it is`;
      this.warnings?.warn({ code: 'W_NEW_KEYS', message, table }, detail);
      return;
    }
    const columns = this.#union(f.columns, keys);
    file.rewrite((old) => remap(old, columns));
    f.columns = columns;
    f.index = new Set(columns);
    f.version++;
    f.head = ''; // the rewritten file holds the header and ends with a line end
    this.warnings?.warn({ code: 'W_NEW_KEYS', message: `Adding ${what} to table '${table}'`, table }, detail);
  }
}

function headerLine(columns: readonly string[]): string {
  return `${columns.map(field).join(',')}\n`;
}

/**
 * `old` CSV text under the header `columns`, a superset of its own: every field moves to its
 * column by name, new columns get empty cells. Fields are copied raw, so quoted text (commas,
 * quotes, line ends) is kept byte for byte. Blank lines are dropped; fields past the old
 * header's end (a ragged row) are kept at the end of the row rather than lost.
 */
function remap(old: string, columns: readonly string[]): string {
  const position = new Map(columns.map((c, i) => [c, i]));
  const out = [headerLine(columns)];
  let map: number[] | undefined;
  scanCsv(old, (fields) => {
    if (isBlank(fields)) return;
    if (map === undefined) {
      const taken = new Set<number>();
      map = fields.map((raw) => {
        const k = position.get(unquote(raw));
        if (k === undefined || taken.has(k)) return -1; // a duplicate name: keep its cells as extras
        taken.add(k);
        return k;
      });
      return;
    }
    const cells = new Array<string>(columns.length).fill('');
    let extra = '';
    for (let j = 0; j < fields.length; j++) {
      const k = map[j] ?? -1;
      if (k >= 0) cells[k] = fields[j] as string;
      else extra += `,${fields[j] as string}`;
    }
    out.push(`${cells.join(',')}${extra}\n`);
  });
  return out.join('');
}

/** Python's repr of a string, as in noko's message `Adding 2 new keys ['a', 'b'] …`. */
function pyRepr(s: string): string {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = q;
  for (const ch of s) {
    if (ch === q || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch < ' ' || ch === '\x7f') out += `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + q;
}
