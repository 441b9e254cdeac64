/**
 * Control characters made visible for a terminal, as `less` shows them (issue 11 §1, docs/DESIGN.md §7):
 * a row holding `ESC [ 2 J` must not clear the user's screen, retitle the window or move the
 * cursor. C0 controls but tab become caret notation (`ESC` → `^[`, `CR` → `^M`, NUL → `^@`), DEL
 * is `^?`, and the C1 controls U+0080–U+009F (U+009B is a one-character CSI on some terminals)
 * are `<U+009B>`. Only for a TTY: a pipe gets the bytes exactly.
 */

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g;

function show(c: string): string {
  const code = c.charCodeAt(0);
  if (code < 0x20) return `^${String.fromCharCode(code + 64)}`;
  if (code === 0x7f) return '^?';
  return `<U+${code.toString(16).toUpperCase().padStart(4, '0')}>`;
}

/** `text` with every control character but tab (and a `\n` too) made visible. */
export function visible(text: string): string {
  return text.replace(CONTROL, show);
}

