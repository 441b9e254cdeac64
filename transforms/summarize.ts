/**
 * summarize: turns whatever a training loop hands us (nested objects, Maps, typed arrays,
 * tensors, class instances, cycles, throwing getters) into one flat object of Scalars
 * (DESIGN §3). It runs synchronously inside `log.row()`, so it is written for the hot path:
 * one pass over the value, no intermediate objects for plain numbers, and statistics over
 * numeric arrays in two tight loops. It never throws on row content; problems become
 * warnings, reported once per table by the caller.
 *
 * `summarizeRow()` is the pure function; `summarize()` wraps it in an object-mode Transform
 * that accepts Entries or plain rows.
 */
import { Transform } from 'node:stream';
import type { Entry, FlatRow, Scalar } from '../lib/entry.js';
import { assertName, isEntry, META_KEYS } from '../lib/entry.js';
import { optionError } from '../lib/errors.js';
import type { RowlogWarning } from '../lib/errors.js';
import { Level, toLevel } from '../lib/levels.js';
import type { LevelLike } from '../lib/levels.js';
import { WarningGate } from '../lib/warnings.js';

/** Statistics that can be written for a numeric array. */
export type StatName = 'mean' | 'min' | 'max' | 'std' | 'norm' | 'len' | 'nonfinite';
const STAT_NAMES: readonly StatName[] = ['mean', 'min', 'max', 'std', 'norm', 'len', 'nonfinite'];

/** How rows are flattened. */
export interface SummarizeRowOptions {
  /**
   * Statistics written for a numeric array of length ≥ 2, as `key.<stat>`: `mean`, `min`,
   * `max`, `std` (population), `norm` (L2), `len`, `nonfinite` (count of NaN/±Infinity).
   * @default ['mean', 'min', 'max', 'std']
   */
  stats?: readonly StatName[];
  /** Items of a non-numeric array or Set kept per index (`key/0/…`); the rest are cut. @default 16 */
  maxArrayItems?: number;
  /** Nesting depth below which values are skipped with a warning. @default 8 */
  maxDepth?: number;
  /** Keys per row; further keys are dropped with a warning. @default 10000 */
  maxKeys?: number;
  /** Called for each problem met (the caller de-duplicates). @default no reporting */
  onWarning?: (code: string, message: string, key: string) => void;
}

/** Options of the {@link summarize} Transform. */
export interface SummarizeOptions extends Omit<SummarizeRowOptions, 'onWarning'> {
  /** Table of plain rows that carry no `$table` key. @default 'main' */
  table?: string;
  /** Level of plain rows that carry no `$level` key. @default 'INFO' */
  level?: LevelLike;
}

/**
 * Writes the summary of `value` into `dst` under keys starting with `prefix` (e.g.
 * `dst[`${prefix}.r`] = value.r`); `recurse(nested, key)` summarizes a nested value with the
 * normal rules. Values put in `dst` that are not Scalars are summarized too.
 */
export type Summarizer<T> = (
  value: T,
  prefix: string,
  dst: Record<string, unknown>,
  recurse: (value: unknown, key: string) => void,
) => void;

// Keyed by prototype, so a summarizer declared on a base class matches its subclasses.
const summarizers = new WeakMap<object, Summarizer<never>>();

/** Declares how instances of `cls` (and of its subclasses) are summarized. */
export function declareSummarizer<T extends object>(
  cls: abstract new (...args: never[]) => T,
  fn: Summarizer<T>,
): void {
  if (typeof cls !== 'function' || typeof cls.prototype !== 'object') {
    throw optionError('type', 'declareSummarizer class', 'must be a class or constructor function');
  }
  if (typeof fn !== 'function') throw optionError('type', 'declareSummarizer summarizer', 'must be a function');
  summarizers.set(cls.prototype as object, fn as Summarizer<never>);
}

function findSummarizer(proto: object | null): Summarizer<unknown> | undefined {
  for (let p = proto; p !== null && p !== Object.prototype; p = Object.getPrototypeOf(p) as object | null) {
    const fn = summarizers.get(p);
    if (fn !== undefined) return fn as Summarizer<unknown>;
  }
  return undefined;
}

