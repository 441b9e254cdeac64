/**
 * Running the built command line in tests: `runCli` to its end, `spawnCli` in the background.
 * Both run dist/lib/cli/main.js with this Node, so `npm run build` must have run first (npm test
 * does). The one place that knows where the CLI is.
 */
import { spawn } from 'node:child_process';
import type {
  ChildProcess,
  ChildProcessByStdio,
  ChildProcessWithoutNullStreams,
  SpawnOptions,
  SpawnOptionsWithStdioTuple,
  SpawnOptionsWithoutStdio,
  StdioNull,
  StdioPipe,
} from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import path from 'node:path';
import { ROOT, run } from './helpers.js';
import type { RunOptions } from './helpers.js';

/** The built CLI's entry point (what `rowlog` runs). */
export const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');

/** `rowlog ARGS` run to its end: {status, stdout, stderr} (see `run` for the options and the ceiling). */
export function runCli(args: string[], opts: RunOptions = {}) {
  return run(process.execPath, [CLI, ...args], opts);
}

/** `rowlog ARGS` started in the background, stdin, stdout and stderr piped unless `opts.stdio` says otherwise; the caller kills it. */
export function spawnCli(args: string[], opts?: SpawnOptionsWithoutStdio): ChildProcessWithoutNullStreams;
export function spawnCli(args: string[], opts: SpawnOptionsWithStdioTuple<StdioNull, StdioPipe, StdioPipe>): ChildProcessByStdio<null, Readable, Readable>;
export function spawnCli(args: string[], opts: SpawnOptionsWithStdioTuple<StdioNull, StdioPipe, StdioNull>): ChildProcessByStdio<null, Readable, null>;
export function spawnCli(args: string[], opts: SpawnOptionsWithStdioTuple<StdioPipe, StdioPipe, StdioPipe>): ChildProcessByStdio<Writable, Readable, Readable>;
export function spawnCli(args: string[], opts: SpawnOptions): ChildProcess;
export function spawnCli(args: string[], opts: SpawnOptions = {}): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], opts);
}
