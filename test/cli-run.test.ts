/**
 * `rowlog run` (lib/cli/run.ts, docs/DESIGN.md §7) on real programs through pipes: a python3
 * trainer's rows arrive while it runs (PYTHONUNBUFFERED), its prints pass through and land in
 * console.log, run.json records the command; a shell script's exit status is rowlog's; a SIGTERM
 * reaches the program and rowlog ends as it did; a missing program is exit 127.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { readJsonl, tmpdir } from './helpers.js';
import { findCommand } from '../lib/cli/run.js';
import { runCli, spawnCli } from './cli.js';
import { needs, peer } from './peers.js';
import { until } from './wait.js';

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** `rowlog ARGS` in the background: its output so far, and its end. */
function start(args: string[]) {
  const env = { ...process.env };
  delete env.PYTHONUNBUFFERED; // rowlog must set it itself (some shells here export it)
  const child = spawnCli(args, { stdio: ['pipe', 'pipe', 'pipe'], env });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const ended = new Promise<Ended>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, ended, stdout: () => stdout };
}

/** The rows of a table file written so far (none while its first member is not there yet). */
function rowsOf(file: string): Array<Record<string, unknown>> {
  try {
    return readJsonl(file);
  } catch {
    return [];
  }
}

function command(dir: string): Record<string, unknown> {
  return (JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')) as { command: Record<string, unknown> }).command;
}

const TRAINER = `
import json, sys
print("hello from the trainer")
print(json.dumps({"loss": 0.5}))
sys.stdin.readline()  # blocks until the test has seen the row in the run folder
print(json.dumps({"loss": 0.25, "$table": "eval"}))
print("bye", file=sys.stderr)
print("done")
`;

t.test('a python3 trainer: rows arrive live, prints pass through, console.log and run.json', async (t) => {
  if (!needs(t, 'python3')) return;
  const py = peer('python3') as string;
  const dir = tmpdir(t);
  const script = path.join(dir, 'train.py');
  fs.writeFileSync(script, TRAINER);
  const run = path.join(dir, 'run');
  const r = start(['run', '--dir', run, '--table', 'train', '--no-console', '--', py, script]);
  // Through a pipe Python holds its prints until exit unless PYTHONUNBUFFERED is set: this waits forever without it.
  await until(() => rowsOf(path.join(run, 'train.jsonl.gz')).length === 1, 'the first row in the run folder while the trainer waits');
  t.equal(r.stdout(), 'hello from the trainer\n', 'its print passed through while it runs; the row did not');
  const running = command(run);
  t.same(running.argv, [py, script], 'run.json names the program while it runs');
  t.notOk('end' in running, 'no end yet');
  r.child.stdin.end('go\n');
  const end = await r.ended;
  t.equal(end.code, 0, end.stderr);
  t.equal(end.stdout, 'hello from the trainer\ndone\n', 'stdout: the non-row lines, byte for byte');
  t.equal(end.stderr, 'bye\n', 'stderr: its stderr');
  t.same(rowsOf(path.join(run, 'train.jsonl.gz')).map((x) => x.loss), [0.5]);
  t.same(rowsOf(path.join(run, 'eval.jsonl.gz')).map((x) => x.loss), [0.25], '$table honoured as in pipe');
  const lines = fs.readFileSync(path.join(run, 'console.log'), 'utf8').split('\n');
  // stdout and stderr are two pipes: "bye" and "done" may come in either order
  t.same([lines[0], ...lines.slice(1).sort()], ['hello from the trainer', '', 'bye', 'done'], 'console.log: what was printed, not the rows');
  const c = command(run);
  t.match(c, { argv: [py, script], cwd: process.cwd(), terminal: false, exitCode: 0, signal: null });
  t.ok(typeof c.pid === 'number' && Date.parse(c.start as string) <= Date.parse(c.end as string), 'pid, start ≤ end');
});

t.test('a shell script exiting 3: rowlog exits 3; the console sink and stderr are in console.log', async (t) => {
  const dir = tmpdir(t);
  const run = path.join(dir, 'run');
  const r = runCli(['run', '--dir', run, '--', 'sh', '-c', 'echo out; echo \'{"x": 1}\'; echo err >&2; exit 3']);
  t.equal(r.status, 3);
  t.equal(r.stdout, 'out\n');
  t.match(r.stderr, /err\n/);
  t.match(r.stderr, /── main {2}step 0 {2}INFO ─+\nx {2}1\n/, 'the console sink printed the row on stderr');
  const captured = fs.readFileSync(path.join(run, 'console.log'), 'utf8');
  t.match(captured, /(^|\n)out\n/);
  t.match(captured, /err\n/);
  t.match(captured, /── main {2}step 0 {2}INFO/, 'what the user saw, the console sink included');
  t.match(command(run), { argv: ['sh', '-c', /exit 3/], exitCode: 3, signal: null });
});

t.test('SIGTERM to rowlog reaches the program; rowlog ends as the program did', async (t) => {
  const dir = tmpdir(t);
  const trapped = path.join(dir, 'trapped');
  const a = start(['run', '--dir', trapped, '--', 'sh', '-c', 'trap "echo got TERM; exit 7" TERM; echo ready; while :; do sleep 0.05; done']);
  await until(() => a.stdout().includes('ready'), 'the program to start');
  a.child.kill('SIGTERM');
  const ea = await a.ended;
  t.equal(ea.code, 7, 'the program handled it and exited 7: so did rowlog');
  t.equal(ea.stdout, 'ready\ngot TERM\n');
  t.match(command(trapped), { exitCode: 7, signal: null });

  const killed = path.join(dir, 'killed');
  const b = start(['run', '--dir', killed, '--', 'sh', '-c', 'echo ready; exec sleep 30']);
  await until(() => b.stdout().includes('ready'), 'the program to start');
  b.child.kill('SIGTERM');
  const eb = await b.ended;
  t.equal(eb.signal, 'SIGTERM', 'the program died of SIGTERM: rowlog re-raised it (a shell shows 143)');
  t.match(command(killed), { exitCode: null, signal: 'SIGTERM' });
  t.equal(JSON.parse(fs.readFileSync(path.join(killed, 'status.json'), 'utf8')).$state, 'closed', 'the run folder was closed first');
  t.equal(fs.readFileSync(path.join(killed, 'console.log'), 'utf8'), 'ready\n');
});

t.test('a program that cannot be started: ERR_COMMAND_NOT_FOUND, 127 (126 not executable), no run folder', async (t) => {
  const dir = tmpdir(t);
  const run = path.join(dir, 'run');
  const r = runCli(['run', '--dir', run, '--', 'no-such-program-here', '--flag']);
  t.equal(r.status, 127);
  t.equal(r.stderr, 'rowlog: run: ERR_COMMAND_NOT_FOUND: no-such-program-here: command not found\n');
  t.notOk(fs.existsSync(run), 'nothing made');
  const file = path.join(dir, 'not-executable.sh');
  fs.writeFileSync(file, 'echo hi\n');
  const n = runCli(['run', '--dir', run, '--', file]);
  t.equal(n.status, 126);
  t.match(n.stderr, /ERR_COMMAND_NOT_FOUND: .*permission denied/);
  const u = runCli(['run', '--dir', run]);
  t.equal(u.status, 2, 'no command: a usage error');
});

t.test('a #! interpreter that is missing: 127; a signal rowlog cannot die of quietly: 128 + n', async (t) => {
  const dir = tmpdir(t);
  const bad = path.join(dir, 'bad.sh');
  fs.writeFileSync(bad, '#!/no/such/interpreter\necho hi\n', { mode: 0o755 });
  const r = runCli(['run', '--dir', path.join(dir, 'bad'), '--', bad]);
  t.equal(r.status, 127);
  t.match(r.stderr, /^rowlog: run: ERR_COMMAND_NOT_FOUND: .*bad\.sh: cannot be started \(ENOENT: is its #! interpreter there\?\)\n$/);
  const usr1 = path.join(dir, 'usr1');
  const u = runCli(['run', '--dir', usr1, '--max-line-bytes', '1000', '--', 'sh', '-c', 'kill -USR1 $$']);
  t.equal(u.status, 128 + 10, 'SIGUSR1 would start node\'s inspector: exit status 138 instead');
  t.match(command(usr1), { exitCode: null, signal: 'SIGUSR1' });
});

t.test('a run folder another rowlog holds: ERR_RUN_LOCKED, exit 1, the program not run', async (t) => {
  const dir = tmpdir(t);
  const run = path.join(dir, 'run');
  const first = start(['run', '--dir', run, '--', 'sh', '-c', 'echo ready; exec sleep 30']);
  await until(() => first.stdout().includes('ready'), 'the first run to start');
  const marker = path.join(dir, 'ran');
  const second = runCli(['run', '--dir', run, '--', 'sh', '-c', `touch ${marker}`]);
  t.equal(second.status, 1);
  t.match(second.stderr, /^rowlog: run: run folder .* is in use by a live process/);
  t.notOk(fs.existsSync(marker), 'the program was not started');
  first.child.kill('SIGINT');
  t.equal((await first.ended).signal, 'SIGINT', 'SIGINT passed on and re-raised');
});

t.test('findCommand finds a program as a shell does', async (t) => {
  const dir = tmpdir(t);
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  fs.mkdirSync(path.join(a, 'prog'), { recursive: true }); // a folder of that name is skipped
  fs.mkdirSync(b);
  fs.writeFileSync(path.join(b, 'prog'), '', { mode: 0o644 }); // not executable: a later one may be
  const c = path.join(dir, 'c');
  fs.mkdirSync(c);
  fs.writeFileSync(path.join(c, 'prog'), '', { mode: 0o755 });
  t.equal(findCommand('prog', { PATH: [a, b, c].join(':') }), path.join(c, 'prog'));
  t.throws(() => findCommand('prog', { PATH: [a, b].join(':') }), { code: 'ERR_COMMAND_NOT_FOUND', status: 126, message: /permission denied/ });
  t.throws(() => findCommand('prog', {}), { code: 'ERR_COMMAND_NOT_FOUND', status: 127 }, 'no PATH');
  t.throws(() => findCommand(''), { code: 'ERR_COMMAND_NOT_FOUND', status: 127 }, 'an empty name');
  t.equal(findCommand(path.join(c, 'prog')), path.join(c, 'prog'), 'a path is taken as is');
});

t.test("rowlog's stderr gone (its reader closed): the program's stderr is still read, so it runs to its end", async (t) => {
  const dir = tmpdir(t);
  const run = path.join(dir, 'run');
  // More than a pipe holds (64 KiB) on stderr once rowlog cannot pass it on: the program must not block on it.
  const r = start(['run', '--dir', run, '--no-console', '--', 'sh', '-c', 'i=0; while [ $i -lt 20000 ]; do echo "err line $i" >&2; i=$((i+1)); done; echo done']);
  t.teardown(() => r.child.kill('SIGKILL'));
  r.child.stderr.once('data', () => r.child.stderr.destroy()); // as `2>&1 | head -1` or a terminal that hung up
  let ended: Ended | undefined;
  void r.ended.then((e) => (ended = e));
  await until(() => ended !== undefined, 'rowlog to end', 10_000);
  t.equal(ended?.code, 0, 'the program ran to its end; so did rowlog');
  t.equal(ended?.stdout, 'done\n');
  t.match(command(run), { exitCode: 0, signal: null });
});

t.test("rowlog's stdout and stderr gone: console.log still keeps everything the program printed", async (t) => {
  const dir = tmpdir(t);
  const run = path.join(dir, 'run');
  const r = start(['run', '--dir', run, '--no-console', '--', 'sh', '-c', 'echo first; read x; i=0; while [ $i -lt 3000 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done']);
  t.teardown(() => r.child.kill('SIGKILL'));
  await until(() => r.stdout().includes('first'), 'the program to start');
  r.child.stdout.destroy(); // as `| head -1`, or a terminal that hung up
  r.child.stderr.destroy();
  r.child.stdin.end('go\n');
  const end = await r.ended;
  t.equal(end.code, 0);
  const lines = fs.readFileSync(path.join(run, 'console.log'), 'utf8').split('\n');
  t.equal(lines.filter((l) => /^out \d+$/.test(l)).length, 3000, "every stdout line, though rowlog's stdout was gone");
  t.equal(lines.filter((l) => /^err \d+$/.test(l)).length, 3000, "every stderr line, though rowlog's stderr was gone");
});

t.test('run.json cannot be rewritten when the program ends: a warning, and rowlog still ends as the program did', async (t) => {
  const dir = tmpdir(t);
  const run = path.join(dir, 'run');
  const r = start(['run', '--dir', run, '--no-console', '--', 'sh', '-c', 'echo ready; read x; exit 4']);
  t.teardown(() => r.child.kill('SIGKILL'));
  await until(() => r.stdout().includes('ready'), 'the program to start');
  fs.rmSync(path.join(run, 'run.json'));
  fs.mkdirSync(path.join(run, 'run.json')); // the rename onto it fails (EISDIR), as a full disk would fail the write
  r.child.stdin.end('go\n');
  const end = await r.ended;
  t.equal(end.code, 4, "the program's exit status, not a crash");
  t.match(end.stderr, /^rowlog warning W_FILE_ERROR: could not update run\.json: /m);
});

t.test('SIGQUIT, SIGUSR2 and SIGALRM to rowlog reach the program too (else rowlog died of them and left it running)', async (t) => {
  const dir = tmpdir(t);
  for (const [sig, code] of [['SIGQUIT', 5], ['SIGUSR2', 6], ['SIGALRM', 7]] as const) {
    const run = path.join(dir, sig);
    const r = start(['run', '--dir', run, '--no-console', '--', 'sh', '-c', `trap "echo got ${sig}; exit ${code}" ${sig.slice(3)}; echo ready; while :; do sleep 0.05; done`]);
    t.teardown(() => {
      try {
        process.kill(-(command(run).pid as number), 'SIGKILL'); // the program, should rowlog have left it
      } catch {
        // ended
      }
    });
    await until(() => r.stdout().includes('ready'), 'the program to start');
    r.child.kill(sig);
    const end = await r.ended;
    t.equal(end.code, code, `${sig}: the program trapped it and exited ${code}: so did rowlog`);
    t.equal(end.stdout, `ready\ngot ${sig}\n`);
  }
});

t.test('a partial line that cannot be a row (a prompt, a progress bar redrawn with \\r) shows at once, not at its newline', async (t) => {
  const dir = tmpdir(t);
  const run = path.join(dir, 'run');
  const r = start(['run', '--dir', run, '--no-console', '--', 'sh', '-c', `printf '\\rprogress 1'; printf '\\rprogress 2'; read x; echo; echo '{"x": 1}'; printf '{"y": 2}'`]);
  t.teardown(() => r.child.kill('SIGKILL'));
  await until(() => r.stdout().includes('progress 2'), 'the progress bar while the program waits');
  r.child.stdin.end('go\n');
  const end = await r.ended;
  t.equal(end.code, 0);
  t.equal(end.stdout, '\rprogress 1\rprogress 2\n', 'the same bytes; the rows not among them');
  t.same(rowsOf(path.join(run, 'main.jsonl.gz')).map((x) => x.x ?? x.y), [1, 2], 'rows still rows, the last one without its newline too');
});