const DEFAULTS = Object.freeze({
  stats: Object.freeze(['mean', 'min', 'max', 'std'] as StatName[]),
  maxArrayItems: 16,
  maxDepth: 8,
  maxKeys: 10_000,
});

const RESERVED = new Set<string>(META_KEYS);
const hasOwn = Object.hasOwn;

interface Resolved {
  mean: boolean; min: boolean; max: boolean; std: boolean; norm: boolean; len: boolean; nonfinite: boolean;
  maxArrayItems: number; maxDepth: number; maxKeys: number;
  onWarning: SummarizeRowOptions['onWarning'];
}

function positiveInt(v: unknown, option: string, allowZero: boolean): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw optionError('type', option, `must be an integer (got ${String(v)})`);
  if (v < (allowZero ? 0 : 1)) throw optionError('range', option, `must be ${allowZero ? '≥ 0' : '≥ 1'} (got ${v})`);
  return v;
}

const resolvedCache = new WeakMap<object, Resolved>();
const DEFAULT_RESOLVED = resolve({});

/** Validates and resolves options. */
function resolve(opts: SummarizeRowOptions): Resolved {
  const stats = opts.stats ?? DEFAULTS.stats;
  if (!Array.isArray(stats)) throw optionError('type', 'stats', 'must be an array of stat names');
  for (const s of stats) {
    if (!STAT_NAMES.includes(s)) throw optionError('range', 'stats', `unknown stat ${JSON.stringify(s)} (known: ${STAT_NAMES.join(', ')})`);
  }
  return {
    mean: stats.includes('mean'), min: stats.includes('min'), max: stats.includes('max'), std: stats.includes('std'),
    norm: stats.includes('norm'), len: stats.includes('len'), nonfinite: stats.includes('nonfinite'),
    maxArrayItems: positiveInt(opts.maxArrayItems ?? DEFAULTS.maxArrayItems, 'maxArrayItems', true),
    maxDepth: positiveInt(opts.maxDepth ?? DEFAULTS.maxDepth, 'maxDepth', false),
    maxKeys: positiveInt(opts.maxKeys ?? DEFAULTS.maxKeys, 'maxKeys', false),
    onWarning: opts.onWarning,
  };
}

function resolveCached(opts: SummarizeRowOptions | undefined): Resolved {
  if (opts === undefined) return DEFAULT_RESOLVED;
  let r = resolvedCache.get(opts);
  if (r === undefined) {
    r = resolve(opts);
    resolvedCache.set(opts, r);
  }
  return r;
}

/** Validates summarize options now (throws the option errors), so a factory fails early. */
export function checkSummarizeOptions(opts: SummarizeRowOptions): void {
  resolveCached(opts);
}

const join = (prefix: string, key: string): string => (prefix === '' ? key : `${prefix}/${key}`);

/** The state of one summarization: the output row and the path of objects being visited. */
class Flattener {
  readonly out: FlatRow = {};
  readonly o: Resolved;
  readonly stack: object[] = [];
  count = 0;

  constructor(o: Resolved) {
    this.o = o;
  }

  warn(code: string, message: string, key: string): void {
    this.o.onWarning?.(code, message, key);
  }

  put(key: string, v: Scalar): void {
    if (this.count >= this.o.maxKeys) {
      this.warn('W_KEY_LIMIT', `row has more than ${this.o.maxKeys} keys; the rest are dropped (maxKeys)`, '');
      return;
    }
    if (hasOwn(this.out, key) || RESERVED.has(key)) {
      let i = 1;
      while (hasOwn(this.out, `${key}_${i}`)) i++;
      key = `${key}_${i}`;
    }
    if (key === '__proto__') Object.defineProperty(this.out, key, { value: v, enumerable: true, writable: true, configurable: true });
    else this.out[key] = v;
    this.count++;
  }

  visit(v: unknown, key: string, depth: number): void {
    switch (typeof v) {
      case 'number':
        this.put(key, v === 0 ? 0 : v); // -0 → 0
        return;
      case 'string':
      case 'boolean':
        this.put(key, v);
        return;
      case 'bigint':
        this.put(key, v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v.toString());
        return;
      case 'object':
        if (v === null) this.put(key, null);
        else this.visitObject(v, key, depth);
        return;
      default: // undefined, function, symbol: skipped by design
        return;
    }
  }

