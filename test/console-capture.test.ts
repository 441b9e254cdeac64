/**
 * Console capture (lib/log/console-capture.ts, docs/DESIGN.md §4): a real child node process
 * prints through console.*, direct writes, a worker thread and ANSI colors; its stdout and stderr
 * bytes are the same with and without `console: {capture: true}`, and `console.log` in the run
 * folder holds the lines. A SIGKILL keeps what was flushed; a SIGTERM flushes the rest.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { createLogger } from '../lib/log/logger.js';
import { ConsoleCapture } from '../lib/log/console-capture.js';
import { scanRuns } from '../lib/run/layout.js';
import type { RowlogWarning } from '../lib/core/warnings.js';
import { ROOT, tmpdir } from './helpers.js';
import { startChild } from './child.js';
import { until } from './wait.js';

const LOGGER = path.join(ROOT, 'lib', 'log', 'logger.js');
/** The child runs a `.mts` file importing lib/ as tap's own process does (its TypeScript loader). */
const TS_ENV = { NODE_OPTIONS: [process.env.NODE_OPTIONS ?? '', ...process.execArgv].join(' ').trim() };

/** A child that prints everything a program may print; with `capture` set it logs with capture on. */
const PRINTER = `
import { Worker } from 'node:worker_threads';
import { createLogger } from ${JSON.stringify(LOGGER)};
const [mode, dir] = process.argv.slice(2);
if (mode === 'capture') createLogger({ dir, console: { capture: true, pretty: false }, tensorboard: false });
console.log('hello from console.log', { a: 1 });
console.error('an error line');
process.stdout.write('\\u001b[31mred\\u001b[0m and \\u001b[1mbold\\u001b[0m\\n');
process.stderr.write(Buffer.from('bytes to stderr\\r\\n'));
await new Promise((r) => new Worker("console.log('from a worker thread')", { eval: true }).on('exit', r));
const ret = process.stdout.write('callback and return value: ', () => process.stdout.write('called\\n'));
await new Promise((r) => setImmediate(r));
console.log(String(ret));
process.stdout.write(new Uint8Array(Buffer.from('utf-8 ✓, then a partial line')));
`;

interface Output {
  stdout: Buffer;
  stderr: Buffer;
  code: number | null;
}

/** `node script args`; `merged`: stderr into the same pipe as stdout (`2>&1`), so their order shows. */
function runNode(script: string, args: string[], merged = false): Promise<Output> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, ...TS_ENV };
    const child = merged
      ? spawn('sh', ['-c', '"$0" "$@" 2>&1', process.execPath, script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env })
      : spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => resolve({ stdout: Buffer.concat(out), stderr: Buffer.concat(err), code }));
  });
}

t.test('a child process: the same stdout and stderr bytes with capture, and console.log holds every line', async (t) => {
  const dir = tmpdir(t);
  const script = path.join(dir, 'printer.mts');
  fs.writeFileSync(script, PRINTER);
  const run = path.join(dir, 'run');
  const plain = await runNode(script, ['plain', run]);
  const captured = await runNode(script, ['capture', run]);
  t.equal(plain.code, 0, `without capture: ${plain.stderr.toString()}`);
  t.equal(captured.code, 0, `with capture: ${captured.stderr.toString()}`);
  t.equal(captured.stdout.toString('latin1'), plain.stdout.toString('latin1'), 'stdout: the same bytes');
  t.equal(captured.stderr.toString('latin1'), plain.stderr.toString('latin1'), 'stderr: the same bytes');
  t.ok(plain.stdout.includes('from a worker thread'), 'the worker printed');
  const mergedPlain = await runNode(script, ['plain', path.join(dir, 'unused')], true);
  const mergedCaptured = await runNode(script, ['capture', path.join(dir, 'merged')], true);
  t.equal(mergedCaptured.stdout.toString('latin1'), mergedPlain.stdout.toString('latin1'), 'stdout and stderr on one pipe: the same bytes in the same order');
  t.equal(
    fs.readFileSync(path.join(run, 'console.log'), 'utf8'),
    [
      "hello from console.log { a: 1 }",
      'an error line',
      '\u001b[31mred\u001b[0m and \u001b[1mbold\u001b[0m',
      'bytes to stderr',
      'from a worker thread',
      'callback and return value: called',
      'true',
      'utf-8 ✓, then a partial line',
      '',
    ].join('\n'),
    'console.log: every line, stderr unmarked, colors kept, \\r\\n as \\n, the partial line ended at exit',
  );
  t.same(
    scanRuns(run).flatMap((r) => r.tables.map((x) => x.name)),
    [],
    'console.log is not a table',
  );
});

/** A child that logs with capture on, prints `line N` every 20 ms and `flushed N` once N is flushed. */
const TICKER = `
import { createLogger } from ${JSON.stringify(LOGGER)};
const log = createLogger({ dir: process.argv[2], console: { capture: true, pretty: false }, tensorboard: false });
let n = 0;
setInterval(() => {
  console.log('line ' + n);
  if (n === 3) log.flush().then(() => process.stderr.write('flushed 3\\n'));
  n++;
}, 20);
process.stdout.write('held, no newline yet');
`;

