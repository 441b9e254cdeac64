/**
 * Many machines (issue 14; `npm run bench -- redis`): four trainer processes, standing in for four
 * machines, log rows of 30 numbers (the write bench's rows without the tensor) as fast as they can,
 * each to its own run, through
 * - `redisSink` into one Redis (Debian's redis-server, started here on a free loopback port):
 *   rows/s from the trainers' start until every trainer's `log.close()` has Redis's confirmation;
 * - the same, with `collectRedis` writing every run onto disk (JSONL.gz and CSV) and acking:
 *   rows/s until the collector has written every row and closed (its files flushed);
 * - the TCP path beside it, `socketSink({connect})` into `collect()`, the same way.
 * Targets: ≥ 100,000 rows/s aggregate into Redis, and, with the trainers paced at 10,000 rows/s
 * together, the 99th percentile of the time from `log.row()` to the row being acked by the
 * collector (its files flushed) ≤ 500 ms. Each throughput figure is the median of three runs.
 *
 * The trainers are child processes (`producer` mode below); the collectors run in this process,
 * which does nothing else while they work. Without redis-server the bench says so and ends.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setImmediate as yieldLoop, setTimeout as sleep } from 'node:timers/promises';
import { createLogger } from '../lib/log/logger.js';
import { collect } from '../lib/net/collect.js';
import { collectRedis } from '../lib/net/collect-redis.js';
import { openRedis, redisTarget } from '../lib/io/redis-client.js';
import { parseBlock } from '../lib/format/redis-stream.js';
import { redisSink } from '../sinks/redis.js';
import { socketSink } from '../sinks/socket.js';
import { makeRow } from './rows.js';

const ROWS = Number(process.env.BENCH_REDIS_ROWS ?? 250_000);
const PRODUCERS = 4;
const REPEAT = 3;
const PACED_RATE = 10_000; // rows/s, all trainers together, for the latency figure
const PACED_SECONDS = 10;
const self = fileURLToPath(import.meta.url);

/** A trainer: `redis <url> <prefix> <run> <rows> <rate>` or `tcp <host:port> - <run> <rows> <rate>`; rate 0 = as fast as it can. */
async function producer(kind: string, target: string, prefix: string, run: string, rows: number, rate: number): Promise<void> {
  const sink = kind === 'redis' ? redisSink({ url: target, prefix, run }) : socketSink({ connect: target, source: run, maxClientBytes: 64 * 1024 * 1024 }); // the Redis sink's default bound
  const log = createLogger({ sinks: [sink], exitHooks: false });
  process.stdout.write('ready\n');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  const t0 = performance.now();
  if (rate === 0) {
    for (let i = 0; i < rows; i++) {
      log.row('train', makeRow(i, false));
      if (i % 100 === 99) await yieldLoop();
    }
  } else {
    // `rate` rows a second in steps of 10 ms, as a trainer's steps come
    const perTick = rate / 100;
    for (let i = 0; i < rows; ) {
      const due = t0 + (i / rate) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      for (let k = 0; k < perTick && i < rows; k++, i++) log.row('train', makeRow(i, false));
    }
  }
  await log.close();
  process.stdout.write(`${JSON.stringify({ ms: performance.now() - t0 })}\n`);
  process.exit(0);
}

/** Starts the trainers, lets them go together, and resolves with the ms from "go" to the last one's end. */
async function trainers(kind: string, target: string, prefix: string, rows: number, rate: number): Promise<{ started: number; done: Promise<number> }> {
  const kids: ChildProcess[] = [];
  for (let p = 0; p < PRODUCERS; p++) {
    kids.push(spawn(process.execPath, [self, 'producer', kind, target, prefix, `trainer${p}`, String(rows), String(rate)], { stdio: ['pipe', 'pipe', 'inherit'] }));
  }
  await Promise.all(
    kids.map(
      (k) =>
        new Promise<void>((resolve) => {
          let out = '';
          k.stdout?.setEncoding('utf8');
          k.stdout?.on('data', (s: string) => {
            out += s;
            if (out.startsWith('ready\n')) resolve();
          });
        }),
    ),
  );
  const started = performance.now();
  for (const k of kids) k.stdin?.write('go\n');
  const done = Promise.all(
    kids.map(
      (k) =>
        new Promise<void>((resolve, reject) =>
          k.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`a trainer exited ${String(code)}`)))),
        ),
    ),
  ).then(() => performance.now() - started);
  return { started, done };
}

