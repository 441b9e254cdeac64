/**
 * Entry building (docs/DESIGN.md §2): what turns an incoming object, an Entry or a plain row, into an
 * Entry's metadata. Plain rows may carry `$table`, `$step`, `$time` and `$level` (rows piped in
 * by `rowlog pipe`, written to `summarize()` or to the logger's writable side); a bad one warns
 * `W_BAD_META` once per table and key, and the default is used. A row without a step gets one
 * more than its table's last step.
 *
 * Why this sits in lib/core and not in lib/log: the `summarize()` Transform (transforms/, a
 * layer below lib/log) wraps plain rows too (docs/DESIGN.md §2), so the rule it shares with the logger
 * must live below both. How `data` is summarized is not known here: {@link toEntry} takes the
 * flattening function from its caller (transforms/summarize.ts `entryFlattener`), so this layer
 * imports nothing above it.
 */
import type { Entry } from './entry.js';
import { assertName, isEntry } from './entry.js';
import type { RowlogWarning } from './warnings.js';
import { toLevel } from './levels.js';
import type { LevelLike } from './levels.js';
import type { WarningGate } from './warnings.js';

/** Own keys of a plain row that carry metadata; {@link toEntry} reads them and the flattening leaves them out of the data. */
export const ROW_META: ReadonlySet<string> = new Set(['$table', '$step', '$time', '$level']);

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

/** What turns incoming objects into Entries: the defaults, the step counters, and where warnings go. */
export interface EntryContext {
  /** Table of plain rows without `$table`. */
  readonly table: string;
  /** Level of plain rows without `$level`. */
  readonly level: number;
  readonly steps: TableSteps;
  /** The table of the row being built, so warnings raised while its data is flattened name it. */
  current: string;
  /** Reports a problem once per (table, code, `detail`); `detail` defaults to the message. */
  warn(w: RowlogWarning, detail?: string): void;
}

/**
 * A context for {@link toEntry}: validated defaults (`ERR_INVALID_TABLE`, an unknown level),
 * fresh per-table steps, and warnings de-duplicated through `gate`.
 */
export function createEntryContext(table: string, level: LevelLike, gate: WarningGate): EntryContext {
  assertName(table);
  return {
    table,
    level: toLevel(level, 'level'),
    steps: new TableSteps(),
    current: table,
    warn: (w, detail) => gate.warn(w, detail ?? w.message),
  };
}

/**
 * Flattens the data of an Entry being built; `rowMeta` is true when `data` is a plain row whose
 * root `$table`/`$step`/`$time`/`$level` keys are metadata (left out of the data).
 */
export type FlattenData<D> = (data: unknown, rowMeta: boolean) => D;

/**
 * An Entry from an Entry or a plain row, its data made by `flatten`. Plain rows may carry
 * `$table`, `$step`, `$time` and `$level` keys; bad ones warn and fall back to the defaults.
 * Throws `ERR_INVALID_TABLE` only for an Entry whose table is invalid. With `plain`, `chunk` is
 * a row even when it is shaped like an Entry (rows from another process).
 */
export function toEntry<D>(chunk: unknown, ctx: EntryContext, flatten: FlattenData<D>, plain = false): Entry<D> {
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
  ctx.current = raw.table;
  return {
    table: raw.table,
    level: raw.level,
    step: ctx.steps.next(raw.table, raw.step),
    time: Number.isFinite(raw.time) ? raw.time : Date.now(),
    data: flatten(e === undefined ? chunk : e.data, e === undefined),
  };
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

/** An error's message; never throws (a thrown value may be anything). */
export function errText(err: unknown): string {
  try {
    return err instanceof Error ? err.message : String(err);
  } catch {
    return 'unprintable error';
  }
}