t.test('SIGKILL after a flush: the flushed lines are in console.log; SIGTERM: every line is', async (t) => {
  const dir = tmpdir(t);
  const script = path.join(dir, 'ticker.mts');
  fs.writeFileSync(script, TICKER);

  const killed = path.join(dir, 'killed');
  const k = startChild(script, [killed], TS_ENV);
  await until(() => k.stderr().includes('flushed 3'), 'the child to flush line 3');
  k.proc.kill('SIGKILL');
  await k.exited;
  const kept = fs.readFileSync(path.join(killed, 'console.log'), 'utf8');
  t.match(kept, /^held, no newline yetline 0\nline 1\nline 2\nline 3\n/, 'the lines up to the flush survived the SIGKILL, the held line joined to its end');
  t.ok(kept.endsWith('\n'), 'whole lines only');

  const termed = path.join(dir, 'termed');
  const c = startChild(script, [termed], TS_ENV);
  await c.line(/^line 5$/);
  c.proc.kill('SIGTERM');
  const end = await c.exited;
  t.equal(end.signal, 'SIGTERM', 'the signal still ends the process');
  const printed = c.lines.filter((l) => /^(held|line)/.test(l));
  const lines = fs.readFileSync(path.join(termed, 'console.log'), 'utf8').split('\n').filter((l) => /^(held|line)/.test(l));
  t.same(lines.slice(0, printed.length), printed, 'every line printed before the SIGTERM is in console.log');
  t.same(JSON.parse(fs.readFileSync(path.join(termed, 'status.json'), 'utf8')).$state, 'interrupted');
});

t.test('in this process: write() keeps its arguments, callback and return value; close puts write back', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'console.log');
  const calls: unknown[][] = [];
  const real = process.stderr.write;
  const fake = function (...args: unknown[]): boolean {
    calls.push(args);
    const cb = args.find((a) => typeof a === 'function') as (() => void) | undefined;
    cb?.();
    return false; // a full pipe: the caller should wait for 'drain'
  } as typeof process.stderr.write;
  process.stderr.write = fake;
  let called = 0;
  let ret: boolean;
  let second: ConsoleCapture;
  try {
    const cap = new ConsoleCapture(file);
    second = new ConsoleCapture(path.join(dir, 'second.log'));
    ret = process.stderr.write('a\r\nb', 'latin1', () => called++);
    process.stderr.write('c'.repeat(70 * 1024)); // a held line over 64 KiB is written as a line
    process.stderr.write(Buffer.alloc(0));
    process.stderr.write(42 as unknown as string); // what only a replaced write accepts: passed on, not copied
    t.not(process.stderr.write, fake, 'the tee is in place');
    await cap.close();
    t.not(process.stderr.write, fake, 'another capture still runs: the tee stays');
    second.exitSync();
    t.equal(process.stderr.write, fake, 'the last capture gone: the original write is back');
  } finally {
    process.stderr.write = real;
  }
  t.equal(ret, false, 'the return value passed through (backpressure)');
  t.equal(called, 1, 'the callback passed through');
  t.same(calls.find((c) => c[0] === 'a\r\nb')?.slice(0, 2), ['a\r\nb', 'latin1'], 'the same arguments');
  // tap's own output (stdout) was captured too meanwhile: only the start is ours
  const expected = `a\nb${'c'.repeat(70 * 1024)}\n`;
  t.ok(fs.readFileSync(file, 'latin1').startsWith(expected), 'the lines, the long held one ended');
  t.ok(fs.readFileSync(path.join(dir, 'second.log'), 'latin1').startsWith(expected), 'both captures saw everything');
});

t.test('a tee replaced by someone else stays in place, passing through', async (t) => {
  const dir = tmpdir(t);
  const real = process.stderr.write;
  const cap = new ConsoleCapture(path.join(dir, 'console.log'));
  const ours = process.stderr.write;
  const theirs = function (this: unknown, ...args: unknown[]): boolean {
    return Reflect.apply(ours, this, args) as boolean;
  } as typeof process.stderr.write;
  process.stderr.write = theirs;
  try {
    cap.exitSync();
    t.equal(process.stderr.write, theirs, 'their wrapper is left alone');
  } finally {
    process.stderr.write = real;
  }
  const again = new ConsoleCapture(path.join(dir, 'again.log'));
  again.exitSync();
  t.equal(process.stderr.write, real);
});

