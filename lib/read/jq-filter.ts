/**
 * The jq text rowlog wraps around a user's filter (lib/read/query.ts explains the two modes;
 * docs/DESIGN.md §6). Bad lines, runtime errors and `halt`/`halt_error` come back as marker
 * strings (`\u0001ROWLOG:<kind>:…\u0002`), which the query stream takes out of the output;
 * everything else passes untouched.
 *
 * The prelude puts back what jq-web's sandbox lacks, by shadowing jq's builtins before the user's
 * filter (jq lets a def take a builtin's name; the builtin is captured under a `__rowlog_` name
 * first): `input_filename` is the file's name (jq-web reads a file called "inputString"),
 * `input_line_number` counts from the chunk's first line, `$ENV`/`env` are the real environment,
 * `$ARGS` has the `--argjson` values themselves (jq-web passes them as slurped files, so `[5]`)
 * and the positional arguments, `strftime("%Z")` works (jq-web's libc has no zone name: "UTC",
 * as jq 1.7 prints for a UTC time), and `halt`/`halt_error` leave a marker before stopping, so
 * a chunk's output before them is kept and the stream stops there.
 */
import type { JqResult } from './query-worker.js';

/** The start of every marker string rowlog's wrappers emit. */
export const MARK = '\u0001ROWLOG:';
/** The start of a marker as jq prints it as JSON (without `-r`, or with `-r -a`). */
export const JSON_MARK = '"\\u0001ROWLOG:';
const WRAP_PREFIX = 'def __rowlog_f: ';
/** A marker in jq source: `kind` and jq string-interpolation `payload`. */
const marker = (kind: string, payload: string) => `"\\u0001ROWLOG:${kind}:${payload}\\u0002"`;
const errorMarker = marker('E', '\\(__rowlog_iln):\\(tojson)');
/** Where a chunk's line base goes in a prelude. */
export const LINE_BASE = '__ROWLOG_LINE_BASE__';

/** What the prelude binds (see the header). */
export interface PreludeContext {
  /** Names given as `--argjson` (jq-web binds them slurped: `$ARGS.named` gets them back). */
  jsonArgNames: string[];
  /** `$ARGS.positional`, as JSON texts. */
  positional: string[];
  /** `input_filename`: null for stdin, as jq 1.7. */
  filename: string | null;
  /** `$ENV`. */
  env: Record<string, string | undefined>;
  /** The local time zone's abbreviation for `strflocaltime("%Z")` (asked only when the filter may use it: Intl is slow to start). */
  localZone: () => string;
}

/** The defs and bindings that go before the user's filter (only what the filter may use). */
export function prelude(filter: string, ctx: PreludeContext): string {
  let p = '';
  if (/\$ARGS\b/.test(filter)) {
    const named = ctx.jsonArgNames.map((n) => ` | .named[${JSON.stringify(n)}] |= .[0]`).join('');
    p += `($ARGS${named} | .positional = [${ctx.positional.join(',')}]) as $ARGS | `;
  }
  if (/\$ENV\b|\benv\b/.test(filter)) p += `${JSON.stringify(ctx.env)} as $ENV | def env: $ENV; `;
  if (/\bstrf(local)?time\b/.test(filter)) {
    for (const [fn, zone] of [['strftime', 'UTC'], ['strflocaltime', ctx.localZone()]] as const) {
      p +=
        `def __rowlog_${fn}(f): ${fn}(f); def ${fn}(f): if (f | type) == "string" and (f | contains("%Z")) ` +
        `then __rowlog_${fn}(f | gsub("%Z"; "\\u0003")) | gsub("\\u0003"; ${JSON.stringify(zone)}) else __rowlog_${fn}(f) end; `;
    }
  }
  p += `def input_filename: ${JSON.stringify(ctx.filename)}; `;
  p += `def __rowlog_iln: input_line_number + ${LINE_BASE}; def input_line_number: __rowlog_iln; `;
  p += `def __rowlog_halt: halt; def halt: ${marker('H', '0:null')}, __rowlog_halt; `;
  p += `def halt_error(c): ${marker('H', '\\(c):\\(tojson)')}, __rowlog_halt; def halt_error: halt_error(5); `;
  return p;
}

/** The user's filter as a def of its own line, so comments and defs in it stay harmless. */
export const defineUserFilter = (filter: string) => `${WRAP_PREFIX}${filter}\n;\n`;

/** What the wrappers add around each output (see {@link userCall}). */
export interface OutputMarks {
  /** jq's `-e`: a `T` marker after each output with its truth. */
  truth: boolean;
  /** `--seq`: an `S` marker (an RS in the output) before each output; `nonstrings`: not before a string (jq 1.7.1 with `-r`/`-j`). */
  seq: false | 'all' | 'nonstrings';
}

const NO_MARKS: OutputMarks = { truth: false, seq: false };

