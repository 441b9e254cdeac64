/**
 * One CSV record under a wider header (docs/DESIGN.md §4; the copy step of sinks/csv-rewrite.ts): each
 * field goes to the union column of its header name, each extra (a trailing field the sidecar
 * names) to its column by position, quoted fields copied raw, never unquoted and quoted again.
 * Fields it cannot name stay, in order, as unnamed trailing fields: a duplicate header name, the
 * ragged rows of a foreign file before `from`, and extras that came after the plan was made
 * (they are named by the next rewrite).
 */
import { isBlank, scanRecords } from '../lib/format/csv-parse.js';

/** What a rewrite is asked to do. */
export interface RewritePlan {
  /** The file's header now. */
  base: readonly string[];
  /** The extras rows carry from `from` on. */
  extras: readonly string[];
  from: number;
  /** The header of the rewritten file: `base` and `extras`, in the sink's order. */
  union: readonly string[];
}

/** Remaps records of a file with header `plan.base` (and its extras) onto `plan.union`. */
export class RecordRemap {
  readonly #base: number;
  readonly #width: number;
  /** Header column → union column (-1: a duplicate name, kept as an unnamed trailing field). */
  readonly #byBase: number[];
  /** Extra → union column (the union holds every extra of the plan). */
  readonly #byExtra: number[];
  /** The old header was met (the output has the union's instead). */
  #headerSeen = false;

  constructor(plan: RewritePlan) {
    this.#base = plan.base.length;
    this.#width = plan.union.length;
    const position = new Map(plan.union.map((c, i) => [c, i]));
    const taken = new Set<number>();
    this.#byBase = plan.base.map((c) => {
      const k = position.get(c);
      if (k === undefined || taken.has(k)) return -1;
      taken.add(k);
      return k;
    });
    this.#byExtra = plan.extras.map((c) => position.get(c) as number);
  }

  /** Reading starts again at the file's start (its header comes again). */
  reset(): void {
    this.#headerSeen = false;
  }

  /**
   * Remaps the whole records of `text` (the file's decoded text from where the last call
   * stopped), handing the output lines to `write` in pieces of about `piece` characters; the
   * file's header is skipped. Fields past the header are extras only `withExtras` (the text is
   * at or after the plan's `from`). Returns where the unfinished record starts (`final`: none is).
   */
  records(text: string, final: boolean, withExtras: boolean, write: (text: string) => void, piece: number): number {
    const base = this.#base;
    const width = this.#width;
    let out = '';
    let i = 0;
    if (!this.#headerSeen && text.charCodeAt(0) === 0xfeff) i = 1;
    const { rest } = scanRecords(
      text,
      i,
      (fields) => {
        if (isBlank(fields)) return;
        if (!this.#headerSeen) {
          this.#headerSeen = true; // the old header: the temp file has the union's
          return;
        }
        const cells = new Array<string>(width).fill('');
        const known = this.#byExtra.length;
        let late = '';
        let unnamed = '';
        for (let j = 0; j < fields.length; j++) {
          const raw = fields[j] as string;
          if (j < base) {
            const k = this.#byBase[j] as number;
            if (k >= 0) cells[k] = raw;
            else unnamed += `,${raw}`;
          } else if (!withExtras) unnamed += `,${raw}`;
          else if (j - base < known) cells[this.#byExtra[j - base] as number] = raw;
          else late += `,${raw}`; // an extra the union lacks: kept in place for the next rewrite
        }
        const line = cells.join(',') + late;
        out += `${line}${unnamed}\n`;
        if (out.length >= piece) {
          write(out);
          out = '';
        }
      },
      final,
    );
    if (out !== '') write(out);
    return rest;
  }
}
