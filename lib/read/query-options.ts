/**
 * The options of `query()` (lib/read/query.ts) and their checking: what a caller may pass, its
 * defaults, and the jq flags and prelude they turn into; the types the stream shows; the filter's
 * compile check. Checked once, at the factory, with errors that name the option (CONVENTIONS:
 * validate at the factory).
 */
import { DEFAULT_MAX_LINE_BYTES } from '../format/line-split.js';
import { booleanOption, functionOption, numberOption, objectOption, optionError, stringRecordOption } from '../core/options.js';
import type { Duplex } from 'node:stream';
import { RowlogError } from '../core/errors.js';
import { compileMessage, defineUserFilter, LINE_BASE, prelude, type OutputMarks } from './jq-filter.js';
import { runJqSync } from './query-worker.js';

/** Options of {@link query}. */
export interface QueryOptions {
  /** Run the filter once over an array of all input rows (jq `-s`). Needs the whole input in memory. @default false */
  slurp?: boolean;
  /** Print strings without quotes (jq `-r`). @default false */
  raw?: boolean;
  /** One result per line (jq `-c`); `false` pretty-prints like jq without `-c`. @default true */
  compact?: boolean;
  /** Run the filter once with `null` as input; rows are read with `input`/`inputs` (jq `-n`). @default false */
  nullInput?: boolean;
  /** String variables: `{ name: 'v' }` is `$name` (jq `--arg name v`). @default {} */
  args?: Record<string, string>;
  /** JSON variables: `{ n: '3' }` is `$n` = 3 (jq `--argjson n 3`). @default {} */
  jsonArgs?: Record<string, string>;
  /** Called with the 1-based line number of every line that is not JSON (the line is skipped). @default undefined */
  onBadLine?: (lineNumber: number) => void;
  /** Called for every jq runtime error (the input is skipped, the others go on); also a `'jqerror'` event. @default undefined */
  onError?: (err: JqRuntimeError) => void;
  /** A line that is not JSON fails the stream with `RowlogError` `ERR_BAD_LINE` naming the line. @default false */
  strict?: boolean;
  /**
   * Worker threads for streaming mode. `undefined`: none for small inputs, then 2 (none on a
   * single-core machine) once more than `autoWorkersAfterLines` lines came in. Output order is kept.
   * @default undefined (automatic)
   */
  workers?: number;
  /**
   * Characters per jq-web call in streaming mode: a chunk ends at `chunkLines` lines or about
   * this many characters, whichever comes first. Each worker's wasm heap grows to its largest
   * chunk and never shrinks, so this bounds memory for wide rows. @default 1048576
   */
  chunkChars?: number;
  /** Lines per jq-web call in streaming mode. @default 10000 */
  chunkLines?: number;
  /** Automatic workers start after this many input lines. @default 30000 */
  autoWorkersAfterLines?: number;
  /** Whole-input modes (`slurp`, `nullInput`, `input`/`inputs`) refuse more input than this (jq-web has a 2 GB wasm heap). @default 250 MiB */
  maxInputBytes?: number;
  /**
   * A line longer than this many bytes is skipped as it comes (never held in memory) and counted
   * as a bad line (`ERR_BAD_LINE` under `strict`): memory stays bounded whatever the input
   * (`/dev/zero`, a gzip bomb of one line). @default 268435456 (256 MiB)
   */
  maxLineBytes?: number;
  /** Each line is an input string, not JSON (jq `-R`; with `slurp`, the whole text is one string). @default false */
  rawInput?: boolean;
  /** What jq's `input_filename` gives. @default null (as jq for stdin) */
  filename?: string | null;
  /** `$ARGS.positional`, as JSON texts (jq `--args`: pass `JSON.stringify(s)`; `--jsonargs`: the texts). @default [] */
  positionalArgs?: string[];
  /**
   * jq's output flags, passed to jq as they are: `-S` (sort keys), `--tab`, `--indent N`, `-a`
   * (ASCII), `-C`/`-M` (colour on/off), `-j` (join: implies `raw`), and their long forms. @default []
   */
  jqFlags?: string[];
  /** Each output is preceded by an ASCII RS character (jq `--seq`'s output side). @default false */
  seq?: boolean;
  /** What `$ENV` and `env` give. @default process.env */
  env?: Record<string, string | undefined>;
  /** Track whether the last output is neither `false` nor `null`, in `lastTruthy` (for jq's `-e`). @default false */
  exitStatus?: boolean;
}

