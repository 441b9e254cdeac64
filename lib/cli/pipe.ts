/**
 * `rowlog pipe --dir D --table T [--level L]`: a trainer in any language prints rows as NDJSON
 * on stdout and pipes it here. Each line that is a JSON object goes through the full pipeline
 * (summarize, route, the default sinks of the run folder D), with `$table`, `$step`, `$time`
 * and `$level` keys honoured; every other line (the trainer's own prints, progress bars, JSON
 * that is not an object) passes to stdout unchanged. The console sink writes to stderr here, so
 * stdout stays exactly the trainer's own text.
 */
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import split2 from 'split2';
import { createLogger } from '../log/logger.js';
import { lineToRow } from '../format/parse-lines.js';

/** Options of {@link runPipe}. */
export interface PipeOptions {
  /** Run folder. */
  dir: string;
  /** Table of rows without `$table`. @default 'main' */
  table?: string;
  /** Level of rows without `$level`. @default 'INFO' */
  level?: string;
  /** Show rows on the console (stderr). @default true */
  console?: boolean;
}

/** Reads NDJSON from `input` into a logger on `opts.dir`; other lines go to `output`. */
export async function runPipe(opts: PipeOptions, input: NodeJS.ReadableStream = process.stdin, output: NodeJS.WritableStream = process.stdout): Promise<void> {
  const log = createLogger({
    dir: opts.dir,
    ...(opts.table === undefined ? {} : { table: opts.table }),
    ...(opts.level === undefined ? {} : { level: opts.level }),
    console: opts.console === false ? false : { stream: process.stderr },
  });
  let outputGone = false;
  output.on('error', () => (outputGone = true)); // EPIPE: keep logging rows, stop echoing text
  await pipeline(
    input,
    split2(),
    new Writable({
      objectMode: true,
      write(line: string, _enc, cb) {
        const row = lineToRow(line);
        if (row !== undefined) log.writeRow(row); // never mistaken for an Entry
        else if (!outputGone) output.write(`${line}\n`);
        cb();
      },
    }),
  );
  await log.close();
}

export function registerPipe(program: Command): void {
  program
    .command('pipe')
    .description('log NDJSON rows from stdin into a run folder; other lines pass through to stdout')
    .requiredOption('--dir <dir>', 'run folder')
    .option('--table <table>', 'table of rows without $table', 'main')
    .option('--level <level>', 'level of rows without $level', 'INFO')
    .option('--no-console', 'do not show rows on stderr')
    .action(async (o: { dir: string; table: string; level: string; console: boolean }) => {
      await runPipe({ dir: o.dir, table: o.table, level: o.level, console: o.console });
    });
}