t.test('a file that cannot be written warns once and drops the oldest lines past the bound', async (t) => {
  const dir = tmpdir(t);
  fs.mkdirSync(path.join(dir, 'console.log')); // a folder where the file should be: EISDIR
  const warnings: RowlogWarning[] = [];
  const real = process.stderr.write;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  let cap: ConsoleCapture | undefined;
  try {
    cap = new ConsoleCapture(path.join(dir, 'console.log'), { maxQueuedBytes: 1000, flushIntervalMs: 1, onWarning: (w) => warnings.push(w) });
    for (let i = 0; i < 50; i++) process.stderr.write(`${'x'.repeat(100)}\n`);
    cap.flushSync();
    for (let i = 0; i < 50; i++) process.stderr.write(`${'y'.repeat(100)}\n`);
    await cap.flush();
    process.stdout.write('one more\n'); // under the bound: kept, and its synchronous write fails quietly
    cap.flushSync();
    await until(() => warnings.length >= 2, `both warnings (${JSON.stringify(warnings)})`);
  } finally {
    cap?.exitSync();
    process.stderr.write = real;
  }
  t.same(warnings.map((w) => w.code).sort(), ['W_CONSOLE_DROPPED', 'W_FILE_ERROR']);
  t.match(warnings.find((w) => w.code === 'W_FILE_ERROR')?.message, /EISDIR/);
});

t.test('options: capture needs a run folder; console: false and pretty: false; bad values', async (t) => {
  const dir = tmpdir(t);
  const opt = { code: 'ERR_INVALID_OPTION' };
  t.throws(() => createLogger({ sinks: [], console: { capture: true } }), { ...opt, message: /console\.capture: needs a run folder/ });
  t.throws(() => createLogger({ dir, console: { capture: 'yes' as unknown as boolean } }), { ...opt, message: /console\.capture/ });
  t.throws(() => createLogger({ dir, console: { pretty: 1 as unknown as boolean } }), { ...opt, message: /console\.pretty/ });
  t.throws(() => createLogger({ dir, console: 'loud' as unknown as false }), { ...opt, message: /^console: must be an object/ });
  const log = createLogger({ dir: path.join(dir, 'quiet'), console: false, tensorboard: false });
  await log.close();
  t.notOk(fs.existsSync(path.join(dir, 'quiet', 'console.log')), 'console: false: no capture');
});

t.test("an uncaught exception: Node's report bypasses process.stderr, its stack is in console.log", async (t) => {
  const dir = tmpdir(t);
  const script = path.join(dir, 'crash.mts');
  fs.writeFileSync(
    script,
    `import { createLogger } from ${JSON.stringify(LOGGER)};
createLogger({ dir: process.argv[3], console: { capture: true, pretty: false }, tensorboard: false });
console.log('before the crash');
setTimeout(() => { if (process.argv[2] === 'error') throw new Error('boom'); throw { not: 'an Error' }; }, 1);
`,
  );
  for (const kind of ['error', 'object']) {
    const run = path.join(dir, kind);
    const r = await runNode(script, [kind, run]);
    t.equal(r.code, 1, `${kind}: the crash ends the process as before`);
    const text = fs.readFileSync(path.join(run, 'console.log'), 'utf8');
    t.match(text, kind === 'error' ? /^before the crash\nError: boom\n {4}at / : /^before the crash\n\{ not: 'an Error' \}\n$/, `${kind}: what was thrown, after the lines before it`);
  }
});

t.test('an exception the program handles itself (uncaughtException): not printed, so not in console.log', async (t) => {
  const dir = tmpdir(t);
  const script = path.join(dir, 'handled.mts');
  fs.writeFileSync(
    script,
    `import { createLogger } from ${JSON.stringify(LOGGER)};
const log = createLogger({ dir: process.argv[2], console: { capture: true, pretty: false }, tensorboard: false });
process.on('uncaughtException', () => { console.log('handled quietly'); void log.close(); });
setTimeout(() => { throw new Error('boom'); }, 1);
`,
  );
  const run = path.join(dir, 'run');
  const r = await runNode(script, [run]);
  t.equal(r.code, 0, r.stderr.toString());
  t.equal(r.stderr.toString(), '', 'the terminal saw no stack');
  t.equal(fs.readFileSync(path.join(run, 'console.log'), 'utf8'), 'handled quietly\n', 'console.log: only what was printed');
});

t.test('a tee left in place under another wrapper: a later capture still gets each line once', async (t) => {
  const dir = tmpdir(t);
  const real = process.stderr.write;
  const sink = function (): boolean {
    return true;
  } as typeof process.stderr.write;
  process.stderr.write = sink;
  try {
    const first = new ConsoleCapture(path.join(dir, 'first.log'));
    const ours = process.stderr.write;
    process.stderr.write = function (this: unknown, ...args: unknown[]): boolean {
      return Reflect.apply(ours, this, args) as boolean;
    } as typeof process.stderr.write; // a library wrapping write (a progress bar, a test runner)
    first.exitSync();
    const second = new ConsoleCapture(path.join(dir, 'second.log'));
    process.stderr.write('once\n');
    second.exitSync();
  } finally {
    process.stderr.write = real;
  }
  t.equal(fs.readFileSync(path.join(dir, 'second.log'), 'utf8').split('\n').filter((l) => l === 'once').length, 1, 'the line once, not once per tee');
});
