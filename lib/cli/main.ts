#!/usr/bin/env node
/**
 * The `rowlog` command (docs/DESIGN.md §7). Exit 0 on success, 1 on runtime failure, 2 on usage
 * errors, with one clear line on stderr.
 */
import { Command, CommanderError } from 'commander';
import { VERSION } from '../core/version.js';
import { countArg, portArg, positiveArg, prefix, prefixCommanderErrors } from './args.js';
import { registerCollect } from './collect.js';
import { runDemo } from './demo.js';
import { registerLs } from './ls.js';
import { registerPipe } from './pipe.js';
import { registerQuery } from './query.js';
import { registerServe } from './serve.js';
import { registerTail } from './tail.js';

const program = new Command('rowlog')
  .description('Log first, ask questions later: numbers from machine-learning runs.')
  .version(VERSION)
  .exitOverride();

program
  .command('demo')
  .description('train a small network for a few seconds, logging every step into runs/, then show what was logged')
  .option('--dir <dir>', 'run folder (default: runs/demo_<time>)')
  .option('--epochs <n>', 'epochs to train', positiveArg, 300)
  .option('--quiet', 'print only the summary at the end')
  .option('--socket <port>', 'also serve the rows live on 127.0.0.1:<port>', portArg)
  .option('--pace <ms>', 'pause after each epoch, to watch the run live', countArg, 0)
  .action(async (opts: { dir?: string; epochs: number; quiet?: boolean; socket?: number; pace: number }) => {
    await runDemo({ dir: opts.dir, epochs: opts.epochs, quiet: opts.quiet === true, socket: opts.socket, pace: opts.pace });
  });
registerCollect(program);
registerLs(program);
registerPipe(program);
registerQuery(program);
registerServe(program);
registerTail(program);
prefixCommanderErrors(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else {
    // A runtime failure: one line naming the command that failed (exit status 1).
    const command = program.commands.find((c) => c.name() === process.argv[2])?.name() ?? '';
    process.stderr.write(`${prefix(command)}${(err as Error).message.replace(`${command}: `, '')}\n`);
    process.exitCode = 1;
  }
}