  visitObject(v: object, key: string, depth: number): void {
    if (depth >= this.o.maxDepth) {
      this.warn('W_DEPTH', `'${key}' is nested deeper than ${this.o.maxDepth} levels and was skipped (maxDepth)`, key);
      return;
    }
    if (this.stack.includes(v)) {
      this.warn('W_CYCLE', `'${key}' refers back to an object that contains it (a cycle) and was skipped`, key);
      return;
    }
    if (Array.isArray(v)) {
      if (isNumberArray(v)) this.stats(v, key);
      else this.items(v, v.length, key, depth);
      return;
    }
    if (ArrayBuffer.isView(v)) {
      if (v instanceof DataView) return;
      const a = v as unknown as ArrayLike<number | bigint>;
      this.stats(a.length > 0 && typeof a[0] === 'bigint' ? Array.from(a, Number) : (a as ArrayLike<number>), key);
      return;
    }
    if (v instanceof Date) {
      const t = v.getTime();
      this.put(key, Number.isNaN(t) ? null : v.toISOString());
      return;
    }
    this.stack.push(v);
    try {
      if (v instanceof Map) this.mapEntries(v, key, depth);
      else if (v instanceof Set) this.items(v, v.size, key, depth);
      else this.object(v, key, depth);
    } finally {
      this.stack.pop();
    }
  }

  object(v: object, key: string, depth: number): void {
    const proto = Object.getPrototypeOf(v) as object | null;
    const custom = proto === Object.prototype || proto === null ? undefined : findSummarizer(proto);
    if (custom !== undefined) return this.custom(custom, v, key, depth);
    const t = v as { dataSync?: unknown; shape?: unknown };
    if (typeof t.dataSync === 'function' && t.shape !== undefined) {
      // A tensor (TensorFlow.js and look-alikes): read its values now, synchronously.
      let data: unknown;
      try {
        data = (t.dataSync as () => unknown).call(v);
      } catch (err) {
        this.warn('W_THREW', `dataSync() of '${key}' threw (${errText(err)}); the key was skipped`, key);
        return;
      }
      this.visit(data, key, depth);
      return;
    }
    if (v instanceof Number || v instanceof String || v instanceof Boolean) {
      this.visit(v.valueOf(), key, depth);
      return;
    }
    let keys: string[];
    try {
      keys = Object.keys(v);
    } catch (err) {
      this.warn('W_THREW', `listing the keys of '${key}' threw (${errText(err)}); it was skipped`, key);
      return;
    }
    for (const k of keys) {
      if (k === '_') continue;
      let child: unknown;
      try {
        child = (v as Record<string, unknown>)[k];
      } catch (err) {
        const path = join(key, k);
        this.warn('W_THREW', `reading '${path}' threw (${errText(err)}); the key was skipped`, path);
        continue;
      }
      this.visit(child, join(key, k), depth + 1);
    }
  }

  mapEntries(m: Map<unknown, unknown>, key: string, depth: number): void {
    for (const [k, child] of m) {
      const name = typeof k === 'string' ? k : String(k as string);
      if (name === '_') continue;
      this.visit(child, join(key, name), depth + 1);
    }
  }

  items(it: Iterable<unknown>, length: number, key: string, depth: number): void {
    const max = this.o.maxArrayItems;
    let i = 0;
    for (const child of it) {
      if (i >= max) break;
      this.visit(child, join(key, String(i)), depth + 1);
      i++;
    }
    if (length > max) {
      this.warn('W_ARRAY_CUT', `'${key}' has ${length} items; only the first ${max} are kept (maxArrayItems)`, key);
    }
  }

  custom(fn: Summarizer<unknown>, v: object, key: string, depth: number): void {
    const dst: Record<string, unknown> = {};
    try {
      fn(v, key, dst, (nested, k) => this.visit(nested, k, depth + 1));
    } catch (err) {
      this.warn('W_THREW', `the summarizer of '${key}' threw (${errText(err)}); its keys were skipped`, key);
      return;
    }
    for (const k of Object.keys(dst)) this.visit(dst[k], k, depth + 1);
  }

