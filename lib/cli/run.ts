/**
 * `rowlog run --dir D [--table T] [--level L] [--no-console] [--no-tty] [--max-line-bytes N] -- CMD ARGS…`
 * (issue 13 §3, docs/DESIGN.md §7): runs any program (a Python trainer, a shell script) and
 * keeps its run in the folder D:
 * - `run.json` gets `command: {argv, cwd, pid, terminal, start}` when it starts and `end`,
 *   `exitCode`, `signal` when it ends (RunDir.updateInfo: atomic rewrites);
 * - its stdout is read as `rowlog pipe` reads stdin (lib/cli/pipe.ts pipeRows): NDJSON rows go
 *   to the run's tables, every other line passes to stdout byte for byte; its stderr passes to
 *   stderr; all of what rowlog prints (the program's lines, the console sink on stderr,
 *   warnings) is kept in `console.log` by the console capture (lib/log/console-capture.ts);
 * - the program gets `PYTHONUNBUFFERED=1`, so a Python trainer's `print(json.dumps(row))` rows
 *   arrive as they are printed (through a pipe Python buffers 8 KiB: nothing would show until
 *   exit).
 *
 * A terminal: when rowlog's stdout is a TTY (and not `--no-tty`) the program runs on a
 * pseudo-terminal through util-linux `script -qfec CMD /dev/null` (bsdutils, on every Debian),
 * so it sees `isatty()` true and keeps its colors and progress bars (a resized terminal is
 * passed on: SIGWINCH to script). Measured with util-linux
 * 2.38: `script -e` exits with the program's code, 128+n when a signal killed it (so `signal` is
 * inferred from a status over 128 there), but on SIGTERM/SIGINT itself it kills the session and
 * exits 0, so signals go to the program (read from /proc/<script>/task/<script>/children), never
 * to script. A pty merges stderr into stdout and ends lines with `\r\n` (rows still parse: `\r`
 * is JSON whitespace; console.log drops the `\r`), and echoes its input: with stdin not a terminal
 * (piped in) script gets `--echo never` (util-linux ≥ 2.35, Debian 11), else the input would
 * show up in the program's output. Without `script` on PATH: pipes, as with a
 * redirected stdout (PYTHONUNBUFFERED alone makes a trainer's rows live; only isatty differs).
 *
 * Signals: the program runs in a process group of its own (`detached`), so Ctrl-C reaches it
 * once, through rowlog: SIGINT, SIGTERM and SIGHUP (and SIGQUIT, SIGUSR2, SIGALRM) sent to
 * rowlog are passed to that group.
 * rowlog ends as the program did, as `env` and `timeout --preserve-status` do: its exit code,
 * or killed by the same signal (re-raised once the run folder is closed; a shell shows
 * 128+n). A signal rowlog cannot die of quietly (one that dumps core, SIGUSR1, SIGPIPE) is
 * exit status 128+n instead. A program that cannot be started is `ERR_COMMAND_NOT_FOUND`,
 * exit status 127 (126 when the file is not executable), as a shell, before any file is made.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { RowlogError } from '../core/errors.js';
import { maxLineBytesOption } from '../format/line-split.js';
import { createLogger } from '../log/logger.js';
import type { RunCommand } from '../run/run-dir.js';
import { prefix } from './args.js';
import { pipeFlags, pipeLoggerOptions, pipeOptions, pipeRows } from './pipe.js';
import type { PipeFlags, PipeOptions } from './pipe.js';

/** Options of {@link runCommand}. */
export interface RunCommandOptions extends PipeOptions {
  /** Run the program on a pseudo-terminal when stdout is a terminal. @default true */
  tty?: boolean;
}

/**
 * The signals rowlog passes to the program: the three of the exit hooks, and the others a user
 * or a scheduler sends to end a process that Node may listen for (`timeout -s ALRM`, Ctrl-\):
 * unforwarded, rowlog died of them (signal-exit) and left the detached program running.
 */
const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR2', 'SIGALRM'] as const;
/** Signals rowlog re-raises on itself to end as the program did (they end a process quietly). */
const RERAISED = new Set(['SIGHUP', 'SIGINT', 'SIGKILL', 'SIGTERM', 'SIGALRM', 'SIGUSR2']);

/** Exit status 126 (not executable) or 127 (not found) of a program that cannot be started. */
class NotStarted extends RowlogError {
  readonly status: number;
  constructor(message: string, status: number) {
    super('ERR_COMMAND_NOT_FOUND', message);
    this.status = status;
  }
}

