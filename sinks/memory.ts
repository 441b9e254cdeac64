/**
 * memorySink: Mímir's in-memory deque, per table. Keeps the last `maxlen` Entries of each table
 * in a ring buffer (lib/core/ring.ts: O(1) per row, no shifting) so a notebook, a test or an
 * early-stopping rule can read recent rows back without touching the disk:
 * `sink.table('train').last(10)`.
 */
import { Writable } from 'node:stream';
import { isEntry } from '../lib/core/entry.js';
import type { Entry, FlatRow, Scalar } from '../lib/core/entry.js';
import { numberOption, objectOption } from '../lib/core/options.js';
import { Ring } from '../lib/core/ring.js';
import type { Sink } from '../lib/core/sink.js';
import { KeyOrder } from '../lib/format/json-line.js';

/** A count of rows: an integer ≥ 0, or Infinity for all. */
const COUNT = Object.freeze({ min: 0, integer: true, infinite: true });

/** Options of {@link memorySink}. */
export interface MemorySinkOptions {
  /** Entries kept per table: an integer ≥ 0 (0 keeps none) or `Infinity` (keeps all). @default 1000 */
  maxlen?: number;
}

/** A row as the files hold it: `$step`, `$time`, `$level` first, then the data keys sorted. */
export type MemoryRow = Record<string, Scalar>;

/** A live, read-only view of one table's kept Entries. */
export interface TableView extends Iterable<Entry<FlatRow>> {
  /** How many Entries are kept. */
  readonly length: number;
  /** The last `n` kept Entries, oldest first (all kept when `n` is larger). @default all */
  last(n?: number): Array<Entry<FlatRow>>;
  /** The kept rows, oldest first, each a new object with the metadata merged first. */
  rows(): MemoryRow[];
}

/** Keeps the last `maxlen` Entries of each table (see {@link memorySink}). */
export class MemorySink extends Writable implements Sink {
  readonly #maxlen: number;
  readonly #rings = new Map<string, Ring<Entry<FlatRow>>>();
  readonly #order = new KeyOrder();

  constructor(opts: MemorySinkOptions = {}) {
    super({ objectMode: true });
    objectOption(opts);
    this.#maxlen = numberOption(opts.maxlen ?? 1000, 'maxlen', COUNT);
  }

  override _write(entry: Entry<FlatRow>, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (!isEntry(entry)) {
      callback(new TypeError(`memorySink: expected an Entry {table, level, step, time, data} (got ${String(entry)})`));
      return;
    }
    let ring = this.#rings.get(entry.table);
    if (ring === undefined) this.#rings.set(entry.table, (ring = new Ring<Entry<FlatRow>>(this.#maxlen)));
    ring.push(entry);
    callback();
  }

  /** Names of the tables that received at least one Entry, in first-seen order. */
  tables(): string[] {
    return [...this.#rings.keys()];
  }

  /** A live view of `name`'s kept Entries (empty until the table receives one). */
  table(name: string): TableView {
    const ring = () => this.#rings.get(name);
    const order = this.#order;
    const length = () => ring()?.length ?? 0;
    const last = (n: number = Infinity): Array<Entry<FlatRow>> => {
      numberOption(n, 'n', COUNT);
      const r = ring();
      const len = length();
      const out: Array<Entry<FlatRow>> = [];
      for (let i = Math.max(0, len - n); i < len; i++) out.push((r as Ring<Entry<FlatRow>>).at(i));
      return out;
    };
    return {
      get length() {
        return length();
      },
      last,
      [Symbol.iterator]: () => last()[Symbol.iterator](),
      rows: () =>
        last().map((e) => {
          const row: MemoryRow = { $step: e.step, $time: e.time, $level: e.level };
          for (const k of order.layout(e.table, e.data).keys) row[k] = e.data[k] as Scalar;
          return row;
        }),
    };
  }

  /** Nothing to write: resolves at once. */
  flush(): Promise<void> {
    return Promise.resolve();
  }

  /** Nothing to write. */
  flushSync(): void {}
}

/**
 * An in-memory sink keeping the last `maxlen` Entries per table (Mímir's `maxlen` deque).
 * Entries are kept as written, not copied. Throws `ERR_INVALID_OPTION` on a bad `maxlen`.
 */
export function memorySink(opts?: MemorySinkOptions): MemorySink {
  return new MemorySink(opts);
}
