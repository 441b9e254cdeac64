/**
 * JSON texts that are not one per line (docs/DESIGN.md §6): pretty-printed over many lines, or
 * concatenated like `{"a":1}{"a":2}`, as jq reads them. Told from JSONL by the first line that is
 * not blank; such input is cut only before a line that starts a new value at column 0 (the query
 * stream runs jq on each piece, and a piece jq cannot parse waits for more text).
 */

/**
 * JSONL or JSON texts over lines, from the first line that is not blank: texts when it is a lone
 * `{` or `[` (jq's pretty output) or holds values back to back (`{"a":1}{"a":2}`); else JSONL (a
 * torn first line of a log is JSONL with a bad line). `undefined`: no whole non-blank line yet.
 */
export function decideTexts(s: string): boolean | undefined {
  const m = /^[ \t\r]*\S[^\n]*(\n|$)/m.exec(s);
  if (m === null || m[1] === '') return undefined;
  const line = m[0].trim();
  try {
    JSON.parse(line);
    return false;
  } catch {
    return /^[{[]$/.test(line) || /[}\]]\s*[{[]/.test(line);
  }
}

/**
 * Where to cut `text` (the index just after a newline) so the piece before ends before the last
 * line that starts a value at column 0; searching from `tried` (what an earlier attempt already
 * searched). -1: no such line yet.
 */
export function textsCut(text: string, tried: number): number {
  const re = /\n[^\s}\],:]/g;
  re.lastIndex = Math.max(0, tried - 1);
  let at = -1;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) at = m.index;
  return at === -1 ? -1 : at + 1;
}
