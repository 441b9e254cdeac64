/**
 * The jq text rowlog wraps around a user's filter (lib/read/query.ts explains the two modes).
 * Bad lines and runtime errors come back as marker strings starting `MARK`, which the query
 * stream takes out of the output; everything else passes untouched.
 */

/** The start of every marker string rowlog's wrappers emit. */
export const MARK = '\u0001ROWLOG:';
/** The start of a marker string in jq source, and as jq prints it without `-r`. */
export const JSON_MARK = '"\\u0001ROWLOG:';
const WRAP_PREFIX = 'def __rowlog_f: ';
const errorMarker = `${JSON_MARK}E:\\(input_line_number):\\(tojson)"`;

/** The user's filter as a def of its own line, so comments and defs in it stay harmless. */
export const defineUserFilter = (filter: string) => `${WRAP_PREFIX}${filter}\n;\n`;

/** Streaming: each input is a raw line; bad lines and runtime errors become markers. */
export const streamingFilter = (filter: string) =>
  `${defineUserFilter(filter)}(try fromjson catch ${JSON_MARK}B") as $__v | ` +
  `if $__v == ${JSON_MARK}B" then (if test("^\\\\s*$") then empty else ${JSON_MARK}B:\\(input_line_number)" end) ` +
  `else ($__v | try __rowlog_f catch ${errorMarker}) end`;

/** Whole input: jq reads the (cleaned) JSON itself; runtime errors become markers. */
export const wholeFilter = (filter: string) => `${defineUserFilter(filter)}try __rowlog_f catch ${errorMarker}`;

/** jq's compile error, with the wrapper taken out of the quoted source line. */
export function compileMessage(stderr: string): string {
  return stderr
    .split('\n')
    .map((l) => l.replace(WRAP_PREFIX, '').trimEnd())
    .filter((l) => l !== '')
    .join('\n');
}