  /** Numeric array: length 1 → the value; length ≥ 2 → the chosen statistics. */
  stats(a: ArrayLike<number>, key: string): void {
    const n = a.length;
    if (n === 0) return;
    if (n === 1) {
      this.visit(a[0], key, 0);
      return;
    }
    const o = this.o;
    // First pass: sum, extremes, NaN and non-finite counts.
    let sum = 0;
    let min = Infinity;
    let max = -Infinity;
    let nan = false;
    let nonfinite = 0;
    for (let i = 0; i < n; i++) {
      const x = a[i] as number;
      sum += x;
      if (x < min) min = x;
      if (x > max) max = x;
      if (x !== x) nan = true;
      else if (x === Infinity || x === -Infinity) nonfinite++;
    }
    if (nan) {
      min = NaN;
      max = NaN;
    }
    const mean = sum / n;
    if (o.mean) this.put(`${key}.mean`, mean === 0 ? 0 : mean);
    if (o.min) this.put(`${key}.min`, min === 0 ? 0 : min);
    if (o.max) this.put(`${key}.max`, max === 0 ? 0 : max);
    if (o.std) {
      let std = NaN;
      if (Number.isFinite(mean)) {
        // Corrected two-pass algorithm: stable when |mean| ≫ std (e.g. [1e9, 1e9+1, 1e9+2]).
        let ss = 0;
        let comp = 0;
        for (let i = 0; i < n; i++) {
          const d = (a[i] as number) - mean;
          ss += d * d;
          comp += d;
        }
        std = Math.sqrt(Math.max(0, (ss - (comp * comp) / n) / n));
      }
      this.put(`${key}.std`, std);
    }
    if (o.norm) {
      let norm: number;
      const scale = Math.max(Math.abs(min), Math.abs(max));
      if (nan) norm = NaN;
      else if (scale === 0) norm = 0;
      else if (!Number.isFinite(scale)) norm = Infinity;
      else {
        let ss = 0;
        for (let i = 0; i < n; i++) {
          const y = (a[i] as number) / scale;
          ss += y * y;
        }
        norm = scale * Math.sqrt(ss);
      }
      this.put(`${key}.norm`, norm);
    }
    if (o.len) this.put(`${key}.len`, n);
    if (o.nonfinite) this.put(`${key}.nonfinite`, nan ? countNonFinite(a) : nonfinite);
  }
}

function countNonFinite(a: ArrayLike<number>): number {
  let c = 0;
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) c++;
  return c;
}

function isNumberArray(a: readonly unknown[]): a is number[] {
  for (let i = 0; i < a.length; i++) if (typeof a[i] !== 'number') return false;
  return true;
}

function errText(err: unknown): string {
  try {
    return err instanceof Error ? err.message : String(err);
  } catch {
    return 'unprintable error';
  }
}

/**
 * Flattens `data` into one object of Scalars (DESIGN §3). Never throws on content; a value
 * that is not an object is kept under the key `value`.
 */
export function summarizeRow(data: unknown, opts?: SummarizeRowOptions): FlatRow {
  const f = new Flattener(resolveCached(opts));
  if (typeof data === 'object' && data !== null && !Array.isArray(data) && !ArrayBuffer.isView(data)) {
    f.visitObject(data, '', 0);
  } else {
    f.visit(data, 'value', 1);
  }
  return f.out;
}

/** Per-table step counters: a row without a step gets one more than its table's last step. */
export class TableSteps {
  readonly #last = new Map<string, number>();

