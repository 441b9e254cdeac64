/**
 * `rowlog collect --port P --dir D [--host H] [--token T] [--allow-insecure] [--max-connections N]
 * [--max-pending-bytes B] [--idle-timeout-ms MS]` (docs/DESIGN.md §7):
 * receives the rows trainers push with `socketSink({connect: 'host:P', source})` and writes each
 * source into its run folder `D/<source>`. `rowlog collect --redis URL --dir D [--name G]
 * [--prefix P] [--lease-ms MS] [--poll-ms MS]` (URL also from `ROWLOG_REDIS` when no `--port` is
 * given) reads every run in Redis instead (lib/net/collect-redis.ts, docs/DESIGN.md §4 "The ack
 * rule") and writes run `r` into `D/<r>`. Prints one line on stdout once listening; runs until
 * SIGINT or SIGTERM, then closes every run so its files are complete (a second signal kills).
 * Warnings (bad lines, bad sources) go to stderr. A non-loopback `--host` without `--token` or
 * `--allow-insecure` is a usage error (exit 2).
 */
import { Option } from 'commander';
import type { Command } from 'commander';
import { collect } from '../net/collect.js';
import { collectRedis } from '../net/collect-redis.js';
import type { ReplayReport } from '../net/collect-redis.js';
import { isRowlogError } from '../core/errors.js';
import { countArg, portArg, positiveArg, stopSignal, usageError } from './args.js';

/** The flags of `rowlog collect`, as commander parses them. */
interface CollectFlags {
  port?: number;
  redis?: string;
  name?: string;
  prefix?: string;
  leaseMs?: number;
  pollMs?: number;
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
    .description('receive rows pushed by socket sinks (socketSink({connect, source})) and write each source into DIR/<source>; with --redis, read every run in Redis into DIR/<run>')
    .option('--port <port>', 'TCP port to listen on (0 picks a free one)', portArg)
    .addOption(new Option('--redis <url>', 'read the runs in this Redis (redis:// or rediss://) instead of listening; ROWLOG_REDIS when no --port').env('ROWLOG_REDIS'))
    .option('--name <group>', 'with --redis: the consumer group; collectors with one name share the runs (default rowlog-collect)')
    .option('--prefix <prefix>', "with --redis: the sinks' key prefix (default rowlog)")
    .option('--lease-ms <ms>', 'with --redis: how long a run stays held without renewal (default 10000)', positiveArg)
    .option('--poll-ms <ms>', 'with --redis: how often new runs and tables are looked for (default 1000)', positiveArg)
    .requiredOption('--dir <dir>', 'folder of run folders, one per source')
    .option('--host <host>', 'address to bind; anything but loopback needs --token or --allow-insecure', '127.0.0.1')
    .addOption(new Option('--token <token>', 'secret every pusher must send as its first line').env('ROWLOG_TOKEN'))
    .option('--allow-insecure', 'bind a non-loopback address without a token')
    .option('--max-connections <n>', 'most connections open at once; more are refused with one line (default 256)', countArg)
    .option('--max-pending-bytes <n>', 'most bytes of unfinished lines held for all connections together; past it the largest holder is cut off (default 32 MiB)', positiveArg)
    .option('--idle-timeout-ms <ms>', 'close a connection whose unfinished line has not ended for this long (default 30000)', positiveArg)
    .action(async (o: CollectFlags, cmd: Command) => {
      if (o.redis === '' && cmd.getOptionValueSource('redis') === 'env') delete o.redis; // ROWLOG_REDIS= is none
      const redisGiven = o.redis !== undefined && cmd.getOptionValueSource('redis') !== 'env';
      if (o.port !== undefined && redisGiven) return usageError('collect', 'give --port (TCP) or --redis, not both');
      if (o.port === undefined) {
        if (o.redis === undefined) return usageError('collect', 'needs --port P (rows pushed over TCP) or --redis URL (or ROWLOG_REDIS)');
        return collectFromRedis({ ...o, redis: o.redis });
      }
      const collector = await orUsage(() =>
        collect({
          port: o.port,
          dir: o.dir,
          host: o.host,
          allowInsecure: o.allowInsecure === true,
          ...(o.token === undefined ? {} : { token: o.token }),
          ...(o.maxConnections === undefined ? {} : { maxConnections: o.maxConnections }),
          ...(o.maxPendingBytes === undefined ? {} : { maxPendingBytes: o.maxPendingBytes }),
          ...(o.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: o.idleTimeoutMs }),
        }),
      );
      if (collector === undefined) return;
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

/**
 * What `start` makes, or undefined after a usage error (exit 2) when it throws on an option
 * (`ERR_INVALID_OPTION`, a RowlogError such as ERR_INSECURE_BIND); the message without its
 * `collect: ` and with `url: ` said as `--redis: `.
 */
async function orUsage<T>(start: () => T | Promise<T>): Promise<T | undefined> {
  try {
    return await start();
  } catch (err) {
    if (!isRowlogError(err) && (err as { code?: unknown }).code !== 'ERR_INVALID_OPTION') throw err;
    usageError('collect', (err as Error).message.replace(/^collect: /, '').replace(/^url: /, '--redis: '));
    return undefined;
  }
}

/** `rowlog collect --redis`: until SIGINT or SIGTERM, then every run flushed, acked and released. */
async function collectFromRedis(o: CollectFlags & { redis: string }): Promise<void> {
  const collector = await orUsage(() =>
    collectRedis({
      url: o.redis,
      dir: o.dir,
      ...(o.name === undefined ? {} : { name: o.name }),
      ...(o.prefix === undefined ? {} : { prefix: o.prefix }),
      ...(o.leaseMs === undefined ? {} : { leaseMs: o.leaseMs }),
      ...(o.pollMs === undefined ? {} : { pollMs: o.pollMs }),
    }),
  );
  if (collector === undefined) return;
  const stopped = stopSignal('collect');
  collector.on('replay', (r: ReplayReport) => {
    process.stdout.write(`rowlog collect: ${r.run}/${r.table}: ${r.entries} pending entries written again, ${r.skipped} rows the files held already left out\n`);
  });
  process.stdout.write(`rowlog collect: reading ${collector.shown} (group ${collector.group}, consumer ${collector.consumer}), writing into ${o.dir}\n`);
  await stopped;
  await collector.close();
  const c = collector.counts;
  const skipped = c.skipped > 0 ? `; ${c.skipped} rows the files held already left out` : '';
  const bad = c.badEntries + c.badLines > 0 ? `; skipped ${c.badEntries} entries and ${c.badLines} lines that were not rowlog rows` : '';
  process.stderr.write(`rowlog collect: stopped; ${c.rows} rows of ${c.entries} entries from ${c.taken} runs written${skipped}${bad}\n`);
}
