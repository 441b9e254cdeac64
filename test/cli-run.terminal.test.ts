/**
 * `rowlog run` on a real terminal (tmux): the program runs on a pseudo-terminal (util-linux
 * `script`) and sees isatty() true, its rows are still logged and its lines kept in console.log;
 * Ctrl-C reaches it once and rowlog ends as it did (status 130). Through a pipe it sees no terminal.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { CLI, runCli } from './cli.js';
import { readJsonl, tmpdir } from './helpers.js';
import { needs, peer } from './peers.js';
import { until } from './wait.js';

/** A private tmux server with one 200×50 pane running `command`, then `__END__ <status>`; the pane stays open after it. */
function terminal(t: Test, dir: string, name: string, command: string) {
  const sock = path.join(dir, `${name}.sock`);
  const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm-256color' };
  delete env.PYTHONUNBUFFERED; // rowlog's own setting is what counts
  const tmux = (...args: string[]) => execFileSync('tmux', ['-S', sock, '-f', '/dev/null', ...args], { encoding: 'utf8', env });
  tmux('new-session', '-d', '-x', '200', '-y', '50', `${command}; echo __END__ $?; cat`);
  t.teardown(() => {
    try {
      tmux('kill-server');
    } catch {
      // already gone
    }
  });
  return { screen: () => tmux('capture-pane', '-p', '-J'), keys: (...k: string[]) => tmux('send-keys', ...k) };
}

const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

const PROBE = `
import json, os, sys
print("isatty", os.isatty(0), os.isatty(1), os.isatty(2))
print(json.dumps({"tty": int(os.isatty(1))}))
if len(sys.argv) > 1:
    print("waiting for Ctrl-C")
    sys.stdin.readline()
`;

/** The peers of a terminal test, a temp folder and PROBE in it; undefined (skipped) without the peers. */
function probeIn(t: Test): { py: string; dir: string; probe: string } | undefined {
  if (!needs(t, ['tmux', 'script', 'python3'])) return undefined;
  const dir = tmpdir(t);
  const probe = path.join(dir, 'probe.py');
  fs.writeFileSync(probe, PROBE);
  return { py: peer('python3') as string, dir, probe };
}

t.test('on a terminal the program sees one (script); through a pipe it does not', async (t) => {
  const p = probeIn(t);
  if (p === undefined) return;
  const { py, dir, probe } = p;

  const onTty = path.join(dir, 'tty');
  const term = terminal(t, dir, 'tty', `node ${sh(CLI)} run --dir ${sh(onTty)} --no-console -- ${sh(py)} ${sh(probe)}`);
  await until(() => term.screen().includes('__END__'), 'the run to finish on the terminal');
  const screen = term.screen();
  t.match(screen, /^isatty True True True$/m, 'stdin, stdout and stderr are a terminal for the program');
  t.match(screen, /^__END__ 0$/m);
  t.notMatch(screen, /"tty"/, 'the row was not shown');
  t.same(readJsonl(path.join(onTty, 'main.jsonl.gz')).map((r) => r.tty), [1], 'the row was logged');
  t.equal(fs.readFileSync(path.join(onTty, 'console.log'), 'utf8'), 'isatty True True True\n', "console.log: the pty's \\r\\n as \\n");
  t.match(JSON.parse(fs.readFileSync(path.join(onTty, 'run.json'), 'utf8')).command, { terminal: true, exitCode: 0, signal: null });

  const piped = path.join(dir, 'piped');
  const r = runCli(['run', '--dir', piped, '--', py, probe], { input: '' });
  t.equal(r.stdout, 'isatty False False False\n', 'through pipes: no terminal');
  t.same(readJsonl(path.join(piped, 'main.jsonl.gz')).map((x) => x.tty), [0]);
  t.match(JSON.parse(fs.readFileSync(path.join(piped, 'run.json'), 'utf8')).command, { terminal: false });
});

