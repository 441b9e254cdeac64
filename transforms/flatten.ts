/**
 * Flattening (docs/DESIGN.md §3): turns whatever a training loop hands us (nested objects, Maps, typed
 * arrays, tensors, class instances, cycles, throwing getters) into one flat object of Scalars.
 * It runs synchronously inside `log.row()`, so it is written for the hot path: one pass over the
 * value, no intermediate objects for plain numbers, and the statistics of numeric arrays in
 * tight loops (./stats.ts). It never throws on row content; problems go to `onWarning`, which
 * the caller de-duplicates (once per table, never once per row).
 *
 * The public entry points are in ./summarize.ts (`summarizeRow`, the `summarize()` Transform);
 * class summarizers are declared in ./summarizers.ts; framework tensors, models and strided views
 * are recognised in ./tensors.ts.
 *
 * Why one file of ~360 lines: the walk is one recursive function over one Flattener state (key
 * buffer, clash counters, limits); splitting it would put a call between the hot loop and its
 * state. The array statistics (stats.ts) and class summarizers (summarizers.ts) live apart.
 */
import type { FlatRow, Scalar } from '../lib/core/entry.js';
import { META_KEYS } from '../lib/core/entry.js';
import { numberOption } from '../lib/core/options.js';
import { errText, ROW_META } from '../lib/core/ingest.js';
import { putStats, statChoice, typedNumbers } from './stats.js';
import type { StatChoice, StatName } from './stats.js';
import { findSummarizer } from './summarizers.js';
import type { Summarizer } from './summarizers.js';
import { summarizeFramework } from './tensors.js';
import type { TensorHost } from './tensors.js';

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

const DEFAULTS = Object.freeze({
  stats: Object.freeze(['mean', 'min', 'max', 'std'] as StatName[]),
  maxArrayItems: 16,
  maxDepth: 8,
  maxKeys: 10_000,
});

const RESERVED = new Set<string>(META_KEYS);
const hasOwn = Object.hasOwn;

interface Resolved extends StatChoice {
  maxArrayItems: number; maxDepth: number; maxKeys: number;
  onWarning: SummarizeRowOptions['onWarning'];
}

const resolvedCache = new WeakMap<object, Resolved>();
const DEFAULT_RESOLVED = resolve({});

/** Validates and resolves options. */
function resolve(opts: SummarizeRowOptions): Resolved {
  return {
    ...statChoice(opts.stats ?? DEFAULTS.stats),
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

/** The state of one summarization: the output row and the path of containers being visited. */
class Flattener implements TensorHost {
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
      this.stats(typedNumbers(v as unknown as ArrayLike<number | bigint>), leafKey(key, depth));
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
    const instance = proto !== Object.prototype && proto !== null;
    if (instance) {
      custom = findSummarizer(proto);
      if (custom === undefined && this.boxed(v, key, depth)) return;
    }
    const isMap = custom === undefined && v instanceof Map;
    const isSet = custom === undefined && !isMap && v instanceof Set;
    if (custom === undefined && !isMap && !isSet && summarizeFramework(v, key, leafKey(key, depth), depth, instance, this)) return;
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

  /** Numeric array: length 1 → the value; length ≥ 2 → the chosen statistics (transforms/stats.ts). */
  stats(a: ArrayLike<number>, key: string): void {
    const n = a.length;
    if (n === 0) return;
    if (n === 1) this.visit(a[0], key, 0);
    else putStats(a, key, this.o, this);
  }
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

/**
 * Flattens `data` into one object of Scalars (docs/DESIGN.md §3); never throws on content. A value that
 * is not an object (a number, a string, an array, a typed array, a Date …) is kept under the key
 * `value`. With `skipRowMeta`, the root's `$table`/`$step`/`$time`/`$level` keys are left out
 * (a plain row's metadata, read by lib/core/ingest.ts).
 */
export function flatten(data: unknown, opts: SummarizeRowOptions | undefined, skipRowMeta: boolean): FlatRow {
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
