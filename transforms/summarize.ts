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
import type { Entry, FlatRow, Scalar } from '../lib/core/entry.js';
import { assertName, isEntry, META_KEYS } from '../lib/core/entry.js';
import { numberOption, optionError } from '../lib/core/errors.js';
import type { RowlogWarning } from '../lib/core/errors.js';
import { Level, toLevel } from '../lib/core/levels.js';
import type { LevelLike } from '../lib/core/levels.js';
import { WarningGate } from '../lib/core/warnings.js';

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
  /**
   * Containers (objects, Maps, Sets, non-numeric arrays) nested this deep are skipped with a
   * warning; leaves (numbers, numeric and typed arrays, Dates, tensors) are kept. @default 8
   */
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
    maxArrayItems: numberOption(opts.maxArrayItems ?? DEFAULTS.maxArrayItems, 'maxArrayItems', { min: 0, integer: true }),
    maxDepth: numberOption(opts.maxDepth ?? DEFAULTS.maxDepth, 'maxDepth', { min: 1, integer: true }),
    maxKeys: numberOption(opts.maxKeys ?? DEFAULTS.maxKeys, 'maxKeys', { min: 1, integer: true }),
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
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
/** Own keys of a plain row that carry metadata; `toEntry` reads them and leaves them out of the data. */
const ROW_META = new Set(['$table', '$step', '$time', '$level']);

/** The state of one summarization: the output row and the path of containers being visited. */
class Flattener {
  readonly out: FlatRow = {};
  readonly o: Resolved;
  readonly stack: object[] = [];
  count = 0;
  /** Set once `maxKeys` keys are written: the walk stops there (one warning). */
  full = false;
  /** Leave out the root's `$table`/`$step`/`$time`/`$level` keys (plain rows, see `toEntry`). */
  readonly skipRowMeta: boolean;

  constructor(o: Resolved, skipRowMeta: boolean) {
    this.o = o;
    this.skipRowMeta = skipRowMeta;
  }

  warn(code: string, message: string, key: string): void {
    this.o.onWarning?.(code, message, key);
  }

  put(key: string, v: Scalar): void {
    if (this.count >= this.o.maxKeys) {
      if (!this.full) {
        this.full = true;
        this.warn('W_KEY_LIMIT', `row has more than ${this.o.maxKeys} keys; the rest are dropped (maxKeys)`, '');
      }
      return;
    }
    // Reserved keys all start with '$': one char test spares a Set lookup for every other key.
    if (hasOwn(this.out, key) || (key.charCodeAt(0) === 36 && RESERVED.has(key))) {
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
        this.put(key, v <= MAX_SAFE && v >= MIN_SAFE ? Number(v) : v.toString());
        return;
      case 'object':
        if (v === null) this.put(key, null);
        else this.visitObject(v, key, depth);
        return;
      default: // undefined, function, symbol: skipped by design
        return;
    }
  }

  /**
   * Any object. Leaves (numeric arrays, typed arrays, Dates, boxed primitives, tensors) are
   * written at `key`; containers (other arrays, Sets, Maps, objects) are entered, which checks
   * the depth limit and cycles. Hostile objects (revoked Proxies, throwing traps or iterators)
   * skip the key with a warning: summarizing never throws.
   */
  visitObject(v: object, key: string, depth: number): void {
    if (this.full) return;
    try {
      this.dispatch(v, key, depth);
    } catch (err) {
      const k = leafKey(key, depth);
      this.warn('W_THREW', `reading '${k}' threw (${errText(err)}); the key was skipped`, k);
    }
  }