/** Where `cmd` is, found as a shell finds it (a name with `/` as is, else the first on PATH that is executable); throws {@link NotStarted}. */
export function findCommand(cmd: string, env: NodeJS.ProcessEnv = process.env): string {
  const candidates = cmd.includes('/') ? [cmd] : (env.PATH ?? '').split(':').map((d) => path.join(d, cmd)); // '' is the current folder, as in a shell
  let found: string | undefined;
  for (const p of cmd === '' ? [] : candidates) {
    try {
      if (!fs.statSync(p).isFile()) continue;
    } catch {
      continue;
    }
    found ??= p;
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // found but not executable: a later one on PATH may be
    }
  }
  if (found !== undefined) throw new NotStarted(`${cmd}: permission denied (${found} is not executable)`, 126);
  throw new NotStarted(`${cmd}: command not found`, 127);
}

/** `s` quoted for /bin/sh. */
const shQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** The pid of util-linux script's child (the program, on the pty), when /proc says. */
function ptyChild(pid: number): number | undefined {
  try {
    const first = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)[0];
    return first === undefined || first === '' ? undefined : Number(first);
  } catch {
    return undefined;
  }
}

/** The signal a `script -e` status over 128 stands for (128 + n), or undefined. */
function signalOfStatus(code: number): string | undefined {
  return code > 128 ? Object.entries(os.constants.signals).find(([, n]) => n === code - 128)?.[0] : undefined;
}

/** Starts `argv` on a pty through `script` or on pipes, detached (its own process group). */
function start(argv: string[], script: string | undefined): ChildProcess {
  const env = { ...process.env, PYTHONUNBUFFERED: '1' };
  const stdio = ['inherit', 'pipe', 'pipe'] as const;
  if (script === undefined) return spawn(argv[0] as string, argv.slice(1), { stdio: [...stdio], env, detached: true });
  // script runs `$SHELL -c`: /bin/sh for the quoting, the user's SHELL given back to the program.
  const shell = process.env.SHELL === undefined ? 'unset SHELL' : `SHELL=${shQuote(process.env.SHELL)}; export SHELL`;
  const line = `${shell}; exec ${argv.map(shQuote).join(' ')}`;
  // Input piped in would be echoed by the pty into the program's output: no echo then (util-linux ≥ 2.35).
  const echo = process.stdin.isTTY ? [] : ['--echo', 'never'];
  return spawn(script, [...echo, '-qfec', line, '/dev/null'], { stdio: [...stdio], env: { ...env, SHELL: '/bin/sh' }, detached: true });
}

/**
 * Runs `argv` into the run folder `opts.dir` (see the header); resolves with what `run.json`'s
 * `command` says at the end. Throws `ERR_COMMAND_NOT_FOUND` (with `status` 127 or 126) before
 * anything is made when the program cannot be started.
 */