/** How `halt`/`halt_error` ended the output. */
export interface QueryHalt {
  /** The exit status it asked for (0 for `halt`). */
  code: number;
  /** `halt_error`'s message as JSON text (`null` for `halt`). */
  message: string;
}

/** A jq runtime error on one input (e.g. `.a + 1` where `.a` is a string). */
export interface JqRuntimeError {
  /** The 1-based input line jq was on. */
  line: number;
  /** jq's message, e.g. `string ("x") and number (1) cannot be added`. */
  message: string;
}

/** The Duplex {@link query} returns: JSONL text in, jq's output text out. */
export interface QueryStream extends Duplex {
  /** How many lines were not JSON (skipped). */
  readonly badLineCount: number;
  /** The 1-based numbers of the first 1000 bad lines. */
  readonly badLines: readonly number[];
  /** How many jq runtime errors there were. */
  readonly errorCount: number;
  /** Set when `halt` or `halt_error` ended the output (the rest of the input is read and ignored; a `'halt'` event says so at once, so a reader can stop feeding). */
  readonly halted: QueryHalt | undefined;
  /** The end of the output so far (its last value), '' before any output. */
  readonly lastOutput: string;
  /** With `exitStatus`: whether the last output was neither `false` nor `null` (jq's `-e`); undefined before any output. */
  readonly lastTruthy: boolean | undefined;
}

/** The output flags {@link QueryOptions.jqFlags} accepts (`--indent` takes a number after it). */
const JQ_OUTPUT_FLAGS = new Set(['-S', '--sort-keys', '--tab', '-a', '--ascii-output', '-C', '--color-output', '-M', '--monochrome-output', '-j', '--join-output', '--indent']);

/** The default of {@link QueryOptions.maxInputBytes}. */
export const DEFAULT_MAX_INPUT_BYTES = 250 * 1024 * 1024;

/** The checked options, with what they turn into for jq. */
export interface QuerySettings {
  slurp: boolean;
  rawInput: boolean;
  strict: boolean;
  seq: boolean;
  /** Markers around each output (jq-filter.ts): `-e`'s truth, `--seq`'s RS. */
  marks: OutputMarks;
  filename: string | null;
  /** Whole-input mode: slurp, nullInput, or a filter that uses `input`/`inputs`. */
  whole: boolean;
  workers: number | undefined;
  chunkLines: number;
  chunkChars: number;
  autoAfter: number;
  maxInputBytes: number;
  maxLineBytes: number;
  onBadLine: ((lineNumber: number) => void) | undefined;
  onError: ((e: JqRuntimeError) => void) | undefined;
  /** The prelude (jq-filter.ts) ending in a newline. */
  pre: string;
  /** `--arg`/`--argjson` flags. */
  argFlags: string[];
  /** Every flag of a run (input mode, output, arguments). */
  flags: string[];
  /** `-j` was given: jq-web's missing last newline is not added. */
  joined: boolean;
}

/** The local zone's short name (`strflocaltime("%Z")`). */
function localZone(): string {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(new Date()).find((p) => p.type === 'timeZoneName')?.value ?? 'UTC';
  } catch {
    return 'UTC';
  }
}

