/**
 * Live subscribers (run by `npm run bench`): what watching a run costs the training loop. The
 * logger is the one a user runs, `createLogger({dir, socket})` (blocked-gzip JSONL, CSV, console
 * at INFO, and a socket sink), logging the write bench's rows (30 numbers, a 1e6-float tensor
 * every 100th row) at TRACE, yielding to the event loop every 100 rows as a training step that
 * awaits anything does. Subscribers run in another process, reading with plain `net` sockets:
 * 0 (the reference), 1, and 10 of which one is stalled (connected, never reads).
 *
 * Each scenario runs in its own process, three times; the median rate is reported. rows/s is
 * measured over the loop and `log.flush()`. Afterwards every reading subscriber must account for
 * every row (received, or announced by a `{"$dropped":n}` line).
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setImmediate as yieldLoop } from 'node:timers/promises';
import { createLogger } from '../lib/log/logger.js';
import { socketSink } from '../sinks/socket.js';
import { makeRow } from './rows.js';

const ROWS = Number(process.env.BENCH_SOCKET_ROWS ?? 200_000);
const REPEAT = 3;
const self = fileURLToPath(import.meta.url);

interface Reader {
  rows: number;
  dropped: number;
}
interface Result {
  rate: number;
  readers: Reader[];
}

/** The subscriber process: `n` connections, the first stalled when n > 1; prints counts at the end. */
async function subscribers(port: number, n: number): Promise<void> {
  const readers: Array<Promise<Reader>> = [];
  for (let i = 0; i < n; i++) {
    const socket = net.connect({ host: '127.0.0.1', port });
    await new Promise((r) => socket.once('connect', r));
    if (n > 1 && i === 0) {
      socket.pause(); // stalled: never reads
      socket.on('error', () => undefined);
      continue;
    }
    readers.push(
      new Promise((resolve) => {
        const r: Reader = { rows: 0, dropped: 0 };
        let rest = '';
        socket.setEncoding('utf8');
        socket.on('data', (s: string) => {
          const lines = (rest + s).split('\n');
          rest = lines.pop() as string;
          for (const l of lines) {
            if (l.startsWith('{"$dropped":')) r.dropped += (JSON.parse(l) as { $dropped: number }).$dropped;
            else r.rows++;
          }
        });
        socket.on('close', () => resolve(r));
      }),
    );
  }
  process.stdout.write('ready\n');
  process.stdout.write(`${JSON.stringify(await Promise.all(readers))}\n`);
  process.exit(0); // the stalled socket is left to the kernel
}

async function scenario(n: number): Promise<Result> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rowlog-bench-sock-'));
  try {
    const sink = socketSink({ port: 0 });
    const { port } = await sink.address();
    const log = createLogger({ dir, exitHooks: false, socket: sink });
    let report: Promise<Reader[]> = Promise.resolve([]);
    if (n > 0) {
      const child = spawn(process.execPath, [self, 'subscribers', String(port), String(n)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.setEncoding('utf8');
      await new Promise<void>((resolve) =>
        child.stdout.on('data', (s: string) => {
          out += s;
          if (out.startsWith('ready\n')) resolve();
        }),
      );
      report = new Promise((resolve) => child.once('close', () => resolve(JSON.parse(out.slice('ready\n'.length)) as Reader[])));
      while (sink.clients < n) await yieldLoop();
    }
    const t0 = performance.now();
    for (let i = 0; i < ROWS; i++) {
      log.row('train', makeRow(i), { level: 'TRACE' });
      if (i % 100 === 99) await yieldLoop();
    }
    await log.flush();
    const rate = ROWS / ((performance.now() - t0) / 1000);
    await log.close();
    const readers = await report;
    for (const r of readers) {
      if (r.rows + r.dropped !== ROWS) throw new Error(`a subscriber lost rows silently: ${r.rows} received + ${r.dropped} dropped ≠ ${ROWS}`);
    }
    return { rate, readers };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const [mode, a, b] = process.argv.slice(2);
if (mode === 'subscribers') {
  await subscribers(Number(a), Number(b));
} else if (mode === 'scenario') {
  fs.writeSync(3, JSON.stringify(await scenario(Number(a))));
  process.exit(0);
} else {
  const measure = (n: number): Result => {
    const runs: Result[] = [];
    for (let k = 0; k < REPEAT; k++) {
      const r = spawnSync(process.execPath, [self, 'scenario', String(n)], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'inherit', 'pipe'] });
      if (r.status !== 0) throw new Error(`socket bench with ${n} subscribers failed (exit ${String(r.status)})`);
      runs.push(JSON.parse(String(r.output[3])) as Result);
    }
    runs.sort((x, y) => x.rate - y.rate);
    return runs[1] as Result;
  };
  console.log(`rowlog socket bench: ${ROWS.toLocaleString('en-US')} rows (write bench rows), createLogger({dir, socket}), median of ${REPEAT}`);
  const none = measure(0);
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US').padStart(9);
  console.log(`  0 subscribers (reference)                    ${fmt(none.rate)} rows/s`);
  for (const n of [1, 10]) {
    const r = measure(n);
    const got = r.readers.map((x) => x.rows);
    const dropped = r.readers.reduce((s, x) => s + x.dropped, 0);
    const label = n === 1 ? '1 subscriber' : `${n} subscribers, one stalled`;
    console.log(
      `  ${label.padEnd(44)} ${fmt(r.rate)} rows/s  ${(r.rate / none.rate).toFixed(2)}× none (target ≥ 0.8)  ` +
        `readers got ${Math.min(...got).toLocaleString('en-US')}–${Math.max(...got).toLocaleString('en-US')} rows, ${dropped} dropped`,
    );
  }
}
