/**
 * A stand-in producer for the readers' tests (issue 14): stream entries written with ioredis
 * exactly as the Redis sink writes them — one XADD per block of whole JSONL rows, with
 * lib/format/redis-stream.ts's `blockFields()` — plus the run's entry in `P:runs` and its meta
 * hash. Rows are `{"$step":s,"$time":…,"$level":20,"loss":…}` (json-line's encoding, so NaN is bare).
 */
import { rowJson } from '../lib/format/json-line.js';
import { blockFields, metaKey, runsKey, streamKey, TABLE_FIELD } from '../lib/format/redis-stream.js';
import { openRedis, redisTarget } from '../lib/io/redis-client.js';
import type { Redis } from '../lib/io/redis-client.js';

/** A client for the test's server (quit it at the test's end). */
export function redisClient(url: string): Redis {
  const c = openRedis(redisTarget(url, 'url'), { name: 'rowlog-test' });
  c.on('error', () => undefined); // a restart under test: ioredis redials
  return c;
}

/** The row of step `s` (its loss 1/(s+1), NaN at steps that are multiples of 1000 when `nan`). */
export function stepRow(s: number, nan = false): Record<string, unknown> {
  return { $step: s, $time: 1_700_000_000_000 + s, $level: 20, loss: nan && s % 1000 === 0 ? NaN : 1 / (s + 1) };
}

/** XADDs one block of the rows of steps `from … from+n-1` to `run`'s `table`; resolves with the entry's id. */
export async function addBlock(c: Redis, run: string, table: string, from: number, n: number, opts: { prefix?: string; nan?: boolean; maxLen?: number } = {}): Promise<string> {
  const prefix = opts.prefix ?? 'rowlog';
  let rows = '';
  for (let s = from; s < from + n; s++) rows += `${rowJson(stepRow(s, opts.nan))}\n`;
  const cap = opts.maxLen === undefined ? [] : ['MAXLEN', '~', String(opts.maxLen)];
  return (await c.call('XADD', streamKey(prefix, run, table), ...cap, '*', ...blockFields({ rows, n, first: from, last: from + n - 1 }))) as string;
}

/** Registers `run` as the sink does: in `P:runs`, its meta hash with run.json's text and the table's stream key. */
export async function addRun(c: Redis, run: string, tables: string[], opts: { prefix?: string; info?: Record<string, unknown> } = {}): Promise<void> {
  const prefix = opts.prefix ?? 'rowlog';
  const info = { id: `id-${run}`, name: run, startTime: new Date().toISOString(), ...opts.info };
  const fields: string[] = ['id', String(info.id), 'run', JSON.stringify(info), 'status', JSON.stringify({ $state: 'running' })];
  for (const t of tables) fields.push(`${TABLE_FIELD}${t}`, streamKey(prefix, run, t));
  await c.call('HSET', metaKey(prefix, run), ...fields);
  await c.call('SADD', runsKey(prefix), run);
}