/** Checks `opts` (TypeError/RangeError naming the option) and derives the jq flags and prelude. */
export function querySettings(filter: string, opts: QueryOptions): QuerySettings {
  if (typeof filter !== 'string') throw optionError('type', 'filter', 'must be a string');
  objectOption(opts);
  const slurp = booleanOption(opts.slurp, 'slurp', false);
  const nullInput = booleanOption(opts.nullInput, 'nullInput', false);
  const raw = booleanOption(opts.raw, 'raw', false);
  const strict = booleanOption(opts.strict, 'strict', false);
  const rawInput = booleanOption(opts.rawInput, 'rawInput', false);
  const seq = booleanOption(opts.seq, 'seq', false);
  const truth = booleanOption(opts.exitStatus, 'exitStatus', false);
  const compact = booleanOption(opts.compact, 'compact', true);
  const args = stringRecordOption(opts.args, 'args');
  const jsonArgs = stringRecordOption(opts.jsonArgs, 'jsonArgs');
  for (const [k, v] of Object.entries(jsonArgs)) {
    try {
      JSON.parse(v);
    } catch {
      throw optionError('range', `jsonArgs.${k}`, `must be JSON text (got ${v})`);
    }
  }
  const positional = opts.positionalArgs ?? [];
  if (!Array.isArray(positional)) throw optionError('type', 'positionalArgs', 'must be an array of JSON texts');
  positional.forEach((v, i) => {
    try {
      JSON.parse(v);
    } catch {
      throw optionError('range', `positionalArgs[${i}]`, `must be JSON text (got ${String(v)})`);
    }
  });
  const jqFlags = opts.jqFlags ?? [];
  if (!Array.isArray(jqFlags)) throw optionError('type', 'jqFlags', 'must be an array of jq output flags');
  for (let i = 0; i < jqFlags.length; i++) {
    const f = jqFlags[i];
    if (typeof f !== 'string' || !JQ_OUTPUT_FLAGS.has(f)) throw optionError('range', 'jqFlags', `${String(f)} is not one of ${[...JQ_OUTPUT_FLAGS].join(' ')}`);
    if (f === '--indent') {
      const n = Number(jqFlags[++i]);
      if (!Number.isInteger(n) || n < 0 || n > 7) throw optionError('range', 'jqFlags', '--indent takes a number from 0 to 7');
    }
  }
  if (opts.filename !== undefined && opts.filename !== null && typeof opts.filename !== 'string') throw optionError('type', 'filename', 'must be a string or null');
  const filename = opts.filename ?? null;
  const env = opts.env ?? process.env;
  objectOption(env, 'env');
  const onBadLine = functionOption<(lineNumber: number) => void>(opts.onBadLine, 'onBadLine');
  const onError = functionOption<(e: JqRuntimeError) => void>(opts.onError, 'onError');
  const workers = opts.workers === undefined ? undefined : numberOption(opts.workers, 'workers', { min: 0, max: 64, integer: true });
  const chunkLines = numberOption(opts.chunkLines ?? 10_000, 'chunkLines', { min: 1, integer: true });
  const chunkChars = numberOption(opts.chunkChars ?? 1 << 20, 'chunkChars', { min: 1 });
  const autoAfter = numberOption(opts.autoWorkersAfterLines ?? 30_000, 'autoWorkersAfterLines', { min: 0, integer: true });
  const maxInputBytes = numberOption(opts.maxInputBytes ?? DEFAULT_MAX_INPUT_BYTES, 'maxInputBytes', { min: 0 });
  const maxLineBytes = numberOption(opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES, 'maxLineBytes', { min: 1, integer: true });

  const whole = slurp || nullInput || /\binputs?\b/.test(filter);
  const argFlags = [
    ...Object.entries(args).flatMap(([k, v]) => ['--arg', k, v]),
    ...Object.entries(jsonArgs).flatMap(([k, v]) => ['--argjson', k, v]),
  ];
  const outFlags = [...(compact ? ['-c'] : []), ...(raw ? ['-r'] : []), ...jqFlags];
  const pre = `${prelude(filter, { jsonArgNames: Object.keys(jsonArgs), positional, filename, env, localZone })}\n`;
  const flags = whole
    ? [...(slurp ? ['-s'] : []), ...(nullInput ? ['-n'] : []), ...(rawInput ? ['-R'] : []), ...outFlags, ...argFlags]
    : [...outFlags, ...argFlags];
  const joined = flags.includes('-j') || flags.includes('--join-output');
  const marks: OutputMarks = { truth, seq: seq ? (raw || joined ? 'nonstrings' : 'all') : false };
  return {
    slurp, rawInput, strict, seq, marks, filename, whole, workers, chunkLines, chunkChars, autoAfter, maxInputBytes, maxLineBytes,
    onBadLine, onError, pre, argFlags, flags, joined,
  };
}

/**
 * Compiles the wrapped filter once, running nothing (jq-web prunes unused defs, so it is named
 * under `if false`); a bad one throws `ERR_JQ` with jq's own wording. Needs jq-web loaded.
 */
export function compileFilter(filter: string, o: QuerySettings): void {
  const check = runJqSync('', `${o.pre.replace(LINE_BASE, '0')}${defineUserFilter(filter)}if false then __rowlog_f else empty end`, ['-n', ...o.argFlags]);
  if (!('error' in check)) return;
  if (check.error.fault) throw new RowlogError('ERR_JQ', check.error.message);
  // For jq's own wording and line numbers, compile the bare filter too (it fails as well).
  const bare = runJqSync('', filter, ['-n', ...o.argFlags]);
  const stderr = 'error' in bare && bare.error.exitCode === 3 ? bare.error.stderr : check.error.stderr;
  throw new RowlogError('ERR_JQ', compileMessage(stderr));
}
