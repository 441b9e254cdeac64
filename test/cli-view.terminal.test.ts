/**
 * `rowlog view` on a real terminal (tmux), as a user on SSH sees it: the charts of a run a child
 * logger wrote (titles with last / min / max, y labels, a spike's max as the top label), `-f`
 * showing rows a child logger appends (polling the screen, never a fixed sleep), a resized
 * window redrawn at its new width, and `q` giving the shell its screen back.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { CLI } from './cli.js';
import { ROOT, tmpdir } from './helpers.js';
import { needs } from './peers.js';
import { until } from './wait.js';

const WRITER = path.join(ROOT, 'test', 'fixtures', 'serve-writer.mjs');
const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** A private tmux server (its own socket) with one `width`×`height` window running a shell; torn down after the test. */
function terminal(t: Test, dir: string, width: number, height: number) {
  const sock = path.join(dir, 'tmux.sock');
  const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm-256color', PS1: 'P> ' };
  delete env.NO_COLOR;
  const tmux = (...args: string[]) => execFileSync('tmux', ['-S', sock, '-f', '/dev/null', ...args], { encoding: 'utf8', env });
  tmux('new-session', '-d', '-x', String(width), '-y', String(height), "PS1='P> ' sh");
  t.teardown(() => {
    try {
      tmux('kill-server');
    } catch {
      // already gone
    }
  });
  return {
    /** What the window shows now, one string per line. */
    screen: () => tmux('capture-pane', '-p').split('\n'),
    type: (text: string) => tmux('send-keys', '-l', text),
    key: (k: string) => tmux('send-keys', k),
    resize: (w: number, h: number) => tmux('resize-window', '-x', String(w), '-y', String(h)),
  };
}

/** Runs the fixture writer (a child process logging with rowlog's logger) to its end. */
function writer(dir: string, ...args: string[]): void {
  execFileSync(process.execPath, [WRITER, dir, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
}

/** The widest line of a screen (trailing blanks not counted). */
const widest = (lines: string[]) => Math.max(...lines.map((l) => [...l.trimEnd()].length));

t.test('a run on a terminal: titles, labels, a spike as the top label; -f shows appended rows, follows a resize, q exits', async (t) => {
  if (!needs(t, 'tmux')) return;
  const dir = tmpdir(t);
  const run = path.join(dir, 'exp1');
  writer(run, 'rows', '400'); // loss = 2·e^(−i/60) + 0.05·sin(i/3), acc, lr: steps 0 … 399
  writer(run, 'row', '400', '37.5'); // a spike
  writer(run, 'row', '401', '0.25');
  const term = terminal(t, dir, 100, 40);

  // Without -f: printed once, the prompt back below.
  term.type(`node ${sh(CLI)} view ${sh(run)} --columns loss,acc --height 30; echo __DONE__\n`);
  await until(() => term.screen().includes('__DONE__'), 'view to print the charts');
  let screen = term.screen();
  const title = screen.find((l) => l.startsWith('loss  '));
  t.match(title, /^loss {2}last 0\.25 {2}min -?0\.0\d+ {2}max 37\.5 {2}\(rows 402, step 401\)$/, `the title: ${title}`);
  const top = screen[screen.indexOf(title as string) + 1] ?? '';
  t.match(top, /^\s*37\.5 ┤\s+[╭╮│]/, `the spike's max is the top label, drawn in the top row: ${top}`);
  t.ok(screen.some((l) => /^\s*step 0\s+step 401$/.test(l)), 'the first and last step under the chart');
  t.ok(screen.some((l) => /^acc {2}last 0\.99\d+ {2}min 0 {2}max 0\.99\d+ {2}\(rows 402, step 401\)$/.test(l)), 'the second chart');
  const chartLines = screen.filter((l) => !l.startsWith('P>'));
  t.ok(widest(chartLines) < 100, `within the window: ${chartLines.find((l) => [...l.trimEnd()].length === widest(chartLines))}`);

  // -f: the alternate screen, redrawn as a child logger appends.
  term.type(`clear; node ${sh(CLI)} view -f ${sh(run)} --columns loss; echo __EXIT__ $?\n`);
  await until(() => term.screen()[0]?.includes('following, q quits') === true, 'view -f to draw');
  t.match(term.screen()[1], /^loss {2}last 0\.25 /, 'the last row at first');
  writer(run, 'row', '402', '0.125');
  await until(() => /^loss {2}last 0\.125 {2}.*\(rows 403, step 402\)/.test(term.screen()[1] ?? ''), 'the appended row in the title');
  t.pass('an appended row shows in the title');
  t.ok(term.screen().some((l) => /step 402$/.test(l)), 'and as the last step');

  term.resize(60, 30);
  await until(() => widest(term.screen()) < 60 && term.screen().some((l) => /step 402$/.test(l)), 'a redraw at the new width');
  screen = term.screen();
  t.ok(widest(screen) >= 50, `drawn to the new width (${widest(screen)} of 60), not just cut`);
  t.match(screen[1], /^loss {2}last 0\.125/, 'the title kept');

  term.type('q');
  await until(() => term.screen().some((l) => l.startsWith('__EXIT__')), 'view to exit on q');
  screen = term.screen();
  t.ok(screen.includes('__EXIT__ 0'), 'q exits 0');
  t.notOk(screen.some((l) => l.includes('following, q quits')), 'the screen given back: the charts are gone');
  t.ok(screen.some((l) => /^P>\s*$/.test(l)), 'the shell prompt returns');
});

t.test('Ctrl-C exits 0 and restores the terminal', async (t) => {
  if (!needs(t, 'tmux')) return;
  const dir = tmpdir(t);
  const run = path.join(dir, 'exp2');
  writer(run, 'rows', '50');
  const term = terminal(t, dir, 80, 30);
  term.type(`node ${sh(CLI)} view -f ${sh(run)}; echo __EXIT__ $?\n`);
  await until(() => term.screen()[0]?.includes('following, q quits') === true, 'view -f to draw');
  t.ok(term.screen().some((l) => l.startsWith('loss  last ')), 'the default columns');
  term.key('C-c');
  await until(() => term.screen().some((l) => l.startsWith('__EXIT__')), 'view to exit on Ctrl-C');
  t.ok(term.screen().includes('__EXIT__ 0'), 'Ctrl-C exits 0');
  term.type('stty -a | grep -o -- "-icanon\\|icanon" | head -1\n');
  await until(() => term.screen().some((l) => /^-?icanon$/.test(l)), 'stty to answer');
  t.ok(term.screen().includes('icanon'), 'the terminal is out of raw mode again');
});
