/**
 * What the `rowlog` commands share: argument parsers (a bad value is a usage error, exit 2), the
 * one way a command reports a usage error or a failure (one line starting `rowlog: <command>: `,
 * docs/DESIGN.md §7), and the stop signal.
 */
import os from 'node:os';
import { InvalidArgumentError } from 'commander';
import type { Command } from 'commander';
import { parentGone } from './parent-watch.js';

/** The one line every message of `command` starts with. */
export function prefix(command: string): string {
  return command === '' ? 'rowlog: ' : `rowlog: ${command}: `;
}

/** Reports a usage error of `command` (exit status 2): one line `rowlog: <command>: <message>`. */
export function usageError(command: string, message: string): void {
  process.stderr.write(`${prefix(command)}${message.replace(/\n+$/, '')}\n`);
  process.exitCode = 2;
}

/**
 * Makes commander's own messages (unknown option, missing argument, a parser's
 * InvalidArgumentError) start `rowlog: <command>: ` instead of `error: `, for `program` and every
 * command registered on it so far.
 */
export function prefixCommanderErrors(program: Command): void {
  const set = (cmd: Command, name: string) =>
    cmd.configureOutput({ outputError: (str, write) => write(str.replace(/^error: /, prefix(name))) });
  set(program, '');
  for (const cmd of program.commands) set(cmd, cmd.name());
}

/** A whole number ≥ 0 (`--lines`, `--pace`). */
export function countArg(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('must be a whole number ≥ 0.');
  return n;
}

/** A whole number ≥ 1 (`--epochs`). */
export function positiveArg(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number ≥ 1.');
  return n;
}

/** A TCP port, 0 to 65535 (0 picks a free one where a server listens). */
export function portArg(v: string): number {
  const n = countArg(v);
  if (n > 65535) throw new InvalidArgumentError('must be a port number from 0 to 65535.');
  return n;
}

/**
 * Resolves when a long-running command (`serve`, `collect`) should stop: on the first SIGINT or
 * SIGTERM, or when the npm/npx wrapper that started it has died (lib/cli/parent-watch.ts says
 * why), which is said in one line. Its listener stays installed while the command closes: were it
 * gone, the run loggers' exit hook (signal-exit, lib/log/exit-hooks.ts) would see no other
 * listener of the signal and re-raise it, ending the process (143) before its close and its last
 * line. A second signal ends the process at once, with the status that signal gives (128 + n).
 */
export function stopSignal(command: string): Promise<void> {
  const parent = parentGone();
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (sig?: NodeJS.Signals) => {
      if (stopping) {
        if (sig !== undefined) process.exit(128 + (os.constants.signals[sig] ?? 0));
        return;
      }
      stopping = true;
      parent.cancel();
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    void parent.gone.then(() => {
      process.stderr.on('error', () => {}); // whoever read it may have gone with the parent
      process.stderr.write(`${prefix(command)}the process that started it (npm/npx) has ended; stopping\n`);
      stop();
    });
  });
}
