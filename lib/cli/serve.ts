/**
 * `rowlog serve [DIR] [--port P] [--host H] [--connect host:port [--token T]] [--redis URL
 * [--redis-prefix P]]` (docs/DESIGN.md §7):
 * live plots of the runs under DIR in the browser. Prints one line, `rowlog serve: URL`, on
 * stdout once listening, and stops cleanly on Ctrl-C / SIGTERM (exit 0; a second signal kills),
 * or when the npm/npx process that started it ends (lib/cli/parent-watch.ts says why).
 * Bad flags and an insecure bind are usage errors (exit 2); a port in use is a runtime failure
 * (exit 1).
 */
import fs from 'node:fs';
import { Option } from 'commander';
import type { Command } from 'commander';
import { isRowlogError } from '../core/errors.js';
import { serve } from '../serve/server.js';
import { portArg, stopSignal, usageError } from './args.js';

/** The CLI's default port: next to TensorBoard's 6006. */
const DEFAULT_PORT = 6007;

interface ServeCliOptions {
  port: number;
  host: string;
  allowInsecure?: boolean;
  connect?: string;
  token?: string;
  redis?: string;
  redisPrefix?: string;
}

/** Adds `serve [DIR]` to the `rowlog` command. */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('plot the runs under DIR in the browser (uPlot, one chart per column), updated live as they are logged')
    .argument('[dir]', 'folder of runs (or one run folder)', 'runs')
    .option('-p, --port <port>', 'port to listen on (0 picks a free one)', portArg, DEFAULT_PORT)
    .option('--host <host>', 'address to bind; anything but loopback also needs --allow-insecure', '127.0.0.1')
    .option('--allow-insecure', 'bind a non-loopback --host: anyone who can reach it can read every run')
    .option('--connect <host:port>', 'also plot the rows of a live socket sink (socketSink({port})), as a run named after the address')
    .addOption(new Option('--token <token>', "the --connect socket sink's token").env('ROWLOG_TOKEN'))
    .addOption(
      new Option('--redis <url>', 'also list the runs in this Redis (redis://[:password@]host:port, rediss://…) as redis:<run>, plotted live from their streams').env(
        'ROWLOG_REDIS',
      ),
    )
    .option('--redis-prefix <prefix>', 'the key prefix of the runs in --redis (the sinks\' prefix)')
    .action(async (dir: string, o: ServeCliOptions) => {
      let handle;
      try {
        handle = await serve({
          dir,
          port: o.port,
          host: o.host,
          allowInsecure: o.allowInsecure === true,
          ...(o.connect !== undefined ? { connect: o.connect } : {}),
          ...(o.redis !== undefined && o.redis !== '' ? { redis: o.redis } : {}), // ROWLOG_REDIS= is no URL
          ...(o.redisPrefix !== undefined ? { redisPrefix: o.redisPrefix } : {}),
          // ROWLOG_TOKEN is for --connect; without it (e.g. set for `rowlog collect`) it is not an error
          ...(o.token !== undefined && o.connect !== undefined ? { token: o.token } : {}),
        });
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        if (isRowlogError(err) || e.code === 'ERR_INVALID_OPTION') {
          usageError('serve', e.message.replace(/^serve: /, ''));
          return;
        }
        if (e.syscall !== 'listen') throw err;
        if (e.code === 'EADDRINUSE') throw new Error(`serve: port ${o.port} is in use (another rowlog serve?); pass --port 0 for a free one`);
        throw new Error(`serve: cannot listen on ${o.host}:${o.port}: ${e.message}`);
      }
      const stopped = stopSignal('serve');
      if (!fs.existsSync(dir)) process.stderr.write(`rowlog serve: ${dir} does not exist yet; runs will show up as they are created\n`);
      process.stdout.write(`rowlog serve: ${handle.url}\n`);
      await stopped;
      // Whatever might still hold the loop after close() (a read in flight) must not keep a stopped server alive.
      setTimeout(() => process.exit(), 3000).unref();
      await handle.close();
    });
}