  dispatch(v: object, key: string, depth: number): void {
    if (Array.isArray(v)) {
      if (isNumberArray(v)) this.stats(v, leafKey(key, depth));
      else if (this.enter(v, key, depth)) {
        try {
          this.items(v, v.length, key, depth);
        } finally {
          this.stack.pop();
        }
      }
      return;
    }
    if (ArrayBuffer.isView(v)) {
      if (v instanceof DataView) return;
      const a = v as unknown as ArrayLike<number | bigint>;
      this.stats(a.length > 0 && typeof a[0] === 'bigint' ? Array.from(a, Number) : (a as ArrayLike<number>), leafKey(key, depth));
      return;
    }
    if (v instanceof Date) {
      const t = Date.prototype.getTime.call(v);
      this.put(leafKey(key, depth), Number.isNaN(t) ? null : Date.prototype.toISOString.call(v));
      return;
    }
    // A declared summarizer wins over every built-in rule below (a Map subclass may have one).
    let custom: Summarizer<unknown> | undefined;
    const proto = Object.getPrototypeOf(v) as object | null;
    if (proto !== Object.prototype && proto !== null) {
      custom = findSummarizer(proto);
      if (custom === undefined && this.boxed(v, key, depth)) return;
    }
    const isMap = custom === undefined && v instanceof Map;
    const isSet = custom === undefined && !isMap && v instanceof Set;
    if (custom === undefined && !isMap && !isSet && this.tensor(v, key, depth)) return;
    if (!this.enter(v, key, depth)) return;
    try {
      if (custom !== undefined) this.custom(custom, v, leafKey(key, depth), depth);
      else if (isMap) this.mapEntries(v as Map<unknown, unknown>, key, depth);
      else if (isSet) this.items(v as Set<unknown>, (v as Set<unknown>).size, key, depth);
      else this.object(v, key, depth);
    } finally {
      this.stack.pop();
    }
  }

  /** Checks the depth limit and cycles before a container is visited; pushes it when it may be. */
  enter(v: object, key: string, depth: number): boolean {
    if (depth >= this.o.maxDepth) {
      this.warn('W_DEPTH', `'${key}' is nested deeper than ${this.o.maxDepth} levels and was skipped (maxDepth)`, key);
      return false;
    }
    if (this.stack.includes(v)) {
      this.warn('W_CYCLE', `'${key}' refers back to an object that contains it (a cycle) and was skipped`, key);
      return false;
    }
    this.stack.push(v);
    return true;
  }

  /** A boxed primitive (`new Number(1)`): its primitive value. */
  boxed(v: object, key: string, depth: number): boolean {
    let p: unknown;
    if (v instanceof Number) p = Number.prototype.valueOf.call(v);
    else if (v instanceof String) p = String.prototype.valueOf.call(v);
    else if (v instanceof Boolean) p = Boolean.prototype.valueOf.call(v);
    else if (v instanceof BigInt) p = BigInt.prototype.valueOf.call(v);
    else return false;
    this.visit(p, leafKey(key, depth), depth);
    return true;
  }

  /** A tensor (TensorFlow.js and look-alikes: `dataSync()` and `shape`): its values, read now. */
  tensor(v: object, key: string, depth: number): boolean {
    const t = v as { dataSync?: unknown; shape?: unknown };
    if (typeof t.dataSync !== 'function' || t.shape === undefined) return false;
    const k = leafKey(key, depth);
    let data: unknown;
    try {
      data = (t.dataSync as () => unknown).call(v);
    } catch (err) {
      this.warn('W_THREW', `dataSync() of '${k}' threw (${errText(err)}); the key was skipped`, k);
      return true;
    }
    if (typeof data === 'object' && data !== null && (ArrayBuffer.isView(data) || Array.isArray(data))) this.visitObject(data, k, depth);
    else this.visit(data, k, depth);
    return true;
  }

  object(v: object, key: string, depth: number): void {
    let keys: string[];
    try {
      keys = Object.keys(v);
    } catch (err) {
      this.warn('W_THREW', `listing the keys of '${key}' threw (${errText(err)}); it was skipped`, key);
      return;
    }
    const skipMeta = this.skipRowMeta && depth === 0;
    for (const k of keys) {
      if (k === '_' || (skipMeta && ROW_META.has(k))) continue;
      if (this.full) return;
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
      const name = keyName(k);
      if (name === '_') continue;
      if (this.full) return;
      this.visit(child, join(key, name), depth + 1);
    }
  }

