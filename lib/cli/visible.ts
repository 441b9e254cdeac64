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

// eslint-disable-next-line no-control-regex
const CONTROL_BUT_SGR = /\u001b\[[0-9;]*m|[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/**
 * `text` with every control character but tab (and a `\n` too) made visible. `keepSgr`: colour
 * sequences (`ESC [ … m`) and line ends stay, for text of several lines whose only raw ESCs are
 * its renderer's own colours (the console renderer JSON-quotes a value holding C0 controls, but
 * passes C1 and DEL).
 */
export function visible(text: string, opts: { keepSgr?: boolean } = {}): string {
  if (opts.keepSgr !== true) return text.replace(CONTROL, show);
  return text.replace(CONTROL_BUT_SGR, (m) => (m.length > 1 ? m : show(m)));
}

