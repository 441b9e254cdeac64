/**
 * Text forms shared by the file sinks (DESIGN §4): metadata columns first, data keys sorted,
 * numbers in shortest round-trip form, non-finite numbers as the bare tokens NaN, Infinity,
 * -Infinity. Sorting is cached per table: rows of one table almost always have the same keys,
 * so the common case is one comparison of key arrays, not a sort.
 */
import type { Entry, Scalar } from './entry.js';

/** JSON text of a Scalar, with bare non-finite tokens. Other values fall back to JSON. */
export function scalarJson(v: unknown): string {
  switch (typeof v) {
    case 'number':
      return Number.isFinite(v) ? `${v}` : v !== v ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
    case 'string':
      return JSON.stringify(v);
    case 'boolean':
      return v ? 'true' : 'false';
    default:
      if (v === null || v === undefined) return 'null';
      try {
        return JSON.stringify(v) ?? 'null';
      } catch {
        return 'null';
      }
  }
}

/** The sorted data keys of a table's rows, with their JSON-quoted forms. */
export interface KeyLayout {
  /** Keys in the order rows had them (the cache key). */
  readonly seen: readonly string[];
  /** Sorted keys. */
  readonly keys: readonly string[];
  /** `"key":` for each sorted key. */
  readonly quoted: readonly string[];
}

/** Per-table cache of sorted keys. */
export class KeyOrder {
  readonly #byTable = new Map<string, KeyLayout>();

  /** The layout for `data`'s keys, reusing the table's last one when the keys are the same. */
  layout(table: string, data: Record<string, Scalar>): KeyLayout {
    const seen = Object.keys(data);
    const last = this.#byTable.get(table);
    if (last !== undefined && sameKeys(last.seen, seen)) return last;
    const keys = [...seen].sort();
    const layout: KeyLayout = { seen, keys, quoted: keys.map((k) => `${JSON.stringify(k)}:`) };
    this.#byTable.set(table, layout);
    return layout;
  }
}

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * One JSONL line (with `\n`): `$step`, `$time`, `$level` (and `$table` when asked, then `meta`,
 * pre-rendered members such as `,"$seq":17`), then sorted keys.
 */
export function jsonLine(entry: Entry<Record<string, Scalar>>, order: KeyOrder, withTable: boolean, meta = ''): string {
  const data = entry.data;
  const { keys, quoted } = order.layout(entry.table, data);
  let s = `{"$step":${scalarJson(entry.step)},"$time":${scalarJson(entry.time)},"$level":${scalarJson(entry.level)}`;
  if (withTable) s += `,"$table":${JSON.stringify(entry.table)}${meta}`;
  for (let i = 0; i < keys.length; i++) s += `,${quoted[i] as string}${scalarJson(data[keys[i] as string])}`;
  return `${s}}\n`;
}
