/**
 * `rowlog collect --port P --dir D [--host H] [--token T] [--allow-insecure] [--max-connections N]
 * [--max-pending-bytes B] [--idle-timeout-ms MS]` (docs/DESIGN.md §7):
 * receives the rows trainers push with `socketSink({connect: 'host:P', source})` and writes each
 * source into its run folder `D/<source>`. Prints one line on stdout once listening; runs until
 * SIGINT or SIGTERM, then closes every run so its files are complete (a second signal kills).
 * Warnings (bad lines, bad sources) go to stderr. A non-loopback `--host` without `--token` or
 * `--allow-insecure` is a usage error (exit 2).
 */
import { Option } from 'commander';
import type { Command } from 'commander';
import { collect } from '../net/collect.js';
import { isRowlogError } from '../core/errors.js';
import { countArg, portArg, positiveArg, stopSignal, usageError } from './args.js';

/** The flags of `rowlog collect`, as commander parses them. */
interface CollectFlags {
  port: number;
  dir: string;
  host: string;
  token?: string;
  allowInsecure?: boolean;
  maxConnections?: number;
  maxPendingBytes?: number;
  idleTimeoutMs?: number;
}

/** Adds the `collect` command to `program`. */
export function registerCollect(program: Command): void {
  program
    .command('collect')
    .description('receive rows pushed by socket sinks (socketSink({connect, source})) and write each source into DIR/<source>')
    .requiredOption('--port <port>', 'TCP port to listen on (0 picks a free one)', portArg)
    .requiredOption('--dir <dir>', 'folder of run folders, one per source')
    .option('--host <host>', 'address to bind; anything but loopback needs --token or --allow-insecure', '127.0.0.1')
    .addOption(new Option('--token <token>', 'secret every pusher must send as its first line').env('ROWLOG_TOKEN'))
    .option('--allow-insecure', 'bind a non-loopback address without a token')
    .option('--max-connections <n>', 'most connections open at once; more are refused with one line (default 256)', countArg)
    .option('--max-pending-bytes <n>', 'most bytes of unfinished lines held for all connections together; past it the largest holder is cut off (default 32 MiB)', positiveArg)
    .option('--idle-timeout-ms <ms>', 'close a connection whose unfinished line has not ended for this long (default 30000)', positiveArg)
    .action(async (o: CollectFlags) => {
      let collector;
      try {
        collector = await collect({
          port: o.port,
          dir: o.dir,
          host: o.host,
          allowInsecure: o.allowInsecure === true,
          ...(o.token === undefined ? {} : { token: o.token }),
          ...(o.maxConnections === undefined ? {} : { maxConnections: o.maxConnections }),
          ...(o.maxPendingBytes === undefined ? {} : { maxPendingBytes: o.maxPendingBytes }),
          ...(o.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: o.idleTimeoutMs }),
        });
      } catch (err) {
        if (!isRowlogError(err) && (err as { code?: unknown }).code !== 'ERR_INVALID_OPTION') throw err;
        usageError('collect', (err as Error).message.replace(/^collect: /, ''));
        return;
      }
      const stopped = stopSignal('collect');
      process.stdout.write(`rowlog collect: listening on ${collector.address}, writing into ${o.dir}\n`);
      await stopped;
      await collector.close();
      const c = collector.counts;
      const skipped = c.badLine + c.badSource + c.badMeta + c.duplicate + c.truncated + c.tooLong + c.unwritable + c.pendingFull + c.idle;
      const refused = c.refused > 0 ? `; connections refused: ${c.refused}` : '';
      const cut = c.pendingFull + c.idle > 0 ? `; connections cut off: ${c.pendingFull} over --max-pending-bytes, ${c.idle} idle mid-line` : '';
      process.stderr.write(`rowlog collect: stopped; ${c.rows} rows from ${collector.sources().length} sources written; lines skipped: ${skipped}${refused}${cut}\n`);
    });
}