  items(it: Iterable<unknown>, length: number, key: string, depth: number): void {
    const max = this.o.maxArrayItems;
    let i = 0;
    for (const child of it) {
      if (i >= max || this.full) break;
      this.visit(child, join(key, String(i)), depth + 1);
      i++;
    }
    if (length > max) {
      // No length in the message: a list that grows every step is one problem, not one per row.
      this.warn('W_ARRAY_CUT', `'${key}' has more than ${max} items; only the first ${max} are kept (maxArrayItems)`, key);
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
    // First pass: sum and extremes, branch-free (NaN never wins a comparison). NaN and ±Infinity
    // are looked for only when the sum says there may be some: the common case pays nothing.
    // Unrolled by four with the very same operations in the same order (so the same bits): on
    // a 1e6-float Float32Array this pass took 0.97 ms rolled, 0.63 ms unrolled (node 20), and
    // the write bench's tensor rows were 57 % of its main-thread time (issue 9 profile).
    let sum = 0;
    let min = Infinity;
    let max = -Infinity;
    let i = 0;
    for (; i + 3 < n; i += 4) {
      const x0 = a[i] as number;
      const x1 = a[i + 1] as number;
      const x2 = a[i + 2] as number;
      const x3 = a[i + 3] as number;
      sum = sum + x0 + x1 + x2 + x3;
      min = x0 < min ? x0 : min;
      max = x0 > max ? x0 : max;
      min = x1 < min ? x1 : min;
      max = x1 > max ? x1 : max;
      min = x2 < min ? x2 : min;
      max = x2 > max ? x2 : max;
      min = x3 < min ? x3 : min;
      max = x3 > max ? x3 : max;
    }
    for (; i < n; i++) {
      const x = a[i] as number;
      sum += x;
      min = x < min ? x : min;
      max = x > max ? x : max;
    }
    let nan = false;
    let nonfinite = 0;
    if (!Number.isFinite(sum)) {
      for (let i = 0; i < n; i++) {
        const x = a[i] as number;
        if (x !== x) nan = true;
        if (x - x !== 0) nonfinite++; // NaN or ±Infinity
      }
    }
    if (nan) {
      min = NaN;
      max = NaN;
    }
    let mean = sum / n;
    let std = NaN;
    if (o.std && Number.isFinite(mean)) std = centralStd(a, mean, 1);
    if (!nan && nonfinite === 0 && (!Number.isFinite(mean) || (o.std && (!Number.isFinite(std) || (std === 0 && min !== max))))) {
      // Every value is finite but the sum or the squares over- or underflowed (|x| near 1e308
      // or 1e-200): redo both on values scaled by the largest magnitude.
      const scale = Math.max(-min, max);
      let m = 0;
      for (let i = 0; i < n; i++) m += (a[i] as number) / scale / n;
      mean = m * scale;
      if (o.std) std = centralStd(a, m, scale) * scale;
    }
    if (o.mean) this.put(`${key}.mean`, mean === 0 ? 0 : mean);
    if (o.min) this.put(`${key}.min`, min === 0 ? 0 : min);
    if (o.max) this.put(`${key}.max`, max === 0 ? 0 : max);
    if (o.std) this.put(`${key}.std`, std);
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
    if (o.nonfinite) this.put(`${key}.nonfinite`, nonfinite);
  }
}

/**
 * Population standard deviation of `a[i] / scale` around `mean` (already scaled), by the
 * corrected two-pass algorithm: stable when |mean| ≫ std (e.g. [1e9, 1e9+1, 1e9+2]).
 */
function centralStd(a: ArrayLike<number>, mean: number, scale: number): number {
  const n = a.length;
  let ss = 0;
  let comp = 0;
  if (scale === 1) {
    // Unrolled like the first pass in `stats`, same operations in the same order: 0.98 → 0.60 ms
    // per 1e6 floats.
    let i = 0;
    for (; i + 3 < n; i += 4) {
      const d0 = (a[i] as number) - mean;
      const d1 = (a[i + 1] as number) - mean;
      const d2 = (a[i + 2] as number) - mean;
      const d3 = (a[i + 3] as number) - mean;
      ss = ss + d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3;
      comp = comp + d0 + d1 + d2 + d3;
    }
    for (; i < n; i++) {
      const d = (a[i] as number) - mean;
      ss += d * d;
      comp += d;
    }
  } else {
    for (let i = 0; i < n; i++) {
      const d = (a[i] as number) / scale - mean;
      ss += d * d;
      comp += d;
    }
  }
  return Math.sqrt(Math.max(0, (ss - (comp * comp) / n) / n));
}

/** The key under which a leaf at the root (a Date, a tensor, …) is written. */
function leafKey(key: string, depth: number): string {
  return depth === 0 && key === '' ? 'value' : key;
}

/** A Map key as a path segment; never throws (a key object may have no or a throwing `toString`). */
function keyName(k: unknown): string {
  if (typeof k === 'string') return k;
  if (typeof k === 'symbol') return k.toString();
  if (typeof k === 'function') return '[function]';
  try {
    return String(k);
  } catch {
    return '[object]';
  }
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
 * that is not an object (a number, a string, an array, a typed array, a Date …) is kept under
 * the key `value`.
 */
export function summarizeRow(data: unknown, opts?: SummarizeRowOptions): FlatRow {
  return flatten(data, opts, false);
}

function flatten(data: unknown, opts: SummarizeRowOptions | undefined, skipRowMeta: boolean): FlatRow {
  const f = new Flattener(resolveCached(opts), skipRowMeta);
  if (typeof data !== 'object' || data === null || isListLike(data)) f.visit(data, 'value', 1);
  else f.visitObject(data, '', 0);
  return f.out;
}

/** Arrays and typed arrays at the root are values (`value.mean`, `value/0`), not rows. */
function isListLike(data: object): boolean {
  try {
    return Array.isArray(data) || ArrayBuffer.isView(data);
  } catch {
    return false; // a revoked Proxy: visitObject reports it
  }
}

/**
 * True for a usable step: a safe integer. A step like `1e300` or `0.5` would stop the
 * auto-step (last + 1 is the same number, or not a step) and repeat steps from then on.
 */
export function isStep(v: unknown): v is number {
  return Number.isSafeInteger(v);
}

/** The W_BAD_META message for a step that is not {@link isStep}. */
export function badStepMessage(key: string, v: unknown): string {
  return `${key}: must be a safe integer (got ${describe(v)}); the row got the next step`;
}

/** Per-table step counters: a row without a step gets one more than its table's last step. */
export class TableSteps {
  readonly #last = new Map<string, number>();

  /** The step of the next row of `table`: `given` when it is a step ({@link isStep}), else last + 1 (0 first). */
  next(table: string, given?: unknown): number {
    const step = isStep(given) ? given : (this.#last.get(table) ?? -1) + 1;
    this.#last.set(table, step);
    return step;
  }

  /** The last step of each table, for persisting. */
  toJSON(): Record<string, number> {
    return Object.fromEntries(this.#last);
  }

  /** Continues counting from steps saved by {@link toJSON}. */
  restore(saved: Record<string, unknown>): void {
    for (const [t, s] of Object.entries(saved)) if (isStep(s)) this.#last.set(t, s);
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
  /** Reports a problem; `detail` names it for de-duplication (default: the message). */
  warn: (w: RowlogWarning, detail?: string) => void;
  /** Told the table before its row is summarized, so warnings name it. */
  onTable: (table: string) => void;
}

/**
 * An Entry (data summarized) from an Entry or a plain row. Plain rows may carry `$table`,
 * `$step`, `$time` and `$level` keys (left out of the data); bad ones warn and fall back to
 * the defaults. Throws `ERR_INVALID_TABLE` only for an Entry whose table is invalid. With
 * `plain`, `chunk` is a row even when it is shaped like an Entry (rows from another process).
 */
export function toEntry(chunk: unknown, ctx: EntryContext, plain = false): Entry<FlatRow> {
  let e: Entry<unknown> | undefined;
  try {
    if (!plain && isEntry(chunk)) e = { table: chunk.table, level: chunk.level, step: chunk.step, time: chunk.time, data: chunk.data };
  } catch {
    e = undefined; // a getter threw: not a usable Entry, so a plain row
  }
  if (e !== undefined) {
    assertName(e.table);
    // NaN is an Entry's "no step" (the collector passes rows without `$step` so): the next one.
    if (e.step !== undefined && !Number.isNaN(e.step) && !isStep(e.step)) ctx.warn({ code: 'W_BAD_META', message: badStepMessage('step', e.step), table: e.table }, 'step');
  }
  const raw = e ?? rowMeta(chunk, ctx);
  ctx.onTable(raw.table);
  return {
    table: raw.table,
    level: raw.level,
    step: ctx.steps.next(raw.table, raw.step),
    time: Number.isFinite(raw.time) ? raw.time : Date.now(),
    data: flatten(e === undefined ? chunk : e.data, ctx.rowOpts, e === undefined),
  };
}

/**
 * An object-mode Transform from Entries or plain rows to Entries whose `data` is flat.
 * Plain rows may carry `$table`, `$step`, `$time` and `$level` keys (as `rowlog pipe`
 * input does); otherwise the options' `table` and `level`, the next step and the current
 * time are used. Emits `'warning'` once per distinct problem per table.
 */
export function summarize(opts: SummarizeOptions = {}): Transform {
  if (typeof opts !== 'object' || opts === null) throw optionError('type', 'options', 'must be an object');
  const { table = 'main', level = Level.INFO, ...rowOpts } = opts;
  let ctx: EntryContext | undefined;
  const stream = new Transform({
    objectMode: true,
    transform(chunk: unknown, _enc, callback) {
      let entry: Entry<FlatRow>;
      try {
        entry = toEntry(chunk, ctx as EntryContext);
      } catch (err) {
        callback(err as Error);
        return;
      }
      callback(null, entry);
    },
  });
  ctx = createEntryContext(table, level, rowOpts, new WarningGate(stream));
  return stream;
}

/**
 * The context of {@link toEntry}, with validated options, fresh per-table steps, and warnings
 * de-duplicated per (table, code, key) through `gate` (used by `summarize()` and the logger).
 */
export function createEntryContext(
  table: string,
  level: LevelLike,
  opts: Omit<SummarizeRowOptions, 'onWarning'> | undefined,
  gate: WarningGate,
): EntryContext {
  assertName(table);
  let current = table;
  const ctx: EntryContext = {
    table,
    level: toLevel(level, 'level'),
    steps: new TableSteps(),
    rowOpts: {
      ...opts,
      // One warning per (table, code, key): messages may differ from row to row.
      onWarning: (code, message, key) => gate.warn({ code, message: `${message} in table '${current}'`, table: current }, key),
    },
    warn: (w, detail) => gate.warn(w, detail ?? w.message),
    onTable: (t) => (current = t),
  };
  checkSummarizeOptions(ctx.rowOpts);
  return ctx;
}

/**
 * The `$table`, `$level`, `$step` and `$time` of a plain row, validated: a bad one warns
 * (once per table and key) and the default is used. Never throws.
 */
function rowMeta(row: unknown, ctx: EntryContext): Omit<Entry<unknown>, 'data'> {
  const m = { table: ctx.table, level: ctx.level, step: NaN, time: NaN };
  let $table: unknown, $level: unknown, $step: unknown, $time: unknown;
  try {
    if (typeof row !== 'object' || row === null || Array.isArray(row)) return m;
    ({ $table, $level, $step, $time } = row as Record<string, unknown>);
  } catch (err) {
    ctx.warn({ code: 'W_BAD_META', message: `reading the $-keys of a row threw (${errText(err)}); the defaults were used`, table: m.table }, '$');
    return m;
  }
  const bad = (key: string, message: string): void =>
    ctx.warn({ code: 'W_BAD_META', message: `${key}: ${message}`, table: m.table }, key);
  if ($table !== undefined) {
    if (typeof $table !== 'string') bad('$table', `must be a string (got ${describe($table)}); the row went to table '${m.table}'`);
    else {
      try {
        assertName($table);
        m.table = $table;
      } catch (err) {
        bad('$table', `${errText(err)}; the row went to table '${m.table}'`);
      }
    }
  }
  if ($level !== undefined) {
    try {
      if (typeof $level !== 'number' && typeof $level !== 'string') throw new TypeError(`unknown level ${describe($level)}`);
      m.level = toLevel($level, '$level');
    } catch (err) {
      bad('$level', `${errText(err).replace(/^\$level: /, '')}; the row kept level ${m.level}`);
    }
  }
  if ($step !== undefined) {
    if (isStep($step)) m.step = $step;
    else ctx.warn({ code: 'W_BAD_META', message: badStepMessage('$step', $step), table: m.table }, '$step');
  }
  if ($time !== undefined) {
    if (typeof $time === 'number' && Number.isFinite($time)) m.time = $time;
    else bad('$time', `must be a finite number of ms since the epoch (got ${describe($time)}); the row got the current time`);
  }
  return m;
}

/** A short, safe description of a value for a message. */
function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  try {
    return typeof v === 'bigint' ? `${v}n` : String(v);
  } catch {
    return typeof v;
  }
}
