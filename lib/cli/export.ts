/**
 * `rowlog export RUN --to parquet|csv|tensorboard|sqlite [--out DIR] [--table T…]` (docs/DESIGN.md §7):
 * a run folder's tables written again in another format by lib/read/export-run.ts, with a
 * progress line on stderr for long runs (on a terminal, over 50 MB of sources), and one line per
 * table saying what was written. A target that exists, an unknown table or a folder that is no
 * run fails with one line (exit 1); a bad `--to` is a usage error (exit 2).
 */
import { InvalidArgumentError } from 'commander';
import type { Command } from 'commander';
import { exportRun, EXPORT_FORMATS } from '../read/export-run.js';
import type { ExportFormat } from '../read/export-run.js';
import { Terminal } from './progress-line.js';

function formatArg(v: string): ExportFormat {
  if (!(EXPORT_FORMATS as readonly string[]).includes(v)) throw new InvalidArgumentError(`must be one of ${EXPORT_FORMATS.join(', ')}.`);
  return v as ExportFormat;
}

/** Adds `export RUN --to FORMAT` to the `rowlog` command. */
export function registerExport(program: Command): void {
  program
    .command('export')
    .description('write a run folder\'s tables again as Parquet, CSV, a TensorBoard events file or SQLite (new files only)')
    .argument('<run>', 'the run folder')
    .requiredOption('--to <format>', `${EXPORT_FORMATS.join(', ')}`, formatArg)
    .option('--out <dir>', 'folder to write into (default: the run folder)')
    .option('--table <name...>', 'only these tables (default: all)')
    .action(async (run: string, o: { to: ExportFormat; out?: string; table?: string[] }) => {
      const term = new Terminal();
      const progress = { bytes: 0 };
      let started = false;
      try {
        const tables = await exportRun(run, {
          to: o.to,
          ...(o.out === undefined ? {} : { out: o.out }),
          ...(o.table === undefined ? {} : { tables: o.table }),
          onProgress: (bytes, total) => {
            progress.bytes = bytes;
            if (!started) term.startProgress(total, progress, 'export');
            started = true;
          },
          onWarning: (w) => term.say(`rowlog warning ${w.code}: ${w.message}\n`),
        });
        term.stop();
        for (const t of tables) {
          const notes = [
            t.badLines > 0 ? `${t.badLines} bad lines skipped` : '',
            t.damaged.length > 0 ? `${t.damaged.length} damaged stretches skipped` : '',
            t.truncated ? 'the source ends cut short' : '',
          ].filter((s) => s !== '');
          process.stdout.write(`${t.name}: ${t.rows} ${t.rows === 1 ? 'row' : 'rows'} from ${t.from} → ${o.to}${notes.length > 0 ? ` (${notes.join('; ')})` : ''}\n`);
        }
        if (tables.length === 0) process.stdout.write(`no tables to export in ${run}\n`);
      } finally {
        term.stop();
      }
    });
}