/** Resolves when `f()` is true, polling every 20 ms (the collector's counts). */
async function until(f: () => boolean, what: string, timeoutMs = 180_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Rows in every stream under `prefix` (the sum of the entries' `n`): what Redis holds. */
async function rowsInRedis(url: string, prefix: string): Promise<number> {
  const r = openRedis(redisTarget(url, 'url'));
  try {
    let n = 0;
    for (let p = 0; p < PRODUCERS; p++) {
      let from = '-';
      for (;;) {
        const page = (await r.xrange(`${prefix}:trainer${p}:train`, from, '+', 'COUNT', 1000)) as Array<[string, string[]]>;
        for (const [, fields] of page) n += parseBlock(fields)?.n ?? 0;
        if (page.length < 1000) break;
        from = `(${(page[page.length - 1] as [string, string[]])[0]}`;
      }
    }
    return n;
  } finally {
    r.disconnect();
  }
}

async function intoRedis(url: string, k: number): Promise<number> {
  const prefix = `bench${k}a`;
  const { done } = await trainers('redis', url, prefix, ROWS, 0);
  const ms = await done;
  const got = await rowsInRedis(url, prefix);
  if (got !== PRODUCERS * ROWS) throw new Error(`Redis holds ${got} rows, not ${PRODUCERS * ROWS}`);
  return (PRODUCERS * ROWS) / (ms / 1000);
}

async function throughCollector(url: string, k: number): Promise<number> {
  const prefix = `bench${k}b`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rowlog-bench-redis-'));
  try {
    const c = collectRedis({ url, dir, prefix, pollMs: 100 });
    const { started } = await trainers('redis', url, prefix, ROWS, 0);
    await until(() => c.counts.rows >= PRODUCERS * ROWS, 'the Redis collector');
    await c.close();
    return (PRODUCERS * ROWS) / ((performance.now() - started) / 1000);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The TCP path: `collect()` in this process. It has no acknowledgement, and a push sink's close
 * gives its connection 1 s to take what is queued, so rows a busy collector has not read by then
 * are lost: the rate is the rows written over the time to the last one, and the loss is reported.
 */
async function throughTcp(): Promise<{ rate: number; lost: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rowlog-bench-tcp-'));
  try {
    const c = await collect({ dir, port: 0 });
    const { started, done } = await trainers('tcp', `127.0.0.1:${c.port}`, '-', ROWS, 0);
    await done;
    // until no row has come for 2 s, or all have
    let last = c.counts.rows;
    let lastAt = performance.now();
    while (c.counts.rows < PRODUCERS * ROWS && performance.now() - lastAt < 2000) {
      await sleep(20);
      if (c.counts.rows !== last) {
        last = c.counts.rows;
        lastAt = performance.now();
      }
    }
    await c.close();
    return { rate: c.counts.rows / ((lastAt - started) / 1000), lost: PRODUCERS * ROWS - c.counts.rows };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Trainers at PACED_RATE rows/s together; per row, ms from its `$time` (log.row()) to the ack of
 * its entry (the collector's `'acked'`: flushed to the files, then XACKed). Entry ids are noted
 * with the time of their ack, and the rows' times read back from the streams afterwards.
 */
async function latency(url: string): Promise<number[]> {
  const prefix = 'benchlat';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rowlog-bench-lat-'));
  try {
    const c = collectRedis({ url, dir, prefix, pollMs: 100 });
    const ackedAt = new Map<string, number>();
    c.on('acked', (_run: string, acks: Array<[string, string[]]>) => {
      const now = Date.now();
      for (const [stream, ids] of acks) for (const id of ids) ackedAt.set(`${stream} ${id}`, now);
    });
    const rows = (PACED_RATE / PRODUCERS) * PACED_SECONDS;
    const { done } = await trainers('redis', url, prefix, rows, PACED_RATE / PRODUCERS);
    await done;
    await until(() => c.counts.rows >= rows * PRODUCERS, 'every paced row written');
    await c.close();
    const r = openRedis(redisTarget(url, 'url'));
    const lat: number[] = [];
    try {
      for (let p = 0; p < PRODUCERS; p++) {
        const stream = `${prefix}:trainer${p}:train`;
        const entries = (await r.xrange(stream, '-', '+')) as Array<[string, string[]]>;
        for (const [id, fields] of entries) {
          const at = ackedAt.get(`${stream} ${id}`);
          const block = parseBlock(fields);
          if (at === undefined || block === undefined) throw new Error(`entry ${id} of ${stream} was not acked live`);
          for (const m of block.rows.matchAll(/"\$time":(\d+)/g)) lat.push(at - Number(m[1]));
        }
      }
    } finally {
      r.disconnect();
    }
    return lat.sort((a, b) => a - b);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Debian's redis-server on a free loopback port with a folder of its own (no persistence: a relay), or undefined when absent. */
async function redisServer(): Promise<{ url: string; stop: () => Promise<void> } | undefined> {
  if (spawnSync('sh', ['-c', 'command -v redis-server'], { stdio: 'ignore' }).status !== 0) return undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rowlog-bench-redis-server-'));
  const port = await new Promise<number>((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (probe.address() as net.AddressInfo).port;
      probe.close(() => resolve(p));
    });
  });
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--loglevel', 'warning'], { stdio: 'inherit' });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  const url = `redis://127.0.0.1:${port}`;
  const r = openRedis(redisTarget(url, 'url'));
  await r.ping();
  r.disconnect();
  return {
    url,
    stop: async () => {
      proc.kill('SIGTERM');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US').padStart(9);

const [mode, ...args] = process.argv.slice(2);
if (mode === 'producer') {
  const [kind, target, prefix, run, rows, rate] = args as [string, string, string, string, string, string];
  await producer(kind, target, prefix, run, Number(rows), Number(rate));
} else {
  const server = await redisServer();
  if (server === undefined) {
    console.log('rowlog redis bench: skipped, needs Debian redis-server');
  } else {
    try {
      console.log(`rowlog redis bench: ${PRODUCERS} trainer processes × ${ROWS.toLocaleString('en-US')} rows of 30 numbers, median of ${REPEAT}`);
      const a: number[] = [];
      const b: number[] = [];
      const c: number[] = [];
      let lost = 0;
      for (let k = 0; k < REPEAT; k++) {
        a.push(await intoRedis(server.url, k));
        b.push(await throughCollector(server.url, k));
        const tcp = await throughTcp();
        c.push(tcp.rate);
        lost += tcp.lost;
      }
      const into = median(a);
      console.log(`  into Redis (redisSink)                        ${fmt(into)} rows/s  (target ≥ 100,000: ${into >= 100_000 ? 'met' : 'NOT met'})`);
      console.log(`  through collect --redis onto disk             ${fmt(median(b))} rows/s`);
      console.log(`  through TCP collect onto disk (the baseline)  ${fmt(median(c))} rows/s  (Redis path ${(median(b) / median(c)).toFixed(2)}× TCP; TCP lost ${lost.toLocaleString('en-US')} rows in ${REPEAT} runs at the trainers' close, no ack)`);
      const lat = await latency(server.url);
      const q = (f: number) => lat[Math.min(lat.length - 1, Math.floor(f * lat.length))] as number;
      console.log(
        `  latency at ${PACED_RATE.toLocaleString('en-US')} rows/s, log.row() → acked on the collector's disk: ` +
          `p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${lat[lat.length - 1]} ms over ${lat.length.toLocaleString('en-US')} rows (target p99 ≤ 500 ms: ${q(0.99) <= 500 ? 'met' : 'NOT met'})`,
      );
    } finally {
      await server.stop();
    }
  }
}
