/**
 * Whole-input mode of the query stream (`slurp`, `nullInput`, or a filter that uses
 * `input`/`inputs`; docs/DESIGN.md §6): all text is collected and jq runs once, as the jq command
 * would. Slurp first lets jq parse the text itself; only when that fails are lines checked in JS
 * (`JSON.parse`, then jq's parser for what JSON.parse rejects, e.g. `NaN`) and bad lines blanked
 * out, so jq's line numbers stay right.
 */
import { RowlogError } from '../core/errors.js';
import { isParseError, withName } from './jq-filter.js';
import { runJq, type JqResult } from './query-worker.js';

/** What a whole-input run needs from the stream. */
export interface WholeRun {
  filter: string;
  flags: string[];
  rawInput: boolean;
  slurp: boolean;
  /** JSON texts over lines (query-texts.ts): no lines to skip, a parse error fails like jq. */
  texts: boolean;
  strict: boolean;
  filename: string | null;
  /** Counts a bad line (it throws under strict). */
  badLine: (n: number) => void;
}

/** Runs jq once over `bytes`: its result to emit (line base 0), or throws `ERR_BAD_LINE` like jq. */
export async function runWhole(bytes: Buffer, w: WholeRun): Promise<JqResult> {
  if (w.rawInput || (w.slurp && bytes.length > 0) || w.texts) {
    const r = await runJq({ input: bytes, filter: w.filter, flags: w.flags });
    if (!isParseError(r) || w.rawInput) return r;
    if (w.texts || w.strict) {
      const first = w.texts ? undefined : await firstBadLine(bytes.toString('utf8'));
      if (first !== undefined) w.badLine(first);
      throw new RowlogError('ERR_BAD_LINE', withName('error' in r ? r.error.stderr : '', w.filename));
    }
  }
  const text = await blankBadLines(bytes.toString('utf8'), w.badLine);
  return runJq({ input: text, filter: w.filter, flags: w.flags });
}

/** The lines of `text` that JSON.parse rejects and jq's parser too (it reads NaN, Infinity…). */
async function suspects(lines: string[]): Promise<number[]> {
  const found: number[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i] as string;
    if (l.trim() === '') continue;
    try {
      JSON.parse(l);
    } catch {
      found.push(i);
    }
  }
  if (found.length === 0) return [];
  const verdict = await runJq({ input: found.map((i) => lines[i]).join('\n') + '\n', filter: 'try (fromjson | "ok") catch "bad"', flags: ['-R', '-r'] });
  const said = 'out' in verdict ? verdict.out.split('\n') : [];
  return found.filter((_, k) => said[k] !== 'ok');
}

async function firstBadLine(text: string): Promise<number | undefined> {
  const bad = await suspects(text.split('\n'));
  return bad.length > 0 ? (bad[0] as number) + 1 : undefined;
}

async function blankBadLines(text: string, badLine: (n: number) => void): Promise<string> {
  const lines = text.split('\n');
  const bad = await suspects(lines);
  if (bad.length === 0) return text;
  for (const i of bad) {
    badLine(i + 1);
    lines[i] = '';
  }
  return lines.join('\n');
}