/**
 * The user's filter as the wrappers call it. With `truth` (jq's `-e`), each output is followed by
 * a `T` marker saying whether it is neither `false` nor `null`: `-e` judges the last value, which
 * the output text cannot tell (`-r` prints the string "false" as `false`; `-j` joins values).
 * With `seq`, an `S` marker goes before each output (jq-web cannot be given `--seq`: it changes
 * how jq parses its input), which the stream turns into an RS: the output text cannot tell where
 * a value starts either (a raw string can hold newlines).
 */
function userCall(filter: string, m: OutputMarks): string {
  if (!m.truth && m.seq === false) return defineUserFilter(filter);
  const s = marker('S', '0');
  const before = m.seq === 'all' ? `${s}, ` : m.seq === 'nonstrings' ? `(if type == "string" then empty else ${s} end), ` : '';
  const after = m.truth ? `, ${marker('T', '\\(if . == false or . == null then 0 else 1 end)')}` : '';
  return `${defineUserFilter(filter)}def __rowlog_w: __rowlog_f | (${before}.${after}); `;
}
const callName = (m: OutputMarks) => (m.truth || m.seq !== false ? '__rowlog_w' : '__rowlog_f');

/** Streaming: each input is a raw line; bad lines and runtime errors become markers. */
export const streamingFilter = (pre: string, filter: string, marks = NO_MARKS) =>
  `${pre}${userCall(filter, marks)}(try fromjson catch ${JSON_MARK}B") as $__v | ` +
  `if $__v == ${JSON_MARK}B" then (if test("^\\\\s*$") then empty else ${marker('B', '\\(__rowlog_iln)')} end) ` +
  `else ($__v | try ${callName(marks)} catch ${errorMarker}) end`;

/** Raw input (`-R`): each input is a line as a string; runtime errors become markers. */
export const rawInputFilter = (pre: string, filter: string, marks = NO_MARKS) => `${pre}${userCall(filter, marks)}try ${callName(marks)} catch ${errorMarker}`;

/** Whole input: jq reads the (cleaned) JSON itself; runtime errors become markers. */
export const wholeFilter = (pre: string, filter: string, marks = NO_MARKS) => `${pre}${userCall(filter, marks)}try ${callName(marks)} catch ${errorMarker}`;

/** One marker found in jq's output. */
export interface Marker {
  kind: 'B' | 'E' | 'H' | 'T' | 'S';
  /** B, E: the line (from the chunk's base); H: the exit code; T: 1 for a true output, 0 for false or null; S: 0. */
  num: number;
  /** E, H: the JSON text of the error's value or halt_error's message. */
  json: string;
}

/**
 * A marker as printed: optional `--seq` RS, optional colour, then the JSON form
 * (`"\u0001ROWLOG:…\u0002"`, escaped) or the raw form (`-r`), then its newline unless `-j`.
 */
const MARKER_RE =
  /\x1e?(?:\x1b\[[0-9;]*m)?(?:"\\u0001ROWLOG:((?:[^"\\]|\\.)*?)\\u0002"|\x01ROWLOG:([^\x02]*)\x02)(?:\x1b\[[0-9;]*m)?\n?/g;

/** True when `out` may hold a marker (the fast check before {@link splitMarkers}). */
export const mayHoldMarker = (out: string) => out.includes(MARK) || out.includes(JSON_MARK);

/** `out` cut into output text and markers, in order. */
export function splitMarkers(out: string): Array<string | Marker> {
  const parts: Array<string | Marker> = [];
  let last = 0;
  for (const m of out.matchAll(MARKER_RE)) {
    const at = m.index ?? 0;
    if (at > last) parts.push(out.slice(last, at));
    last = at + m[0].length;
    const body = m[1] !== undefined ? (JSON.parse(`"${m[1]}"`) as string) : (m[2] as string);
    const k = body.indexOf(':');
    const kind = body.slice(0, k) as Marker['kind'];
    const rest = body.slice(k + 1);
    const j = rest.indexOf(':');
    parts.push({ kind, num: Number(j === -1 ? rest : rest.slice(0, j)), json: j === -1 ? '' : rest.slice(j + 1) });
  }
  if (last < out.length) parts.push(out.slice(last));
  return parts;
}

/** jq's compile error, with the wrapper taken out of the quoted source line. */
export function compileMessage(stderr: string): string {
  return stderr
    .split('\n')
    .map((l) => l.replace(WRAP_PREFIX, '').trimEnd())
    .filter((l) => l !== '')
    .join('\n');
}

/** True when jq's failure is about its input text (a parse error), not the filter. */
export const isParseError = (r: JqResult) =>
  'error' in r && /^jq: (parse )?error.*(parse|Unfinished|Invalid|Expected|Exceeds depth|Unmatched|Truncated|Potentially truncated|Objects must|Unexpected)/m.test(r.error.stderr);

/** jq-web names the input "inputString": put the file's name in its messages. */
export const withName = (msg: string, name: string | null) => msg.replace(/\binputString\b/g, name ?? '<stdin>');