  /** The step of the next row of `table`: `given` when it is a number, else last + 1 (0 first). */
  next(table: string, given?: unknown): number {
    const step = typeof given === 'number' && Number.isFinite(given) ? given : (this.#last.get(table) ?? -1) + 1;
    this.#last.set(table, step);
    return step;
  }

  /** The last step of each table, for persisting. */
  toJSON(): Record<string, number> {
    return Object.fromEntries(this.#last);
  }

  /** Continues counting from steps saved by {@link toJSON}. */
  restore(saved: Record<string, unknown>): void {
    for (const [t, s] of Object.entries(saved)) if (typeof s === 'number' && Number.isFinite(s)) this.#last.set(t, s);
  }
}

/** What turns an incoming object into a summarized Entry (shared with the logger). */
export interface EntryContext {
  /** Table of plain rows without `$table`. */
  table: string;
  /** Level of plain rows without `$level`. */
  level: number;
  steps: TableSteps;
  rowOpts: SummarizeRowOptions;
  warn: (w: RowlogWarning) => void;
  /** Told the table before its row is summarized, so warnings name it. */
  onTable: (table: string) => void;
}

/**
 * An Entry (data summarized) from an Entry or a plain row. Plain rows may carry `$table`,
 * `$step`, `$time` and `$level` keys; bad ones warn and fall back to the defaults. Throws
 * `ERR_INVALID_TABLE` only for an Entry whose table is invalid.
 */
export function toEntry(chunk: unknown, ctx: EntryContext): Entry<FlatRow> {
  let raw: Entry<unknown>;
  if (isEntry(chunk)) {
    assertName(chunk.table);
    raw = chunk;
  } else {
    raw = fromPlainRow(chunk, ctx.table, ctx.level, ctx.warn);
  }
  ctx.onTable(raw.table);
  return {
    table: raw.table,
    level: raw.level,
    step: ctx.steps.next(raw.table, raw.step),
    time: typeof raw.time === 'number' ? raw.time : Date.now(),
    data: summarizeRow(raw.data, ctx.rowOpts),
  };
}

/**
 * An object-mode Transform from Entries or plain rows to Entries whose `data` is flat.
 * Plain rows may carry `$table`, `$step`, `$time` and `$level` keys (as `rowlog pipe`
 * input does); otherwise the options' `table` and `level`, the next step and the current
 * time are used. Emits `'warning'` once per distinct problem per table.
 */
export function summarize(opts: SummarizeOptions = {}): Transform {
  const table = opts.table ?? 'main';
  assertName(table);
  let gate: WarningGate;
  let current = table;
  const ctx: EntryContext = {
    table,
    level: toLevel(opts.level ?? Level.INFO, 'level'),
    steps: new TableSteps(),
    rowOpts: {
      ...opts,
      onWarning: (code, message) => gate.warn({ code, message: `${message} in table '${current}'`, table: current }, message),
    },
    warn: (w) => gate.warn(w, w.message),
    onTable: (t) => (current = t),
  };
  checkSummarizeOptions(ctx.rowOpts);
  const stream = new Transform({
    objectMode: true,
    transform(chunk: unknown, _enc, callback) {
      let entry: Entry<FlatRow>;
      try {
        entry = toEntry(chunk, ctx);
      } catch (err) {
        callback(err as Error);
        return;
      }
      callback(null, entry);
    },
  });
  gate = new WarningGate(stream);
  return stream;
}

/** Splits a plain row into its `$`-metadata (validated, with fallbacks) and its data. */
function fromPlainRow(row: unknown, table: string, level: number, warn: (w: RowlogWarning) => void): Entry<unknown> {
  let data = row;
  let meta: Record<string, unknown> = {};
  if (typeof row === 'object' && row !== null && !Array.isArray(row)) {
    const r = row as Record<string, unknown>;
    if ('$table' in r || '$step' in r || '$time' in r || '$level' in r) {
      const { $table, $step, $time, $level, ...rest } = r;
      meta = { $table, $step, $time, $level };
      data = rest;
    }
  }
  let t = table;
  if (meta.$table !== undefined) {
    try {
      assertName(meta.$table);
      t = meta.$table;
    } catch (err) {
      warn({ code: 'W_BAD_META', message: `${(err as Error).message}; the row went to table '${table}'`, table });
    }
  }
  let lv = level;
  if (meta.$level !== undefined) {
    try {
      lv = toLevel(meta.$level as LevelLike, '$level');
    } catch (err) {
      warn({ code: 'W_BAD_META', message: `${(err as Error).message}; the row kept level ${level}`, table: t });
    }
  }
  return { table: t, level: lv, step: meta.$step as number, time: meta.$time as number, data };
}
