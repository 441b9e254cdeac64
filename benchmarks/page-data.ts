/**
 * The page bench's data sets (`npm run bench:page`, issue 15 §5), made once into
 * `os.tmpdir()/rowlog-bench-page-v1` and reused while present: `big/run/train.jsonl.gz` (one run of
 * 2,000,000 rows, 4 data columns, one spike), and `many/run-000` … `run-099` (100 runs of
 * 100,000 rows × 20 data columns, each with a `params.json`: lr, seed, batch, optimizer).
 *
 * Written the way rowlog's JSONL sink writes them (the `$step`, `$time`, `$level` keys first,
 * one BGZF member per ≤ 64 KiB of whole lines at gzip level 1, the BGZF end marker last), but
 * with lib/format/bgzf.ts directly rather than through createLogger: 12 million rows through
 * the logger would take minutes, and serve only sees the bytes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BGZF_EOF, bgzfMemberSync, splitForMembers } from '../lib/format/bgzf.js';

/** Where the data sets live (a new version number when their shape changes). */
export const PAGE_DATA = path.join(os.tmpdir(), 'rowlog-bench-page-v1');

/** Rows of the big run. */
export const BIG_ROWS = 2_000_000;
/** Runs of the many-runs set, rows per run, data columns per run. */
export const MANY_RUNS = 100;
export const MANY_ROWS = 100_000;
export const MANY_COLUMNS = 20;

/** The big run's one spike: its step and value (every other `loss` is below 3). */
export const SPIKE = { step: 1_234_567, loss: 50 };

/** Run folder names of the many-runs set. */
export const manyRunName = (k: number): string => `run-${String(k).padStart(3, '0')}`;

/** A table file written by {@link writeTable}'s `line(i)` for i < rows, member by member (memory: one batch). */
function writeTable(file: string, rows: number, line: (i: number) => string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    const BATCH = 4096;
    for (let i = 0; i < rows; ) {
      let text = '';
      const end = Math.min(rows, i + BATCH);
      for (; i < end; i++) text += line(i);
      for (const chunk of splitForMembers(Buffer.from(text))) fs.writeSync(fd, bgzfMemberSync(chunk, 1));
    }
    fs.writeSync(fd, BGZF_EOF);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

/** A number as a trainer's float32 metric looks in JSON (7 significant digits). */
const num = (v: number): string => String(Math.fround(v).toPrecision(7).replace(/\.?0+(e|$)/, '$1'));

/** Epoch ms of the runs' first row. */
const T0 = Date.UTC(2026, 0, 1);

function writeBig(dir: string): void {
  writeTable(path.join(dir, 'run', 'train.jsonl.gz'), BIG_ROWS, (i) => {
    const loss = i === SPIKE.step ? SPIKE.loss : 2 / Math.sqrt(i + 1) + 0.05 * Math.sin(i / 997);
    const acc = 1 - 0.9 / Math.sqrt(i / 1000 + 1);
    return `{"$step":${i},"$time":${T0 + i * 5},"$level":20,"loss":${num(loss)},"acc":${num(acc)},"lr":${num(1e-3 * Math.cos(i / BIG_ROWS))},"grad_norm":${num(1 + Math.sin(i / 31) * 0.5)}}\n`;
  });
  fs.writeFileSync(path.join(dir, 'run', 'run.json'), `${JSON.stringify({ name: 'big', startTime: new Date(T0).toISOString() })}\n`);
}

function writeMany(dir: string): void {
  const keys = Array.from({ length: MANY_COLUMNS - 3 }, (_, k) => `m${k}`);
  for (let r = 0; r < MANY_RUNS; r++) {
    const run = path.join(dir, manyRunName(r));
    const lr = [1e-4, 3e-4, 1e-3, 3e-3][r % 4] as number;
    const seed = Math.floor(r / 4) % 5;
    const params = { lr, seed, batch: [32, 64][Math.floor(r / 20) % 2], optimizer: { name: r % 2 ? 'adam' : 'sgd', momentum: 0.9 } };
    writeTable(path.join(run, 'train.jsonl.gz'), MANY_ROWS, (i) => {
      let s = `{"$step":${i},"$time":${T0 + r * 1000 + i * 20},"$level":20,"loss":${num((1 + seed * 0.01) / Math.sqrt(i * lr + 1))},"acc":${num(1 - 1 / Math.sqrt(i * lr + 1))},"epoch":${Math.floor(i / 10_000)}`;
      for (let k = 0; k < keys.length; k++) s += `,"${keys[k] as string}":${num(Math.sin(i / (50 + k)) + r * 0.01)}`;
      return `${s}}\n`;
    });
    fs.writeFileSync(path.join(run, 'params.json'), `${JSON.stringify(params)}\n`);
    fs.writeFileSync(path.join(run, 'run.json'), `${JSON.stringify({ name: manyRunName(r), startTime: new Date(T0 + r * 1000).toISOString() })}\n`);
  }
}

/**
 * The data sets, made when missing (a `.done` marker per set: a set cut short by a killed bench
 * is made again). Returns their folders and the seconds spent making them now (0 when reused).
 */
export function pageData(): { big: string; many: string; madeSeconds: { big: number; many: number } } {
  const big = path.join(PAGE_DATA, 'big');
  const many = path.join(PAGE_DATA, 'many');
  const made = { big: 0, many: 0 };
  for (const [dir, write, key] of [
    [big, writeBig, 'big'],
    [many, writeMany, 'many'],
  ] as const) {
    if (fs.existsSync(path.join(PAGE_DATA, `${key}.done`))) continue;
    const t0 = performance.now();
    fs.rmSync(dir, { recursive: true, force: true });
    write(dir);
    fs.writeFileSync(path.join(PAGE_DATA, `${key}.done`), '');
    made[key] = (performance.now() - t0) / 1000;
  }
  return { big, many, madeSeconds: made };
}
