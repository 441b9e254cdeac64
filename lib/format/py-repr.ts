/**
 * Python's `repr` of a string, for messages that match noko's word for word (the CSV sink's
 * `Adding 2 new keys ['a', 'b'] to table 't'`, docs/DESIGN.md §4): single quotes unless the string holds
 * one and no double quote, backslash escapes for the quote, `\\`, `\n`, `\r`, `\t` and other
 * control characters.
 */

/** Python's repr of a string, as in noko's message `Adding 2 new keys ['a', 'b'] …`. */
export function pyRepr(s: string): string {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = q;
  for (const ch of s) {
    if (ch === q || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch < ' ' || ch === '\x7f') out += `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + q;
}