export async function runCommand(argv: string[], opts: RunCommandOptions): Promise<RunCommand> {
  findCommand(argv[0] ?? '');
  const maxLineBytes = maxLineBytesOption(opts.maxLineBytes);
  process.stderr.on('error', () => undefined); // a terminal gone (SIGHUP): the lines still reach console.log
  const log = createLogger(pipeLoggerOptions(opts, true));
  const script = opts.tty !== false && process.stdout.isTTY ? findScript() : undefined; // its notice captured too
  const child = start(argv, script);
  const exited = new Promise<{ code: number | null; signal: string | null; error?: Error }>((resolve) => {
    child.on('error', (error) => resolve({ code: null, signal: null, error }));
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  const command: RunCommand = { argv, cwd: process.cwd(), terminal: script !== undefined, start: new Date().toISOString() };
  const forward = (sig: NodeJS.Signals): void => {
    const pid = command.pid as number;
    try {
      // Its process group (a shell script's own children too): the program leads one, on pipes
      // (detached) and on the pty (script makes it a session leader).
      process.kill(-(script === undefined ? pid : (ptyChild(pid) ?? pid)), sig);
    } catch {
      // gone meanwhile
    }
  };
  // On a pty, a resized terminal is told to script, which sets the pty's size from it (the
  // program gets its SIGWINCH from the pty): script has no controlling terminal of its own
  // (detached), so only rowlog, in the terminal's foreground, is signalled.
  const resized = (): void => {
    try {
      process.kill(command.pid as number, 'SIGWINCH');
    } catch {
      // gone meanwhile
    }
  };
  child.once('spawn', () => {
    command.pid = child.pid as number;
    log.updateRun({ command });
    for (const s of FORWARDED) process.on(s, forward);
    if (script !== undefined) process.on('SIGWINCH', resized);
  });
  try {
    const stderrDone = passStderr(child.stderr as Readable);
    await Promise.all([pipeRows(log, child.stdout as NodeJS.ReadableStream, process.stdout, maxLineBytes), stderrDone]);
    const end = await exited;
    if (end.error !== undefined) {
      const e = end.error as NodeJS.ErrnoException;
      // found and executable, yet not started: a `#!` interpreter that is missing (ENOENT) or not executable
      throw e.code === 'ENOENT' || e.code === 'EACCES' ? new NotStarted(`${argv[0] as string}: cannot be started (${e.code}: is its #! interpreter there?)`, e.code === 'ENOENT' ? 127 : 126) : e;
    }
    const inferred = script !== undefined && end.code !== null ? signalOfStatus(end.code) : undefined;
    Object.assign(command, {
      end: new Date().toISOString(),
      exitCode: inferred === undefined ? end.code : null,
      signal: inferred ?? end.signal,
    });
    log.updateRun({ command });
    return command;
  } finally {
    await log.close();
    for (const s of FORWARDED) process.off(s, forward);
    process.off('SIGWINCH', resized);
  }
}

/**
 * The program's stderr to rowlog's (through the capture's tee), as fast as that takes it. Once
 * rowlog's stderr is gone (EPIPE under `2>&1 | head`, a terminal that hung up) it is still read
 * and handed on without waiting for a drain, as pipeRows does with stdout: process.stderr stays
 * open and drops it, the tee keeps it in console.log, and the program never blocks on a full
 * pipe (a bare `.pipe()` unpipes on the error and leaves it blocked forever). Resolves at its end.
 */
function passStderr(from: Readable): Promise<void> {
  const to = process.stderr;
  let gone = to.destroyed;
  const onGone = (): void => {
    gone = true;
    from.resume();
  };
  to.on('error', onGone).on('close', onGone);
  from.on('data', (b: Buffer) => {
    // Still handed to stderr once it is gone (process.stderr stays open and drops it), so the
    // capture's tee keeps it in console.log.
    if (!to.write(b) && !gone) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  });
  return new Promise<void>((resolve) => {
    const done = (): void => {
      to.off('error', onGone).off('close', onGone);
      resolve();
    };
    from.on('end', done).on('error', done);
  });
}

/** util-linux `script`, when on PATH. */
function findScript(): string | undefined {
  try {
    return findCommand('script');
  } catch {
    process.stderr.write(`${prefix('run')}util-linux script is not installed (Debian bsdutils): the program's output goes through pipes, so it sees no terminal\n`);
    return undefined;
  }
}

/** Ends this process as `command` ended: its exit code, or its signal re-raised. */
function endAs(command: RunCommand): void {
  const sig = command.signal;
  if (typeof sig !== 'string') {
    process.exitCode = command.exitCode as number; // the exit event gives a code or a signal
    return;
  }
  const status = 128 + os.constants.signals[sig as NodeJS.Signals];
  process.exitCode = status;
  if (!RERAISED.has(sig)) return;
  process.kill(process.pid, sig as NodeJS.Signals);
  setTimeout(() => process.exit(status), 2000); // in case a handler kept the signal from ending us
}

export function registerRun(program: Command): void {
  const cmd = program
    .command('run')
    .description('run a program, log the NDJSON rows it prints into a run folder, keep its output in console.log')
    .usage('--dir <dir> [options] -- <command> [args...]');
  pipeFlags(cmd)
    .option('--no-tty', 'pipes even when stdout is a terminal (the program sees no terminal)')
    .argument('<command...>', 'the program and its arguments, after --')
    .action(async (argv: string[], o: PipeFlags & { tty: boolean }) => {
      let command: RunCommand;
      try {
        command = await runCommand(argv, { ...pipeOptions(o), tty: o.tty });
      } catch (err) {
        if (!(err instanceof NotStarted)) throw err; // ERR_RUN_LOCKED…: main's one line, exit 1
        process.stderr.write(`${prefix('run')}${err.code}: ${err.message}\n`);
        process.exitCode = err.status;
        return;
      }
      endAs(command);
    });
}