t.test('Ctrl-C on the terminal reaches the program; rowlog ends with its status (130)', async (t) => {
  const p = probeIn(t);
  if (p === undefined) return;
  const { py, dir, probe } = p;
  const run = path.join(dir, 'run');
  const term = terminal(t, dir, 'int', `node ${sh(CLI)} run --dir ${sh(run)} --no-console -- ${sh(py)} ${sh(probe)} wait`);
  await until(() => term.screen().includes('waiting for Ctrl-C'), 'the program to wait');
  term.keys('C-c');
  await until(() => term.screen().includes('__END__'), 'the run to end');
  const screen = term.screen();
  t.match(screen, /KeyboardInterrupt/, 'Python got the SIGINT');
  t.match(screen, /^__END__ 130$/m, 'the shell sees 128 + SIGINT');
  t.match(JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8')).command, { terminal: true, exitCode: null, signal: 'SIGINT' });
  t.match(fs.readFileSync(path.join(run, 'console.log'), 'utf8'), /waiting for Ctrl-C\n[^]*KeyboardInterrupt/, 'the traceback is in console.log');
});

t.test('SIGTERM to rowlog on a terminal goes to the program on the pty, not to script', async (t) => {
  if (!needs(t, 'script')) return;
  const dir = tmpdir(t);
  const run = path.join(dir, 'run');
  const program = 'trap "echo SHELL=${SHELL-unset}; exit 7" TERM; echo ready; while :; do sleep 0.05; done';
  // An outer script gives rowlog a terminal; its child is rowlog.
  const env = { ...process.env };
  delete env.SHELL; // script runs /bin/sh then, and rowlog gives the program no SHELL either
  const outer = spawn('script', ['-qfec', `exec ${sh(process.execPath)} ${sh(CLI)} run --dir ${sh(run)} -- sh -c ${sh(program + '; echo "SHELL=${SHELL-unset}"')}`, '/dev/null'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env,
  });
  let out = '';
  outer.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  const ended = new Promise<number | null>((resolve) => outer.on('close', (code) => resolve(code)));
  await until(() => out.includes('ready'), 'the program to start');
  const rowlog = Number(fs.readFileSync(`/proc/${outer.pid}/task/${outer.pid}/children`, 'utf8').trim().split(/\s+/)[0]);
  process.kill(rowlog, 'SIGTERM');
  t.equal(await ended, 7, 'the program trapped it and exited 7: so did rowlog');
  t.match(out, /SHELL=unset\r\n/, 'the program got the SIGTERM, and no SHELL as rowlog had none');
  t.match(JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8')).command, { terminal: true, exitCode: 7, signal: null });

  // Not trapped: the program dies of it, script says 143, rowlog reads SIGTERM from it and re-raises it.
  const killed = path.join(dir, 'killed');
  const second = spawn(peer('script') as string, ['-qfec', `exec ${sh(process.execPath)} ${sh(CLI)} run --dir ${sh(killed)} -- sh -c ${sh('echo ready; exec sleep 30')}`, '/dev/null'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out2 = '';
  second.stdout.setEncoding('utf8').on('data', (s: string) => (out2 += s));
  const ended2 = new Promise<number | null>((resolve) => second.on('close', (code) => resolve(code)));
  await until(() => out2.includes('ready'), 'the second program to start');
  process.kill(Number(fs.readFileSync(`/proc/${second.pid}/task/${second.pid}/children`, 'utf8').trim().split(/\s+/)[0]), 'SIGTERM');
  t.equal(await ended2, 143, 'rowlog died of SIGTERM as its program did (script shows 128 + 15)');
  t.match(JSON.parse(fs.readFileSync(path.join(killed, 'run.json'), 'utf8')).command, { terminal: true, exitCode: null, signal: 'SIGTERM' });
});

t.test('on a terminal without util-linux script: one line says so, the program runs on pipes', async (t) => {
  if (!needs(t, 'script')) return;
  const dir = tmpdir(t);
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  fs.symlinkSync(execFileSync('sh', ['-c', 'command -v sh'], { encoding: 'utf8' }).trim(), path.join(bin, 'sh'));
  const run = path.join(dir, 'run');
  const line = `exec ${sh(process.execPath)} ${sh(CLI)} run --dir ${sh(run)} --no-console -- sh -c ${sh('[ -t 1 ] && echo tty || echo pipe')}`;
  const out = execFileSync(peer('script') as string, ['-qfec', line, '/dev/null'], { encoding: 'utf8', env: { ...process.env, PATH: bin }, input: '' });
  t.match(out, /rowlog: run: util-linux script is not installed \(Debian bsdutils\)/);
  t.match(out, /^pipe\r$/m, 'the program saw no terminal');
  t.match(JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8')).command, { terminal: false, exitCode: 0 });
});

t.test('on a terminal with input piped in: the program reads it, and the pty does not echo it into the output', async (t) => {
  if (!needs(t, 'script')) return;
  const dir = tmpdir(t);
  const run = path.join(dir, 'run');
  const line = `printf 'data\\n' | exec ${sh(process.execPath)} ${sh(CLI)} run --dir ${sh(run)} -- sh -c ${sh('read x; echo "read $x"')}`;
  const out = execFileSync(peer('script') as string, ['-qfec', line, '/dev/null'], { encoding: 'utf8', input: '' });
  t.match(out, /^read data\r+\n$/, 'the program read the line; it was not echoed (each pty adds its \\r)');
  t.equal(fs.readFileSync(path.join(run, 'console.log'), 'utf8'), 'read data\n');
  t.match(JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8')).command, { terminal: true, exitCode: 0 });
});

const RESIZE_PROBE = `
import os, time
first = os.get_terminal_size().columns
print("columns", first, flush=True)
for _ in range(1500):  # until the pty is resized (30 s at most)
    time.sleep(0.02)
    if os.get_terminal_size().columns != first:
        break
print("now", os.get_terminal_size().columns)
`;

t.test('a resized terminal resizes the pty the program runs on', async (t) => {
  const p = probeIn(t);
  if (p === undefined) return;
  const { py, dir } = p;
  const probe = path.join(dir, 'resize.py');
  fs.writeFileSync(probe, RESIZE_PROBE);
  const sock = path.join(dir, 'winch.sock');
  const term = terminal(t, dir, 'winch', `node ${sh(CLI)} run --dir ${sh(path.join(dir, 'run'))} --no-console -- ${sh(py)} ${sh(probe)}`);
  await until(() => term.screen().includes('columns 200'), 'the program to start at 200 columns');
  execFileSync('tmux', ['-S', sock, '-f', '/dev/null', 'resize-window', '-x', '120', '-y', '40']);
  await until(() => term.screen().includes('__END__'), 'the program to see the new size', 60_000 / 10);
  t.match(term.screen(), /^now 120$/m, 'the program sees the terminal\'s new width');
});
