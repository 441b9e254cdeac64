#!/usr/bin/env node
/**
 * The `rowlog` command (docs/DESIGN.md §7). Exit 0 on success, 1 on runtime failure, 2 on usage
 * errors, with one clear line on stderr.
 */
import { Command, CommanderError } from 'commander';
import { VERSION } from '../core/version.js';
import { prefix, prefixCommanderErrors } from './args.js';
import { registerCollect } from './collect.js';
import { registerDemo } from './demo.js';
import { registerExport } from './export.js';
import { registerLs } from './ls.js';
import { registerPipe } from './pipe.js';
import { registerQuery } from './query.js';
import { registerRun } from './run.js';
import { registerServe } from './serve.js';
import { registerTail } from './tail.js';
import { registerView } from './view.js';

const program = new Command('rowlog')
  .description('Log first, ask questions later: numbers from machine-learning runs.')
  .version(VERSION)
  .exitOverride();

registerDemo(program);
registerCollect(program);
registerExport(program);
registerLs(program);
registerPipe(program);
registerQuery(program);
registerRun(program);
registerServe(program);
registerTail(program);
registerView(program);
prefixCommanderErrors(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else {
    // A runtime failure: one line naming the command that failed (exit status 1).
    const command = program.commands.find((c) => c.name() === process.argv[2])?.name() ?? '';
    const message = (err as Error).message;
    process.stderr.write(`${prefix(command)}${message.startsWith(`${command}: `) ? message.slice(command.length + 2) : message}\n`);
    process.exitCode = 1;
  }
}
