/**
 * `rowlog tail` on a real terminal (tmux): control characters in rows are shown as `less` shows
 * them (`^[`, `^?`, `<U+009B>`), never sent raw; through a pipe the bytes come out exactly.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { jsonlSink } from '../lib/index.js';
import { CLI, runCli } from './cli.js';
import { tmpdir } from './helpers.js';
import { needs } from './peers.js';
import { until } from './wait.js';

/** A private tmux server (its own socket) with one 200×50 pane running `command`; the pane stays open after it. */
function terminal(t: Test, dir: string, name: string, command: string) {
  const sock = path.join(dir, `${name}.sock`);
  const tmux = (...args: string[]) => execFileSync('tmux', ['-S', sock, '-f', '/dev/null', ...args], { encoding: 'utf8', env: { ...process.env, TERM: 'xterm-256color' } });
  // `cat` keeps the pane (and its output) until the server is killed
  tmux('new-session', '-d', '-x', '200', '-y', '50', `${command}; echo __END__; cat`);
  t.teardown(() => {
    try {
      tmux('kill-server');
    } catch {
      // already gone
    }
  });
  return { screen: () => tmux('capture-pane', '-p', '-J') };
}

const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

t.test('on a terminal, control characters in rows are escaped as less does; a pipe gets the bytes', async (t) => {
  if (!needs(t, 'tmux')) return;
  const dir = tmpdir(t);
  const file = path.join(dir, 'ctl.jsonl');
  // A row rowlog wrote (JSON escapes C0 but keeps C1 and DEL raw), then lines another program wrote with raw ESC sequences.
  const sink = jsonlSink({ path: file });
  sink.write({ table: 't', level: 20, step: 1, time: 1, data: { s: 'csi\u009b2Jdel\u007fend' } });
  await new Promise<void>((resolve) => sink.end(resolve));
  fs.appendFileSync(file, '{"s":"\u001b[2J\u001b]0;pwned\u0007red\u001b[31mX"}\nbell\u0007cr\rnul\u0000tab\tend\n');
  const bytes = fs.readFileSync(file);

  const term = terminal(t, dir, 'jsonl', `node ${sh(CLI)} tail ${sh(file)}`);
  await until(() => term.screen().includes('__END__'), 'the tail to finish on the terminal');
  const lines = term.screen().split('\n');
  t.ok(lines.includes('{"$step":1,"$time":1,"$level":20,"s":"csi<U+009B>2Jdel^?end"}'), 'C1 as <U+009B>, DEL as ^?');
  t.ok(lines.includes('{"s":"^[[2J^[]0;pwned^Gred^[[31mX"}'), 'ESC as ^[, BEL as ^G: the screen is not cleared, the title not set');
  t.ok(lines.some((l) => /^bell\^Gcr\^Mnul\^@tab\s+end$/.test(l)), 'CR ^M, NUL ^@, a tab kept');

  // --pretty renders string values raw: they are escaped too.
  const rows = path.join(dir, 'train.jsonl.gz');
  const log = jsonlSink({ path: rows });
  log.write({ table: 'train', level: 20, step: 7, time: 1, data: { msg: '\u001b[2Jgone\u009b1m' } });
  await new Promise<void>((resolve) => log.end(resolve));
  const pretty = terminal(t, dir, 'pretty', `NO_COLOR=1 node ${sh(CLI)} tail --pretty ${sh(rows)}`);
  await until(() => pretty.screen().includes('__END__'), 'tail --pretty to finish on the terminal');
  t.match(pretty.screen(), /── train {2}step 7 {2}INFO ─+\nmsg {2}"\\u001b\[2Jgone<U\+009B>1m"\n/, 'the value shown quoted (C0) and escaped (C1) under its row header');

  const piped = execFileSync(process.execPath, [CLI, 'tail', file]);
  t.ok(piped.equals(bytes), 'through a pipe: exactly the bytes of the file');
  t.equal(runCli(['tail', '--pretty', rows]).stdout, '── train  step 7  INFO ─────────────────\nmsg  "\\u001b[2Jgone\u009b1m"\n', '--pretty through a pipe: the C1 raw');
});
